//! The ids order-svc mints or keeps, as types of their own: an order id and a checkout id
//! are both UUIDs, and a swapped argument must not compile.

use uuid::Uuid;

platform::uuid_id!(
    /// An order, minted when it is created. UUIDv7, so ids sort by creation (the order of
    /// ListOrders' pages).
    pub OrderId
);
platform::uuid_id!(
    /// The checkout an order is for, as the orchestrator named it: one order each.
    pub CheckoutId
);

impl OrderId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self::from(Uuid::now_v7())
    }
}
