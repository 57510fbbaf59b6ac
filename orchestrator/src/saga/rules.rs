//! The saga's state machine, pure: given what is on disk and what a call returned, which
//! records to write and what to do next. The engine does the calls and the writes; it
//! never decides on its own (restate keeps its invocation state machine apart from the
//! task that does the I/O in the same way).

use super::{
    FailureReason, SagaChange, SagaStatus, Step, StepChange, StepError, StepState, StepStatus,
};
use crate::{classify::is_refusal, ids::OrderId};

/// A saga's state as the rules see it: what the driver holds in memory, kept equal to the
/// rows by applying every [`Transition`] to both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaState {
    pub status: SagaStatus,
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
    /// (failed with `dependency_unavailable`, so ResumeCheckout compensates).
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
            Decision::Record(park(StepChange {
                add_attempts: attempts,
                error: Some(error),
                ..StepChange::of(step)
            }))
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
            parked.saga.status = Some(SagaStatus::NeedsAttention);
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
        Err(error) if error.code.is_some_and(|c| is_refusal(c.0)) => {
            Decision::Record(park(StepChange {
                error: Some(error),
                ..change
            }))
        }
        Err(error) => Decision::RetryLater(Transition {
            saga: SagaChange::default(),
            steps: vec![StepChange {
                error: Some(error),
                ..change
            }],
        }),
    }
}

/// Parks the saga as NEEDS_ATTENTION with the step change that says why.
fn park(change: StepChange) -> Transition {
    Transition {
        saga: SagaChange::status(SagaStatus::NeedsAttention),
        steps: vec![change],
    }
}

/// An operator resumes a parked saga: back to what it was doing (compensating once it
/// has a failure reason, else forward past the pivot). `None` unless it is parked.
pub fn resume(state: &SagaState) -> Option<Transition> {
    (state.status == SagaStatus::NeedsAttention).then(|| {
        let status = if state.failure_reason.is_some() {
            SagaStatus::Compensating
        } else {
            SagaStatus::Running
        };
        Transition {
            saga: SagaChange::status(status),
            steps: Vec::new(),
        }
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
mod tests {
    use super::*;
    use crate::saga::{Durability, GrpcCode};

    fn state(step: Step, status: StepStatus) -> StepState {
        StepState {
            step,
            status,
            uncertain: false,
        }
    }

    fn saga(statuses: &[StepStatus]) -> SagaState {
        SagaState {
            status: SagaStatus::Running,
            failure_reason: None,
            order_id: None,
            steps: Step::ALL
                .iter()
                .enumerate()
                .map(|(i, s)| state(*s, statuses.get(i).copied().unwrap_or(StepStatus::Pending)))
                .collect(),
        }
    }

    use StepStatus::{Compensated, Compensating, Failed, Pending, Running, Succeeded};

    #[test]
    fn forward_resumes_at_the_first_unfinished_step() {
        let s = saga(&[Succeeded, Succeeded, Running]);
        assert_eq!(next_action(&s), Action::Forward(Step::ChargePayment));
        assert_eq!(
            start_forward(&s, Step::ChargePayment),
            None,
            "intent on disk"
        );
        let done = saga(&[Succeeded; 6]);
        assert_eq!(next_action(&done), Action::Complete);
    }

    #[test]
    fn a_success_is_written_with_the_next_intent() {
        let s = saga(&[Succeeded, Succeeded, Running]);
        let Decision::Record(t) = after_forward(
            &s,
            Step::ChargePayment,
            2,
            Outcome::Done(Effects {
                payment_id: Some("p1".into()),
                ..Effects::default()
            }),
        ) else {
            panic!("a success is recorded");
        };
        assert_eq!(t.saga.payment_id.as_deref(), Some("p1"));
        assert_eq!(t.steps[0].status, Some(Succeeded));
        assert_eq!(t.steps[0].add_attempts, 2);
        assert_eq!(t.steps[1], StepChange::start(Step::ReserveStock));
        assert_eq!(
            t.saga.durability(),
            Durability::Deferred,
            "a replay repeats the key and records the same"
        );
        // The last step's success completes the saga in the same write.
        let last = saga(&[
            Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Running,
        ]);
        let Decision::Record(t) = after_forward(
            &last,
            Step::ConfirmOrder,
            1,
            Outcome::Done(Effects::default()),
        ) else {
            panic!("a success is recorded");
        };
        assert_eq!(t.saga.status, Some(SagaStatus::Completed));
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.saga.durability(), Durability::Flushed, "a decision");
    }

    #[test]
    fn an_intent_is_deferred_and_every_status_change_flushed() {
        let s = saga(&[Succeeded, Pending]);
        let intent = start_forward(&s, Step::CreateOrder).expect("not on disk yet");
        assert_eq!(intent.saga.durability(), Durability::Deferred);
        for status in [
            SagaStatus::Running,
            SagaStatus::Compensating,
            SagaStatus::Completed,
            SagaStatus::Cancelled,
            SagaStatus::NeedsAttention,
        ] {
            assert_eq!(SagaChange::status(status).durability(), Durability::Flushed);
        }
    }

    #[test]
    fn a_refusal_compensates_and_says_whether_the_call_may_have_landed() {
        let s = saga(&[Succeeded, Succeeded, Succeeded, Running]);
        let refused = |attempts, code| {
            after_forward(
                &s,
                Step::ReserveStock,
                attempts,
                Outcome::Refused {
                    reason: FailureReason::OutOfStock,
                    error: StepError::new("no stock", Some(code)),
                },
            )
        };
        let Decision::Record(t) = refused(1, tonic::Code::FailedPrecondition) else {
            panic!("before the pivot a refusal is recorded");
        };
        assert_eq!(t.saga.status, Some(SagaStatus::Compensating));
        assert_eq!(t.saga.failure_reason, Some(FailureReason::OutOfStock));
        assert_eq!(t.steps[0].uncertain, Some(false));
        assert_eq!(t.saga.durability(), Durability::Flushed, "a decision");
        let Decision::Record(t) = refused(3, tonic::Code::FailedPrecondition) else {
            panic!("recorded");
        };
        assert_eq!(
            t.steps[0].uncertain,
            Some(true),
            "an earlier attempt may land"
        );
        let Decision::Record(t) = refused(1, tonic::Code::AlreadyExists) else {
            panic!("recorded");
        };
        assert_eq!(t.steps[0].uncertain, Some(true), "the key took effect");
    }

    #[test]
    fn a_conflict_parks_with_a_failure_so_that_resuming_compensates() {
        let s = saga(&[Succeeded, Succeeded, Succeeded, Running]);
        let Decision::Record(t) = after_forward(
            &s,
            Step::ReserveStock,
            1,
            Outcome::Conflict {
                error: StepError::new(
                    "ORDER_ALREADY_RESERVED: held",
                    Some(tonic::Code::FailedPrecondition),
                ),
            },
        ) else {
            panic!("before the pivot a conflict is recorded");
        };
        assert_eq!(t.saga.status, Some(SagaStatus::NeedsAttention));
        assert_eq!(
            t.saga.failure_reason,
            Some(FailureReason::DependencyUnavailable)
        );
        assert_eq!(t.steps[0].status, Some(Failed));
        assert_eq!(t.saga.durability(), Durability::Flushed, "a decision");
        let mut parked = s.clone();
        parked.apply(&t);
        assert_eq!(next_action(&parked), Action::Parked, "nothing moves it");
        let resumed = resume(&parked).expect("parked");
        assert_eq!(resumed.saga.status, Some(SagaStatus::Compensating));
        parked.apply(&resumed);
        assert_eq!(
            next_action(&parked),
            Action::Compensate(Step::ChargePayment),
            "the conflicting step took nothing under its key"
        );
    }

    #[test]
    fn an_unavailable_dependency_compensates_as_uncertain() {
        let s = saga(&[Succeeded, Running]);
        let Decision::Record(t) = after_forward(
            &s,
            Step::CreateOrder,
            5,
            Outcome::Unavailable {
                error: StepError::new("down", Some(tonic::Code::Unavailable)),
            },
        ) else {
            panic!("recorded");
        };
        assert_eq!(
            t.saga.failure_reason,
            Some(FailureReason::DependencyUnavailable)
        );
        assert_eq!(t.steps[0].uncertain, Some(true));
        assert_eq!(
            t.steps[0].error.as_ref().and_then(|e| e.code),
            Some(GrpcCode(tonic::Code::Unavailable))
        );
    }

    #[test]
    fn past_the_pivot_failures_are_retried_or_parked_never_compensated() {
        let mut s = saga(&[
            Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Running,
        ]);
        let down = Outcome::Unavailable {
            error: StepError::new("down", Some(tonic::Code::Unavailable)),
        };
        let Decision::RetryLater(t) = after_forward(&s, Step::ConfirmOrder, 1, down) else {
            panic!("a transient failure is retried");
        };
        assert_eq!(t.saga, SagaChange::default());
        assert_eq!(t.steps[0].status, None);

        let refused = Outcome::Refused {
            reason: FailureReason::DependencyUnavailable,
            error: StepError::new("illegal", Some(tonic::Code::FailedPrecondition)),
        };
        let Decision::Record(t) = after_forward(&s, Step::ConfirmOrder, 1, refused) else {
            panic!("a refusal parks");
        };
        assert_eq!(t.saga, SagaChange::status(SagaStatus::NeedsAttention));
        assert_eq!(t.saga.failure_reason, None, "not compensating");
        s.apply(&t);
        assert_eq!(next_action(&s), Action::Parked);
        let resumed = resume(&s).expect("a parked saga resumes");
        s.apply(&resumed);
        assert_eq!(next_action(&s), Action::Forward(Step::ConfirmOrder));
        assert_eq!(resume(&s), None, "only a parked saga resumes");
    }

    #[test]
    fn compensation_runs_in_reverse_and_skips_what_never_took_effect() {
        let mut s = saga(&[Succeeded, Succeeded, Succeeded, Failed]);
        s.status = SagaStatus::Compensating;
        assert_eq!(
            to_compensate(&s.steps),
            [Step::ChargePayment, Step::CreateOrder]
        );
        // A reservation that timed out may have landed: release it too, first.
        s.steps[3].uncertain = true;
        assert_eq!(next_action(&s), Action::Compensate(Step::ReserveStock));
        // Finished compensations are not repeated after a restart.
        s.steps[3].status = Compensated;
        s.steps[2].status = Compensating;
        assert_eq!(
            to_compensate(&s.steps),
            [Step::ChargePayment, Step::CreateOrder]
        );
        assert_eq!(start_compensation(&s, Step::ChargePayment), None);
        s.steps[2].status = Compensated;
        s.steps[1].status = Compensated;
        assert_eq!(next_action(&s), Action::Cancel);
        let end = finish(&s, SagaStatus::Cancelled);
        let skipped: Vec<Step> = end.steps.iter().map(|c| c.step).collect();
        assert_eq!(skipped, [Step::CreateShipment, Step::ConfirmOrder]);
        s.apply(&end);
        assert_eq!(next_action(&s), Action::Ended);
        assert!(s.steps.iter().all(|st| st.status != Pending));
    }

    #[test]
    fn a_failed_compensation_keeps_its_error_and_is_not_finished() {
        let failed = after_compensation(
            Step::ChargePayment,
            3,
            Err(StepError::new("down", Some(tonic::Code::Unavailable))),
        );
        let Decision::RetryLater(t) = failed else {
            panic!("a transient failure is retried");
        };
        assert_eq!(t.saga, SagaChange::default());
        assert_eq!(t.steps[0].status, None);
        assert_eq!(t.steps[0].add_compensation_attempts, 3);
        let Decision::Record(t) = after_compensation(Step::ChargePayment, 1, Ok(())) else {
            panic!("a success finishes it");
        };
        assert_eq!(t.steps[0].status, Some(Compensated));
    }

    #[test]
    fn a_refused_compensation_parks_the_saga_and_resumes_compensating() {
        let mut s = saga(&[Succeeded, Succeeded, Succeeded, Failed]);
        s.status = SagaStatus::Compensating;
        s.failure_reason = Some(FailureReason::OutOfStock);
        let refused = Err(StepError::new(
            "already refunded",
            Some(tonic::Code::FailedPrecondition),
        ));
        let Decision::Record(t) = after_compensation(Step::ChargePayment, 1, refused) else {
            panic!("a refusal is recorded, not retried");
        };
        assert_eq!(t.saga.status, Some(SagaStatus::NeedsAttention));
        assert!(t.steps[0].error.is_some(), "the step says why");
        s.apply(&t);
        assert_eq!(next_action(&s), Action::Parked);
        let resumed = resume(&s).expect("a parked saga resumes");
        assert_eq!(resumed.saga.status, Some(SagaStatus::Compensating));
        s.apply(&resumed);
        assert_eq!(next_action(&s), Action::Compensate(Step::ChargePayment));
    }
}
