//! The saga's state machine, pure: given what is on disk and what a call returned, which
//! records to write and what to do next. The engine does the calls and the writes; it
//! never decides on its own (restate keeps its invocation state machine apart from the
//! task that does the I/O in the same way).

use super::{
    FailureReason, ResumePoint, SagaChange, SagaStatus, Step, StepChange, StepError, StepState,
    StepStatus,
};
use crate::{downstream::classify::is_refusal, ids::OrderId};

/// A saga's state as the rules see it: what the driver holds in memory, kept equal to the
/// rows by applying every [`Transition`] to both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaState {
    pub status: SagaStatus,
    /// Where the saga resumes; set exactly while it is parked (see [`SagaChange`]).
    pub resume_from: Option<ResumePoint>,
    pub failure_reason: Option<FailureReason>,
    pub order_id: Option<OrderId>,
    /// Every step, in forward order.
    pub steps: Vec<StepState>,
}

/// Records to write together, in one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transition {
    pub saga: SagaChange,
    pub steps: Vec<StepChange>,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run this forward step (its intent may already be on disk).
    Forward(Step),
    /// Every forward step succeeded: record the saga COMPLETED.
    Complete,
    /// Undo this step (its compensation may already have started).
    Compensate(Step),
    /// Every compensation finished: record the saga CANCELLED.
    Cancel,
    /// The saga is over.
    Ended,
    /// The saga waits for a person (NEEDS_ATTENTION): the driver stops.
    Parked,
}

/// What a forward step's effects were, for the saga row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub order_id: Option<OrderId>,
    pub payment_id: Option<String>,
    pub tracking_number: Option<String>,
}

/// How a forward call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(Effects),
    /// A refusal: nothing took effect under this key, compensate what came before, and
    /// end with `reason`.
    Refused {
        reason: FailureReason,
        error: StepError,
    },
    /// The order already has what this step makes, made under another key (a second
    /// payment, reservation, shipment or order): compensating by this step's key would
    /// leave that one standing under a cancelled order, so the saga parks for a person
    /// (failed with `dependency_unavailable`, to resume compensating).
    Conflict {
        error: StepError,
    },
    /// Retries exhausted, or a failure whose effect is unknown.
    Unavailable {
        error: StepError,
    },
}

/// What to do with a forward call's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this and go on with [`next_action`].
    Record(Transition),
    /// The step must succeed (past the pivot, or a compensation) and this failure may
    /// pass: write this, wait, and call again.
    RetryLater(Transition),
}

impl SagaState {
    /// A saga just created: RUNNING, each step as [`initial_status`] says.
    pub fn created() -> Self {
        Self {
            status: SagaStatus::Running,
            resume_from: None,
            failure_reason: None,
            order_id: None,
            steps: Step::ALL
                .iter()
                .map(|&step| StepState {
                    step,
                    status: initial_status(step),
                    uncertain: false,
                })
                .collect(),
        }
    }

    pub fn status_of(&self, step: Step) -> StepStatus {
        self.steps
            .iter()
            .find(|s| s.step == step)
            .map_or(StepStatus::Pending, |s| s.status)
    }

    /// Applies a transition as the store applies it to the rows.
    pub fn apply(&mut self, transition: &Transition) {
        let saga = &transition.saga;
        if let Some(status) = saga.status {
            self.status = status;
            self.resume_from = saga.resume_from;
        }
        if let Some(reason) = saga.failure_reason {
            self.failure_reason = Some(reason);
        }
        if let Some(order_id) = saga.order_id {
            self.order_id = Some(order_id);
        }
        for change in &transition.steps {
            if let Some(state) = self.steps.iter_mut().find(|s| s.step == change.step) {
                if let Some(status) = change.status {
                    state.status = status;
                }
                if let Some(uncertain) = change.uncertain {
                    state.uncertain = uncertain;
                }
            }
        }
    }
}

/// A step's status in a saga just created: priced before the saga starts, the order's
/// creation intended (committed with the saga, before its call), the rest pending. What
/// PlaceOrder records, and what the new saga's driver starts from.
pub fn initial_status(step: Step) -> StepStatus {
    match step {
        Step::PriceCart => StepStatus::Succeeded,
        Step::CreateOrder => StepStatus::Running,
        Step::ChargePayment | Step::ReserveStock | Step::CreateShipment | Step::ConfirmOrder => {
            StepStatus::Pending
        }
    }
}

/// What the driver does next, from the state alone (so a resumed saga picks up exactly
/// where the crashed driver stopped).
pub fn next_action(state: &SagaState) -> Action {
    match state.status {
        SagaStatus::Running => next_forward(&state.steps).map_or(Action::Complete, Action::Forward),
        SagaStatus::Compensating => to_compensate(&state.steps)
            .first()
            .map_or(Action::Cancel, |step| Action::Compensate(*step)),
        SagaStatus::Completed | SagaStatus::Cancelled => Action::Ended,
        SagaStatus::NeedsAttention => Action::Parked,
    }
}

/// The first forward step still to run, in order; `None` when all succeeded.
pub fn next_forward(steps: &[StepState]) -> Option<Step> {
    Step::ALL.iter().copied().find(|step| {
        steps
            .iter()
            .find(|s| s.step == *step)
            .is_none_or(|s| s.status != StepStatus::Succeeded)
    })
}

/// The steps to compensate, in reverse order: every compensable step that took effect or
/// may have, and whose compensation has not finished.
pub fn to_compensate(steps: &[StepState]) -> Vec<Step> {
    let mut pending: Vec<Step> = steps
        .iter()
        .filter(|s| s.step.compensable())
        .filter(|s| match s.status {
            StepStatus::Succeeded | StepStatus::Running | StepStatus::Compensating => true,
            StepStatus::Failed => s.uncertain,
            StepStatus::Pending | StepStatus::Compensated | StepStatus::Skipped => false,
        })
        .map(|s| s.step)
        .collect();
    pending.sort_by_key(|s| std::cmp::Reverse(s.position()));
    pending
}

/// The intent of `step`, unless it is already on disk (a resumed saga).
pub fn start_forward(state: &SagaState, step: Step) -> Option<Transition> {
    (state.status_of(step) != StepStatus::Running).then(|| Transition {
        saga: SagaChange::default(),
        steps: vec![StepChange::start(step)],
    })
}

/// What a forward call's outcome writes. A success is batched with the next step's intent
/// (one commit per step; the intent is still committed before its call).
pub fn after_forward(state: &SagaState, step: Step, attempts: i32, outcome: Outcome) -> Decision {
    match outcome {
        Outcome::Done(effects) => {
            let mut saga = SagaChange {
                order_id: effects.order_id,
                payment_id: effects.payment_id,
                tracking_number: effects.tracking_number,
                ..SagaChange::default()
            };
            let mut steps = vec![StepChange {
                status: Some(StepStatus::Succeeded),
                add_attempts: attempts,
                end: true,
                ..StepChange::of(step)
            }];
            let mut after = state.clone();
            after.apply(&Transition {
                saga: SagaChange::default(),
                steps: steps.clone(),
            });
            match next_forward(&after.steps) {
                Some(next) => steps.push(StepChange::start(next)),
                None => saga.status = Some(SagaStatus::Completed),
            }
            Decision::Record(Transition { saga, steps })
        }
        // Past the pivot the saga only goes forward; a refusal will not pass by itself.
        Outcome::Refused { error, .. } | Outcome::Conflict { error } if step.after_pivot() => {
            Decision::Record(park(
                ResumePoint::Forward,
                StepChange {
                    add_attempts: attempts,
                    error: Some(error),
                    ..StepChange::of(step)
                },
            ))
        }
        Outcome::Unavailable { error } if step.after_pivot() => Decision::RetryLater(Transition {
            saga: SagaChange::default(),
            steps: vec![StepChange {
                add_attempts: attempts,
                error: Some(error),
                ..StepChange::of(step)
            }],
        }),
        Outcome::Refused { reason, error } => {
            // An earlier attempt that timed out may still land under this key, and
            // ALREADY_EXISTS says the key did take effect: undo it to be sure (by key,
            // which only blocks it if nothing landed).
            let landed = error
                .code
                .is_some_and(|c| c.0 == tonic::Code::AlreadyExists);
            Decision::Record(fail(step, attempts, reason, attempts > 1 || landed, error))
        }
        Outcome::Conflict { error } => {
            let mut parked = fail(
                step,
                attempts,
                FailureReason::DependencyUnavailable,
                attempts > 1,
                error,
            );
            parked.saga = SagaChange {
                failure_reason: parked.saga.failure_reason,
                ..SagaChange::parked(ResumePoint::Compensating)
            };
            Decision::Record(parked)
        }
        Outcome::Unavailable { error } => Decision::Record(fail(
            step,
            attempts,
            FailureReason::DependencyUnavailable,
            true,
            error,
        )),
    }
}

/// A failed forward step: the saga turns to compensation, with its reason.
fn fail(
    step: Step,
    attempts: i32,
    reason: FailureReason,
    uncertain: bool,
    error: StepError,
) -> Transition {
    Transition {
        saga: SagaChange {
            status: Some(SagaStatus::Compensating),
            failure_reason: Some(reason),
            ..SagaChange::default()
        },
        steps: vec![StepChange {
            status: Some(StepStatus::Failed),
            uncertain: Some(uncertain),
            add_attempts: attempts,
            end: true,
            error: Some(error),
            ..StepChange::of(step)
        }],
    }
}

/// The start of `step`'s compensation, unless it is already on disk.
pub fn start_compensation(state: &SagaState, step: Step) -> Option<Transition> {
    (state.status_of(step) != StepStatus::Compensating).then(|| Transition {
        saga: SagaChange::default(),
        steps: vec![StepChange {
            status: Some(StepStatus::Compensating),
            ..StepChange::of(step)
        }],
    })
}

/// What a compensation's result writes: done; a transient failure to try again after a
/// wait; or a refusal (the service says no, and asking again will not change it, say
/// ALREADY_REFUNDED) that parks the saga for a person instead of retrying forever.
pub fn after_compensation(step: Step, attempts: i32, result: Result<(), StepError>) -> Decision {
    let change = StepChange {
        add_compensation_attempts: attempts,
        ..StepChange::of(step)
    };
    match result {
        Ok(()) => Decision::Record(Transition {
            saga: SagaChange::default(),
            steps: vec![StepChange {
                status: Some(StepStatus::Compensated),
                compensation_end: true,
                ..change
            }],
        }),
        Err(error) if error.code.is_some_and(|c| is_refusal(c.0)) => Decision::Record(park(
            ResumePoint::Compensating,
            StepChange {
                error: Some(error),
                ..change
            },
        )),
        Err(error) => Decision::RetryLater(Transition {
            saga: SagaChange::default(),
            steps: vec![StepChange {
                error: Some(error),
                ..change
            }],
        }),
    }
}

/// Parks the saga as NEEDS_ATTENTION, to resume from `resume_from`, with the step change
/// that says why.
fn park(resume_from: ResumePoint, change: StepChange) -> Transition {
    Transition {
        saga: SagaChange::parked(resume_from),
        steps: vec![change],
    }
}

/// An operator resumes a parked saga: back to what it was doing, as recorded when it
/// parked. `None` unless it is parked (the database keeps a parked saga's resume point
/// set, so a parked state always has one).
pub fn resume(state: &SagaState) -> Option<Transition> {
    if state.status != SagaStatus::NeedsAttention {
        return None;
    }
    let status = match state.resume_from? {
        ResumePoint::Forward => SagaStatus::Running,
        ResumePoint::Compensating => SagaStatus::Compensating,
    };
    Some(Transition {
        saga: SagaChange::status(status),
        steps: Vec::new(),
    })
}

/// The end of a saga: COMPLETED, or CANCELLED with the steps that never ran SKIPPED.
pub fn finish(state: &SagaState, status: SagaStatus) -> Transition {
    let steps = state
        .steps
        .iter()
        .filter(|s| status == SagaStatus::Cancelled && s.status == StepStatus::Pending)
        .map(|s| StepChange {
            status: Some(StepStatus::Skipped),
            ..StepChange::of(s.step)
        })
        .collect();
    Transition {
        saga: SagaChange::status(status),
        steps,
    }
}

#[cfg(test)]
mod tests;
