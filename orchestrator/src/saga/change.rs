//! What a decision writes: a change to the saga row and changes to its step rows. The
//! rules produce these as plain data; the store applies one batch in one statement.

use super::{FailureReason, GrpcCode, ResumePoint, SagaStatus, Step, StepStatus};
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

    /// The intent to run `step`: committed before its call is made.
    pub fn start(step: Step) -> Self {
        Self {
            status: Some(StepStatus::Running),
            start: true,
            ..Self::of(step)
        }
    }
}

/// A change to the saga row; `None` fields are left as they are, except `resume_from`,
/// which goes with the status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaChange {
    pub status: Option<SagaStatus>,
    /// Where the saga resumes: written with every change of `status` (and only then), so it
    /// is set exactly while the saga is parked ([`SagaChange::parked`]) and cleared by any
    /// other status.
    pub resume_from: Option<ResumePoint>,
    pub failure_reason: Option<FailureReason>,
    pub order_id: Option<OrderId>,
    pub payment_id: Option<String>,
    pub tracking_number: Option<String>,
}

impl SagaChange {
    /// A change to `status`; not parked, so it clears any resume point.
    pub fn status(status: SagaStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Parks the saga (NEEDS_ATTENTION), recording where an operator's resume takes it.
    pub fn parked(resume_from: ResumePoint) -> Self {
        Self {
            status: Some(SagaStatus::NeedsAttention),
            resume_from: Some(resume_from),
            ..Self::default()
        }
    }

    /// How durable a write of this change must be before the saga acts on it: a change
    /// of status is a decision, anything else is re-derived by a replay.
    pub fn durability(&self) -> Durability {
        if self.status.is_some() {
            Durability::Flushed
        } else {
            Durability::Deferred
        }
    }
}

/// Whether a record must reach the disk (the WAL flushed) before its commit returns.
///
/// A **decision** (to compensate, to finish, to park, to resume: every change of the
/// saga's status) and the saga's creation are `Flushed`: something acts on them at once
/// (a compensation call, the caller's answer), and a crash must not take them back.
///
/// Everything else a replay after a crash re-derives identically, so it is `Deferred`
/// (`synchronous_commit = off`: Postgres flushes it within ~3 × `wal_writer_delay`, or
/// sooner with any later flushed commit, since a flush covers everything before it): a
/// step's intent (the replay writes it again), a forward step's or a compensation's
/// outcome (the replay repeats the call with the same idempotency key, and the service
/// returns the same answer it stored), a failed round's error and attempt counts. A
/// refusal always comes with a decision (the saga turns to compensation or parks), so it
/// is flushed; that is why the services need not keep refusals under their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Flushed,
    Deferred,
}

impl Durability {
    /// The `synchronous_commit` setting that gives this durability.
    pub fn synchronous_commit(self) -> &'static str {
        match self {
            Self::Flushed => "on",
            Self::Deferred => "off",
        }
    }
}
