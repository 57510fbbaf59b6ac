//! Tests of `rules`, kept apart so the rules read on their own.

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
        resume_from: None,
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
    assert_eq!(t.saga, SagaChange::parked(ResumePoint::Forward));
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
