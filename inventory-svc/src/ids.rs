//! The ids inventory-svc mints or keeps, as types of their own: a reservation id and an
//! order id are both UUIDs, and a swapped argument must not compile.

use uuid::Uuid;

platform::uuid_id!(
    /// A reservation, minted when stock is reserved. UUIDv7, so ids sort by creation.
    pub ReservationId
);
platform::uuid_id!(
    /// The order a reservation holds stock for, as order-svc named it.
    pub OrderId
);

impl ReservationId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self::from(Uuid::now_v7())
    }
}
