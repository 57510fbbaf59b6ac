//! ResumeCheckout: an operator's restart of a parked checkout.

use platform::{ApiError, reason::Reason};
use shop_proto::checkout::v1 as pb;

use super::CheckoutApi;
use crate::{
    api::{
        command::{self},
        convert::to_checkout,
    },
    driver::loaded::DriveError,
    saga::SagaStatus,
    store::{self, WriteError},
};

impl CheckoutApi {
    pub(super) async fn resume_checkout(
        &self,
        req: pb::ResumeCheckoutRequest,
    ) -> Result<pb::ResumeCheckoutResponse, ApiError> {
        let saga_id = command::resumed(&req)?;
        let Some(claim) =
            store::claim_parked(&self.pool, saga_id, self.engine.lease(), self.retention).await?
        else {
            // Not taken: say why, from the row as it stands.
            let (row, _) = self.load(saga_id).await?;
            if row.status != SagaStatus::NeedsAttention {
                return Err(ApiError::precondition(
                    Reason::CheckoutNotParked,
                    format!("checkout {saga_id} is {}, not NEEDS_ATTENTION", row.status),
                ));
            }
            return Err(ApiError::precondition(
                Reason::CheckoutBeyondRetention,
                format!(
                    "checkout {saga_id} started more than RETENTION ({:?}) ago: the services \
                     no longer hold the keys its compensations need; finish it by hand \
                     (docs/OPERATIONS.md, \"Parked beyond retention\")",
                    self.retention
                ),
            ));
        };
        self.engine
            .resume_parked(claim)
            .await
            .map_err(|error| match error {
                DriveError::Db(db) | DriveError::Write(WriteError::Db(db)) => ApiError::from(db),
                // Another ResumeCheckout claimed it between this one's claim and its first
                // write, and resumed it: for this caller it is no longer parked, as if the
                // other had come first.
                DriveError::Write(WriteError::LeaseLost(_)) => ApiError::precondition(
                    Reason::CheckoutNotParked,
                    format!("checkout {saga_id} was resumed by another call at the same time"),
                ),
                other => ApiError::Internal(other.into()),
            })?;
        let (row, steps) = self.load(saga_id).await?;
        Ok(pb::ResumeCheckoutResponse {
            checkout: Some(to_checkout(row, steps, self.stall_after)),
        })
    }
}
