//! What a decision writes: a change to the saga row and changes to its step rows. The
//! rules produce these as plain data; the store applies one batch in one statement.

use super::{FailureReason, GrpcCode, SagaStatus, Step, StepStatus};
use crate::ids::OrderId;

/// Why a step's last call failed, as the saga's record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub message: String,
    /// The gRPC code of the failure; `None` for a refusal carried in a successful reply (a
    /// declined card).
    pub code: Option<GrpcCode>,
}

impl StepError {
    pub fn new(message: impl Into<String>, code: Option<tonic::Code>) -> Self {
        Self {
            message: message.into(),
            code: code.map(GrpcCode),
        }
    }
}

/// One change to one step. `None`/`false`/0 fields leave the column as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChange {
    pub step: Step,
    pub status: Option<StepStatus>,
    pub uncertain: Option<bool>,
    pub add_attempts: i32,
    /// Stamp the step's start (once: a replay keeps the first start).
    pub start: bool,
    /// Stamp the step's end.
    pub end: bool,
    pub error: Option<StepError>,
    pub add_compensation_attempts: i32,
    pub compensation_end: bool,
}

impl StepChange {
    /// No change yet to `step`; set the fields that change.
    pub fn of(step: Step) -> Self {
        Self {
            step,
            status: None,
            uncertain: None,
            add_attempts: 0,
            start: false,
            end: false,
            error: None,
            add_compensation_attempts: 0,
            compensation_end: false,
        }
    }

    /// The intent to run `step`: on disk before its call is made.
    pub fn start(step: Step) -> Self {
        Self {
            status: Some(StepStatus::Running),
            start: true,
            ..Self::of(step)
        }
    }
}

/// A change to the saga row; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaChange {
    pub status: Option<SagaStatus>,
    pub failure_reason: Option<FailureReason>,
    pub order_id: Option<OrderId>,
    pub payment_id: Option<String>,
    pub tracking_number: Option<String>,
}

impl SagaChange {
    pub fn status(status: SagaStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }
}
