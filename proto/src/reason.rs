//! The `google.rpc.ErrorInfo` reasons the services attach to their refusals (mostly
//! `FAILED_PRECONDITION`; the code is named where it is another), in one place: the
//! service that refuses and the client that reads the refusal name the same constant, so
//! a reason cannot drift between them. Part of the public contract (each RPC's comment in
//! the protos says which it returns).

/// Any service (ALREADY_EXISTS): an idempotency key came back with a different request.
pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
/// inventory-svc: a line asks for more units than are available.
pub const OUT_OF_STOCK: &str = "OUT_OF_STOCK";
/// inventory-svc: the cart's products are priced in more than one currency.
pub const MIXED_CURRENCIES: &str = "MIXED_CURRENCIES";
/// inventory-svc: the reservation was released (by its key) before it arrived.
pub const RELEASED_BEFORE_RESERVED: &str = "RELEASED_BEFORE_RESERVED";
/// inventory-svc: the order already holds another reservation.
pub const ORDER_ALREADY_RESERVED: &str = "ORDER_ALREADY_RESERVED";
/// order-svc, shipping-svc: cancelled (by the creating call's key) before it arrived.
pub const CANCELLED_BEFORE_CREATED: &str = "CANCELLED_BEFORE_CREATED";
/// order-svc: the order's status cannot move that way.
pub const ILLEGAL_TRANSITION: &str = "ILLEGAL_TRANSITION";
/// order-svc: the checkout has an order already (one order per checkout).
pub const CHECKOUT_ALREADY_ORDERED: &str = "CHECKOUT_ALREADY_ORDERED";
/// payment-svc: refunded (by the charge's key) before the charge arrived.
pub const CANCELLED_BEFORE_CHARGED: &str = "CANCELLED_BEFORE_CHARGED";
/// payment-svc: the payment was refunded already.
pub const ALREADY_REFUNDED: &str = "ALREADY_REFUNDED";
/// payment-svc: the order already has a captured payment.
pub const ORDER_ALREADY_PAID: &str = "ORDER_ALREADY_PAID";
/// shipping-svc: the address is in a country that is not served.
pub const UNDELIVERABLE_ADDRESS: &str = "UNDELIVERABLE_ADDRESS";
/// shipping-svc: the order already has a shipment.
pub const ORDER_ALREADY_SHIPPED: &str = "ORDER_ALREADY_SHIPPED";
/// orchestrator: ResumeCheckout on a checkout that is not NEEDS_ATTENTION.
pub const CHECKOUT_NOT_PARKED: &str = "CHECKOUT_NOT_PARKED";
/// orchestrator: ResumeCheckout on a checkout started longer than `RETENTION` ago: the
/// services have swept the keys its compensations would look their calls up by.
pub const CHECKOUT_BEYOND_RETENTION: &str = "CHECKOUT_BEYOND_RETENTION";
/// orchestrator (RESOURCE_EXHAUSTED): WatchCheckout when the caller (the token's subject)
/// has `MAX_WATCH_STREAMS_PER_CALLER` streams open already; closing one makes room.
pub const WATCH_STREAMS_PER_CALLER_EXHAUSTED: &str = "WATCH_STREAMS_PER_CALLER_EXHAUSTED";
/// orchestrator (RESOURCE_EXHAUSTED): WatchCheckout when the replica has
/// `MAX_WATCH_STREAMS` streams open in all; retry later, or read with GetCheckout.
pub const WATCH_STREAMS_EXHAUSTED: &str = "WATCH_STREAMS_EXHAUSTED";
/// Any service's EventAdminService: RetryDeadLetter on a letter that was discarded.
pub const DEAD_LETTER_DISCARDED: &str = "DEAD_LETTER_DISCARDED";
/// Any service's EventAdminService: DiscardDeadLetter on a letter a retry handled.
pub const DEAD_LETTER_RETRIED: &str = "DEAD_LETTER_RETRIED";
/// Any service's EventAdminService: RetryDeadLetter on a message no envelope could be
/// read from.
pub const DEAD_LETTER_UNREADABLE: &str = "DEAD_LETTER_UNREADABLE";
/// Any service's EventAdminService: RetryDeadLetter whose handler refused the event again.
pub const DEAD_LETTER_STILL_FAILING: &str = "DEAD_LETTER_STILL_FAILING";

/// A checkout's `failure_reason`: why it ended CANCELLED, as `Checkout.failure_reason`
/// and the choreography's failure events (`PaymentDeclined`, `StockRejected`, ...) name
/// it. The same values in both coordination modes.
pub mod failure {
    /// The card was declined, or the payment token refused.
    pub const CARD_DECLINED: &str = "card_declined";
    /// The card has insufficient funds.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    /// A line asks for more units than are available.
    pub const OUT_OF_STOCK: &str = "out_of_stock";
    /// The shipping address is in a country that is not served.
    pub const UNDELIVERABLE_ADDRESS: &str = "undeliverable_address";
    /// A service stayed unavailable through every retry (orchestrated mode).
    pub const DEPENDENCY_UNAVAILABLE: &str = "dependency_unavailable";
}
