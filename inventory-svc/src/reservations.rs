//! Reserving and releasing stock inside a caller's transaction. The ReserveStock and
//! ReleaseStock RPCs and the event handlers all call these, so the locking order, the
//! never-below-zero rule and the one-live-reservation-per-order rule exist once.
//!
//! Every refusal is decided before the first write: a caller that turns a refusal into
//! a failure event and commits leaves nothing half-reserved behind.

use platform::ApiError;
use platform::reason::Reason;
use sqlx::PgConnection;

use crate::{
    domain::{self, InventoryError, Line, ReservationStatus},
    ids::{OrderId, ReservationId},
    store::{self, Reservation},
};

/// Reserves every line for `order_id`: stock rows locked in sku order, all lines
/// covered or none. Refusals: unknown skus (NOT_FOUND), OUT_OF_STOCK, and
/// ORDER_ALREADY_RESERVED when the order holds a live reservation already.
pub async fn reserve(
    tx: &mut PgConnection,
    order_id: OrderId,
    lines: &[Line],
) -> Result<Reservation, ApiError> {
    let lines = domain::lock_order(lines);
    let available = store::lock_available(tx, &skus(&lines)).await?;
    let unknown = domain::unknown_skus(&lines, &available);
    if !unknown.is_empty() {
        return Err(InventoryError::UnknownSkus(unknown).into());
    }
    let short = domain::shortages(&lines, &available);
    if !short.is_empty() {
        return Err(InventoryError::OutOfStock(short).into());
    }
    let taken = store::take_stock(tx, &lines).await?;
    if taken != lines.len() as u64 {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "stock changed under a row lock"
        )));
    }
    // One live reservation per order: the unique index says so, even under races. It
    // fails the statement, so the caller's transaction cannot commit the stock taken.
    store::insert_reservation(tx, order_id, &lines)
        .await
        .map_err(|e| {
            platform::error::unique_violation_as(e, || {
                ApiError::precondition(
                    Reason::OrderAlreadyReserved,
                    format!("order {order_id} already holds a reservation"),
                )
            })
        })
}

/// Releases reservation `reservation_id`: its units go back to available. Releasing a
/// released reservation changes nothing and returns it as it is.
pub async fn release(
    tx: &mut PgConnection,
    reservation_id: ReservationId,
) -> Result<Reservation, ApiError> {
    let mut reservation = store::lock_reservation(tx, reservation_id)
        .await?
        .ok_or_else(|| ApiError::not_found("reservation", reservation_id.to_string()))?;
    match reservation.row.status {
        ReservationStatus::Reserved => {
            // Same lock order as `reserve` (by sku), so the two cannot deadlock.
            store::lock_available(tx, &skus(&reservation.lines)).await?;
            store::return_stock(tx, &reservation.lines).await?;
            store::mark_released(tx, reservation_id).await?;
            reservation.row.status = ReservationStatus::Released;
        }
        ReservationStatus::Released => {}
    }
    Ok(reservation)
}

/// Releases the latest reservation of `order_id` (see [`release`]); NOT_FOUND when the
/// order never reserved anything.
pub async fn release_of_order(
    tx: &mut PgConnection,
    order_id: OrderId,
) -> Result<Reservation, ApiError> {
    let latest = store::reservation_of_order(tx, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("reservation of order", order_id.to_string()))?;
    release(tx, latest.row.reservation_id).await
}

/// The skus of `lines`, in their order.
pub fn skus(lines: &[Line]) -> Vec<String> {
    lines.iter().map(|l| l.sku.clone()).collect()
}
