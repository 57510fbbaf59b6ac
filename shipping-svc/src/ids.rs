//! The ids shipping-svc mints or keeps, as types of their own: a shipment id and an order
//! id are both UUIDs, and a swapped argument must not compile.

use uuid::Uuid;

platform::uuid_id!(
    /// A shipment, minted when it is created. UUIDv7, so ids sort by creation.
    pub ShipmentId
);
platform::uuid_id!(
    /// The order a shipment is for, as order-svc named it.
    pub OrderId
);

impl ShipmentId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self::from(Uuid::now_v7())
    }
}
