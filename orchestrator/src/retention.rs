//! The orchestrator's retention rule: finished sagas go, with their steps and events,
//! once their last change is older than `RETENTION` (see [`platform::retention`] for the
//! schedule and the rules every binary shares).
//!
//! Only COMPLETED and CANCELLED sagas are swept. A running or compensating saga is still
//! being driven, and a parked one (NEEDS_ATTENTION) waits for a person however long that
//! takes; both keep every row. After the sweep, `GetCheckout` answers NOT_FOUND for the
//! checkout, and its idempotency key is free: `PlaceOrder` with it starts a new checkout.

use platform::retention::{Retention, Sweep};

/// Deletes one batch of finished sagas with their steps and events, in one statement so
/// no saga is ever left half-deleted. `SKIP LOCKED`: a saga a driver or the tracker holds
/// at this moment waits for the next sweep.
pub fn finished_sagas(retention: Retention) -> Sweep {
    // Text, not `query!`: platform::retention runs every binary's sweeps through one loop.
    Sweep {
        table: "sagas",
        sql: "WITH doomed AS (
                  SELECT saga_id FROM sagas
                  WHERE status IN ('COMPLETED', 'CANCELLED')
                    AND updated_at < now() - $1
                  ORDER BY updated_at LIMIT $2
                  FOR UPDATE SKIP LOCKED),
              events AS (DELETE FROM saga_events WHERE saga_id IN (SELECT saga_id FROM doomed)),
              steps AS (DELETE FROM saga_steps WHERE saga_id IN (SELECT saga_id FROM doomed))
              DELETE FROM sagas WHERE saga_id IN (SELECT saga_id FROM doomed)",
        keep: retention.keep,
    }
}
