//! The ids payment-svc mints or keeps, as types of their own: a payment id and an order id
//! are both UUIDs, and a swapped argument must not compile.

use uuid::Uuid;

platform::uuid_id!(
    /// A payment, minted when a charge is decided. UUIDv7, so ids sort by creation.
    pub PaymentId
);
platform::uuid_id!(
    /// The order a payment is for, as order-svc named it.
    pub OrderId
);

impl PaymentId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self::from(Uuid::now_v7())
    }
}
