//! Idempotency keys, the same way in every service.
//!
//! Each service's first migration creates `idempotency_keys`. A mutating RPC runs in one
//! transaction that first [`claim`]s `(operation, key)` with a fingerprint of the request:
//!
//! - the first claim inserts the row and the RPC does its work, then [`commit`] stores
//!   the encoded response and commits both at once, so no one sees a half-done claim;
//! - a concurrent claim of the same key waits on the primary key until the first commits
//!   (or rolls back), then reads the stored response: a replay changes nothing;
//! - a different request under the same key is [`ApiError::KeyReused`] (ALREADY_EXISTS).
//!
//! The fingerprint is over a canonical form of the request ([`crate::fingerprint`]), not
//! its protobuf encoding, so a compatible change of a `.proto` file leaves stored keys
//! matching their replays.
//!
//! Compensations ([`crate::compensation`]) look up the *forward* call's key. If the
//! forward call never arrived they insert a `blocked` row in its place, so the forward
//! call, if it comes later, finds [`Claim::Blocked`] and does not take effect:
//! compensation wins.

use prost::{Message, Name};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::{error::ApiError, fingerprint::Fingerprint, stored_code};

stored_code! {
    /// What a key's row records (its `state` column).
    pub enum KeyState {
        /// Claimed by the forward call, which did its work (its response is stored with
        /// the commit).
        Completed = "completed",
        /// Taken by a compensation before the forward call arrived: it never takes effect.
        Blocked = "blocked",
    }
}

/// What a forward call finds under its key.
#[derive(Debug)]
pub enum Claim<R> {
    /// First time: do the work, then [`commit`].
    New,
    /// Seen before with the same request: return this response.
    Replay(R),
    /// A compensation came first: do nothing.
    Blocked,
}

/// What a compensation finds under the forward call's key.
#[derive(Debug)]
enum Forward<R> {
    /// The forward call completed with this response: undo what it did.
    Completed(R),
    /// The forward call never took effect; it now never will.
    Blocked,
}

/// Claims `(operation, key)` for `request` inside the caller's transaction.
pub async fn claim<Req: Message + Name, Resp: Message + Default>(
    tx: &mut PgConnection,
    operation: &str,
    key: &str,
    request: &Req,
) -> Result<Claim<Resp>, ApiError> {
    let fingerprint = Fingerprint::of(request)?;
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_keys (operation, key, request_hash, state)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        operation,
        key,
        fingerprint.as_bytes(),
        KeyState::Completed as _,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let stored = sqlx::query!(
        "SELECT request_hash, state, response FROM idempotency_keys
          WHERE operation = $1 AND key = $2",
        operation,
        key,
    )
    .fetch_one(&mut *tx)
    .await?;
    match stored.state {
        KeyState::Blocked => return Ok(Claim::Blocked),
        KeyState::Completed => {}
    }
    if !stored
        .request_hash
        .is_some_and(|hash| fingerprint.matches(&hash))
    {
        return Err(ApiError::KeyReused { key: key.into() });
    }
    let bytes = stored.response.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "idempotency row {operation}/{key} has no response"
        ))
    })?;
    Ok(Claim::Replay(Resp::decode(bytes.as_slice())?))
}

/// Stores the response of a claimed key and commits the work done under it, together.
pub async fn commit<Resp: Message>(
    mut tx: Transaction<'_, Postgres>,
    operation: &str,
    key: &str,
    response: &Resp,
) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response = $3 WHERE operation = $1 AND key = $2",
        operation,
        key,
        response.encode_to_vec(),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Looks up the forward call `(operation, key)` for a compensation, blocking it in
/// advance if it has not happened. Locks the row until the caller's transaction ends.
async fn block<Resp: Message + Default>(
    tx: &mut PgConnection,
    operation: &str,
    key: &str,
) -> Result<Forward<Resp>, ApiError> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (operation, key, state)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        operation,
        key,
        KeyState::Blocked as _,
    )
    .execute(&mut *tx)
    .await?;
    let stored = sqlx::query!(
        "SELECT state, response FROM idempotency_keys
          WHERE operation = $1 AND key = $2 FOR UPDATE",
        operation,
        key,
    )
    .fetch_one(&mut *tx)
    .await?;
    match (stored.state, stored.response) {
        (KeyState::Completed, Some(bytes)) => {
            Ok(Forward::Completed(Resp::decode(bytes.as_slice())?))
        }
        // The claim and its response commit together, so a completed row has its
        // response; a row without one is broken, and is treated as never done.
        (KeyState::Completed, None) | (KeyState::Blocked, _) => Ok(Forward::Blocked),
    }
}

/// What a compensation undoes: `by_id` when the caller named it, else the id `id_of`
/// reads from the stored response of the forward call `(operation, key)`, or `None` when
/// that call never took effect (it is now blocked).
pub(crate) async fn compensation_target<Resp: Message + Default>(
    tx: &mut PgConnection,
    by_id: Option<Uuid>,
    operation: &str,
    key: &str,
    id_of: impl FnOnce(Resp) -> Option<Uuid>,
) -> Result<Option<Uuid>, ApiError> {
    if by_id.is_some() {
        return Ok(by_id);
    }
    match block::<Resp>(tx, operation, key).await? {
        Forward::Completed(response) => id_of(response).map(Some).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "stored response of {operation}/{key} names nothing to undo"
            ))
        }),
        Forward::Blocked => Ok(None),
    }
}
