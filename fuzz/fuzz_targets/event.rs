//! Any bytes as a NATS message of the choreography: decoding never panics, and an event
//! that decodes survives a round trip unchanged (what the outbox stores is what a
//! consumer reads).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use platform::events::envelope::Event;

fuzz_target!(|bytes: &[u8]| {
    let Ok(event) = Event::decode(&Bytes::copy_from_slice(bytes)) else {
        return;
    };
    let again = Event::decode(&Bytes::from(event.encode())).expect("an event re-decodes");
    assert_eq!(again.encode(), event.encode());
    assert_eq!(again.subject(), event.subject());
});
