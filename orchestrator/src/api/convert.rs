//! The one mapping between the saga's typed state and `shop.checkout.v1` messages. The
//! wire spells "none" as an empty string (or UNSPECIFIED); the rows as `None`.

use std::time::Duration;

use platform::time::timestamp;
use shop_proto::checkout::v1 as pb;
use shop_proto::common::v1 as common;

use crate::{
    saga::{CoordinationMode, FailureReason, SagaStatus, StepStatus},
    store::{EventRow, SagaRow, StepRow},
};

impl From<SagaStatus> for pb::CheckoutStatus {
    fn from(status: SagaStatus) -> Self {
        match status {
            SagaStatus::Running => Self::Running,
            SagaStatus::Compensating => Self::Compensating,
            SagaStatus::Completed => Self::Completed,
            SagaStatus::Cancelled => Self::Cancelled,
            SagaStatus::NeedsAttention => Self::NeedsAttention,
        }
    }
}

impl From<StepStatus> for pb::StepStatus {
    fn from(status: StepStatus) -> Self {
        match status {
            StepStatus::Pending => Self::Pending,
            StepStatus::Running => Self::Running,
            StepStatus::Succeeded => Self::Succeeded,
            StepStatus::Failed => Self::Failed,
            StepStatus::Compensating => Self::Compensating,
            StepStatus::Compensated => Self::Compensated,
            StepStatus::Skipped => Self::Skipped,
        }
    }
}

impl From<CoordinationMode> for pb::CoordinationMode {
    fn from(mode: CoordinationMode) -> Self {
        match mode {
            CoordinationMode::Orchestrated => Self::Orchestrated,
            CoordinationMode::Choreographed => Self::Choreographed,
        }
    }
}

/// The mode a request names; `None` for UNSPECIFIED (the caller decides what that means).
pub fn mode(mode: pb::CoordinationMode) -> Option<CoordinationMode> {
    match mode {
        pb::CoordinationMode::Unspecified => None,
        pb::CoordinationMode::Orchestrated => Some(CoordinationMode::Orchestrated),
        pb::CoordinationMode::Choreographed => Some(CoordinationMode::Choreographed),
    }
}

/// The saga status a `ListCheckouts` filter asks for; `None` for no filter.
pub fn status_filter(status: pb::CheckoutStatus) -> Option<SagaStatus> {
    match status {
        pb::CheckoutStatus::Unspecified => None,
        pb::CheckoutStatus::Running => Some(SagaStatus::Running),
        pb::CheckoutStatus::Compensating => Some(SagaStatus::Compensating),
        pb::CheckoutStatus::Completed => Some(SagaStatus::Completed),
        pb::CheckoutStatus::Cancelled => Some(SagaStatus::Cancelled),
        pb::CheckoutStatus::NeedsAttention => Some(SagaStatus::NeedsAttention),
    }
}

pub fn to_step(row: StepRow) -> pb::Step {
    pb::Step {
        name: row.step.code().to_owned(),
        status: pb::StepStatus::from(row.status).into(),
        attempts: row.attempts,
        start_time: row.started_at.map(timestamp),
        end_time: row.ended_at.map(timestamp),
        last_error: row.last_error.unwrap_or_default(),
        last_error_code: row.last_error_code.map(|c| c.name()).unwrap_or_default(),
        compensation_attempts: row.compensation_attempts,
        compensation_end_time: row.compensation_ended_at.map(timestamp),
    }
}

/// A checkout as users see it. `stall_after`: how long without progress flags one that
/// has not ended as stalled.
pub fn to_checkout(row: SagaRow, steps: Vec<StepRow>, stall_after: Duration) -> pb::Checkout {
    let quiet = (chrono::Utc::now() - row.updated_at)
        .to_std()
        .unwrap_or_default();
    let stalled = row.status.is_moving() && quiet >= stall_after;
    pb::Checkout {
        checkout_id: row.saga_id.to_string(),
        order_id: row.order_id.map(|id| id.to_string()).unwrap_or_default(),
        status: pb::CheckoutStatus::from(row.status).into(),
        failure_reason: row
            .failure_reason
            .map(FailureReason::code)
            .unwrap_or_default()
            .to_owned(),
        total: Some(common::Money {
            amount_minor: row.total_minor,
            currency: row.currency,
        }),
        tracking_number: row.tracking_number.unwrap_or_default(),
        steps: steps.into_iter().map(to_step).collect(),
        customer_id: row.customer_id,
        payment_id: row.payment_id.unwrap_or_default(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        mode: pb::CoordinationMode::from(row.mode).into(),
        stalled,
    }
}

/// One WatchCheckout message: the event's step as it stood then (its status as of the
/// event, the rest as it is now), and the saga's status then.
pub fn to_event(event: &EventRow, steps: &[pb::Step]) -> pb::WatchCheckoutResponse {
    let step = event.step.and_then(|step| {
        steps
            .iter()
            .find(|s| s.name == step.code())
            .map(|now| pb::Step {
                status: event
                    .step_status
                    .map_or(pb::StepStatus::Unspecified, pb::StepStatus::from)
                    .into(),
                ..now.clone()
            })
    });
    pb::WatchCheckoutResponse {
        step,
        status: pb::CheckoutStatus::from(event.saga_status).into(),
        event_time: Some(timestamp(event.created_at)),
    }
}
