//! Creating and cancelling shipments inside a caller's transaction. The CreateShipment
//! and CancelShipment RPCs and the event handler all call these, so which countries are
//! served and the one-live-shipment-per-order rule are enforced in one place.

use platform::ApiError;
use platform::reason::Reason;
use shop_proto::common::v1::Address;
use sqlx::PgConnection;

use crate::{
    domain::{self, ShipmentStatus},
    ids::{OrderId, ShipmentId},
    store::{self, ShipmentRow},
};

/// UNDELIVERABLE_ADDRESS unless a carrier serves `to`. Needs no database, so the RPC
/// asks before it claims its idempotency key, and [`create`] asks again before writing.
pub fn deliverable(to: &Address) -> Result<(), ApiError> {
    if domain::serves(&to.country) {
        Ok(())
    } else {
        Err(ApiError::precondition(
            Reason::UndeliverableAddress,
            format!("no carrier delivers to {}", to.country),
        ))
    }
}

/// Creates the shipment of `order_id` to `to`, with a new tracking number. Refusals,
/// decided before anything is written: UNDELIVERABLE_ADDRESS, and ORDER_ALREADY_SHIPPED
/// when the order has a live shipment (the unique index decides, even under races).
pub async fn create(
    tx: &mut PgConnection,
    order_id: OrderId,
    to: &Address,
) -> Result<ShipmentRow, ApiError> {
    deliverable(to)?;
    store::insert(tx, order_id, to).await.map_err(|e| {
        platform::error::unique_violation_as(e, || {
            ApiError::precondition(
                Reason::OrderAlreadyShipped,
                format!("order {order_id} already has a live shipment"),
            )
        })
    })
}

/// Cancels shipment `shipment_id`; cancelling a cancelled shipment changes nothing and
/// returns it as it is.
pub async fn cancel(
    tx: &mut PgConnection,
    shipment_id: ShipmentId,
) -> Result<ShipmentRow, ApiError> {
    let row = store::lock(tx, shipment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("shipment", shipment_id.to_string()))?;
    match row.status {
        ShipmentStatus::Created => Ok(store::cancel(tx, shipment_id).await?),
        ShipmentStatus::Cancelled => Ok(row),
    }
}
