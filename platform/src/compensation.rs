//! The compensating RPCs (cancel an order, refund a payment, release stock, cancel a
//! shipment) share one skeleton, so the rules that make compensations safe to retry and
//! safe to run before their forward call live here once. [`Compensation::run`]:
//!
//! 1. checks `idempotency_key`, exactly one of the target's id or the forward call's
//!    key, and the service's own fields;
//! 2. begins a transaction;
//! 3. claims the compensation's own key: a replay returns the stored response;
//! 4. finds the target: the id given, or the one the forward call's stored response
//!    names; a forward call that has not happened yet is blocked, so it never will
//!    (see [`crate::idempotency`]);
//! 5. without a target, answers the empty response: nothing took effect;
//! 6. else runs the service's undo inside the transaction;
//! 7. stores the response and commits, together.
//!
//! A service supplies what is its own: field names, how to read the target from the
//! forward response, extra field checks, and the undo.

use prost::{Message, Name};
use sqlx::{PgConnection, PgPool};
use tracing::Span;
use uuid::Uuid;

use crate::{
    error::ApiError,
    idempotency::{self, Claim},
    validate::Violations,
};

/// One compensating request, described for [`Compensation::run`].
pub struct Compensation<'r, Req, Forward> {
    /// The request; its fingerprint tells a replay from a reused key.
    pub request: &'r Req,
    /// The compensation's own idempotency operation (e.g. `"cancel"`).
    pub operation: &'static str,
    /// The request's `idempotency_key`.
    pub key: &'r str,
    /// The target named by id: `(field, value)`, e.g. `("order_id", &req.order_id)`.
    pub target_id: (&'static str, &'r str),
    /// The idempotency operation of the forward call being undone (e.g. `"create"`).
    pub forward_operation: &'static str,
    /// The target named by the forward call's key instead: `(field, value)`.
    pub forward_key: (&'static str, &'r str),
    /// The target's id in the forward call's stored response.
    pub target_of: fn(Forward) -> Option<Uuid>,
    /// Checks of the request's other fields, reported with the shared ones.
    pub check: fn(&Req, &mut Violations),
}

impl<Req, Forward> Compensation<'_, Req, Forward>
where
    Req: Message + Name,
    Forward: Message + Default,
{
    /// Runs the compensation; `undo` reverts the target (its id given) inside the
    /// transaction and returns the response. Without a target the response is the
    /// default (empty) message.
    pub async fn run<Resp>(
        self,
        pool: &PgPool,
        undo: impl AsyncFnOnce(&mut PgConnection, Uuid) -> Result<Resp, ApiError>,
    ) -> Result<Resp, ApiError>
    where
        Resp: Message + Default,
    {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", self.key);
        let by_id = v.target(self.target_id, self.forward_key);
        (self.check)(self.request, &mut v);
        v.finish(())?;
        Span::current().record("key", self.key);

        let mut tx = pool.begin().await?;
        if let Claim::Replay(response) =
            idempotency::claim(&mut tx, self.operation, self.key, self.request).await?
        {
            return Ok(response);
        }
        let target = idempotency::compensation_target(
            &mut tx,
            by_id,
            self.forward_operation,
            self.forward_key.1,
            self.target_of,
        )
        .await?;
        let response = match target {
            Some(id) => undo(&mut tx, id).await?,
            // Nothing took effect yet, and now it never will.
            None => Resp::default(),
        };
        idempotency::commit(tx, self.operation, self.key, &response).await?;
        Ok(response)
    }
}
