//! Any bytes as a PlaceOrder request: decoding and validation never panic, and a request
//! the front door accepts is accepted again as it is stored (what a replica resuming the
//! checkout reads back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use orchestrator::api::command::PlaceOrder;
use prost::Message;
use shop_proto::checkout::v1::PlaceOrderRequest;

fuzz_target!(|bytes: &[u8]| {
    let Ok(request) = PlaceOrderRequest::decode(bytes) else {
        return;
    };
    if let Ok(order) = PlaceOrder::try_from(request) {
        let stored = order.request.encode_to_vec();
        let again = PlaceOrderRequest::decode(stored.as_slice()).expect("re-decodes");
        let reread = PlaceOrder::try_from(again).expect("still valid");
        assert_eq!(reread.lines, order.lines);
        assert_eq!(reread.idempotency_key, order.idempotency_key);
    }
});
