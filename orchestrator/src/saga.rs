//! The checkout saga as data: its steps, statuses and the rules that decide what runs
//! next. Pure, so the rules are unit-tested without a database or a network.
//!
//! Forward: price_cart → create_order → charge_payment → reserve_stock →
//! create_shipment → confirm_order. `create_shipment` is the pivot: once it succeeds the
//! saga only goes forward, so `confirm_order` is retried until it succeeds. Before the
//! pivot, a business failure (or a dependency that stays down) compensates every step
//! that took effect or may have, in reverse order.

use std::fmt;

/// One step of the checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    PriceCart,
    CreateOrder,
    ChargePayment,
    ReserveStock,
    CreateShipment,
    ConfirmOrder,
}

impl Step {
    /// In forward order.
    pub const ALL: [Step; 6] = [
        Step::PriceCart,
        Step::CreateOrder,
        Step::ChargePayment,
        Step::ReserveStock,
        Step::CreateShipment,
        Step::ConfirmOrder,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::PriceCart => "price_cart",
            Step::CreateOrder => "create_order",
            Step::ChargePayment => "charge_payment",
            Step::ReserveStock => "reserve_stock",
            Step::CreateShipment => "create_shipment",
            Step::ConfirmOrder => "confirm_order",
        }
    }

    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn position(self) -> i32 {
        Step::ALL
            .iter()
            .position(|s| *s == self)
            .map_or(0, |p| p as i32)
    }

    /// Whether the step changes another service's state and so has a compensation.
    pub fn compensable(self) -> bool {
        matches!(
            self,
            Step::CreateOrder | Step::ChargePayment | Step::ReserveStock | Step::CreateShipment
        )
    }

    /// Steps after the pivot are retried until they succeed, never compensated.
    pub fn after_pivot(self) -> bool {
        self == Step::ConfirmOrder
    }

    /// The idempotency key of the forward call: the same for every retry and replay.
    pub fn key(self, saga_id: uuid::Uuid) -> String {
        format!("{saga_id}/{}", self.name())
    }

    /// The idempotency key of the compensation.
    pub fn compensation_key(self, saga_id: uuid::Uuid) -> String {
        format!("{saga_id}/{}/compensate", self.name())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStatus {
    Running,
    Compensating,
    Completed,
    Cancelled,
}

impl SagaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Compensating => "COMPENSATING",
            Self::Completed => "COMPLETED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Compensating,
            Self::Completed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Compensating,
    Compensated,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Compensating => "COMPENSATING",
            Self::Compensated => "COMPENSATED",
            Self::Skipped => "SKIPPED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Compensating,
            Self::Compensated,
            Self::Skipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Why a checkout was cancelled, as CONTRACT.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    CardDeclined,
    InsufficientFunds,
    OutOfStock,
    UndeliverableAddress,
    DependencyUnavailable,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::OutOfStock => "out_of_stock",
            Self::UndeliverableAddress => "undeliverable_address",
            Self::DependencyUnavailable => "dependency_unavailable",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::CardDeclined,
            Self::InsufficientFunds,
            Self::OutOfStock,
            Self::UndeliverableAddress,
            Self::DependencyUnavailable,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// The reason for a payment decline reason.
    pub fn from_decline(decline_reason: &str) -> Self {
        match decline_reason {
            "insufficient_funds" => Self::InsufficientFunds,
            _ => Self::CardDeclined,
        }
    }

    /// The reason for a downstream `ErrorInfo.reason` of a business refusal.
    pub fn from_refusal(step: Step, error_reason: &str) -> Self {
        match (step, error_reason) {
            (_, "OUT_OF_STOCK") | (Step::ReserveStock, _) => Self::OutOfStock,
            (_, "UNDELIVERABLE_ADDRESS") | (Step::CreateShipment, _) => Self::UndeliverableAddress,
            // The payment service refused the token or the amount: the card was declined.
            (Step::ChargePayment, _) => Self::CardDeclined,
            _ => Self::DependencyUnavailable,
        }
    }
}

/// A step as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepState {
    pub step: Step,
    pub status: StepStatus,
    /// Failed with an unknown effect (the call may have landed): compensate it.
    pub uncertain: bool,
}

/// The first forward step still to run, in order; `None` when all succeeded.
pub fn next_forward(steps: &[StepState]) -> Option<Step> {
    Step::ALL.into_iter().find(|step| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: Step, status: StepStatus) -> StepState {
        StepState {
            step,
            status,
            uncertain: false,
        }
    }

    #[test]
    fn names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.name()), Some(step));
        }
        assert_eq!(
            SagaStatus::parse("COMPENSATING"),
            Some(SagaStatus::Compensating)
        );
        assert_eq!(StepStatus::parse("SKIPPED"), Some(StepStatus::Skipped));
    }

    #[test]
    fn forward_resumes_at_the_first_unfinished_step() {
        let steps = [
            state(Step::PriceCart, StepStatus::Succeeded),
            state(Step::CreateOrder, StepStatus::Succeeded),
            state(Step::ChargePayment, StepStatus::Running),
            state(Step::ReserveStock, StepStatus::Pending),
        ];
        assert_eq!(next_forward(&steps), Some(Step::ChargePayment));
        let done: Vec<_> = Step::ALL.map(|s| state(s, StepStatus::Succeeded)).into();
        assert_eq!(next_forward(&done), None);
    }

    #[test]
    fn compensation_runs_in_reverse_and_skips_what_never_took_effect() {
        let mut steps = vec![
            state(Step::PriceCart, StepStatus::Succeeded),
            state(Step::CreateOrder, StepStatus::Succeeded),
            state(Step::ChargePayment, StepStatus::Succeeded),
            state(Step::ReserveStock, StepStatus::Failed),
            state(Step::CreateShipment, StepStatus::Pending),
        ];
        assert_eq!(
            to_compensate(&steps),
            [Step::ChargePayment, Step::CreateOrder]
        );
        // A reservation that timed out may have landed: release it too, first.
        steps[3].uncertain = true;
        assert_eq!(
            to_compensate(&steps),
            [Step::ReserveStock, Step::ChargePayment, Step::CreateOrder]
        );
        // Finished compensations are not repeated after a restart.
        steps[3].status = StepStatus::Compensated;
        steps[2].status = StepStatus::Compensating;
        assert_eq!(
            to_compensate(&steps),
            [Step::ChargePayment, Step::CreateOrder]
        );
    }

    #[test]
    fn keys_derive_from_saga_and_step() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            Step::ChargePayment.key(id),
            "00000000-0000-0000-0000-000000000000/charge_payment"
        );
        assert_ne!(
            Step::ChargePayment.key(id),
            Step::ChargePayment.compensation_key(id)
        );
    }

    #[test]
    fn refusals_map_to_contract_reasons() {
        assert_eq!(
            FailureReason::from_decline("card_declined").as_str(),
            "card_declined"
        );
        assert_eq!(
            FailureReason::from_decline("insufficient_funds").as_str(),
            "insufficient_funds"
        );
        assert_eq!(
            FailureReason::from_refusal(Step::ReserveStock, "OUT_OF_STOCK"),
            FailureReason::OutOfStock
        );
        assert_eq!(
            FailureReason::from_refusal(Step::CreateShipment, "UNDELIVERABLE_ADDRESS"),
            FailureReason::UndeliverableAddress
        );
        assert_eq!(
            FailureReason::from_refusal(Step::CreateOrder, "SOMETHING"),
            FailureReason::DependencyUnavailable
        );
    }
}
