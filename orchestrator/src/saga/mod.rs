//! The checkout saga as data: its steps, statuses and failure reasons, and the pure rules
//! that decide what happens next (`rules`) and what a decision writes (`change`). No I/O
//! here, so every rule is unit-tested without a database or a network; the engine does
//! the I/O and asks these rules what to do.
//!
//! Forward: price_cart → create_order → charge_payment → reserve_stock →
//! create_shipment → confirm_order. `create_shipment` is the pivot: once it succeeds the
//! saga only goes forward, so `confirm_order` is retried until it succeeds. Before the
//! pivot, a business failure (or a dependency that stays down) compensates every step
//! that took effect or may have, in reverse order.

pub mod change;
pub mod choreography;
pub mod code;
pub mod rules;

pub use change::{Durability, SagaChange, StepChange, StepError};
pub use code::GrpcCode;
pub use platform::stored::UnknownCode;

use crate::ids::{IdempotencyKey, SagaId};
use platform::stored_code;

stored_code! {
    /// One step of the checkout. The codes are stored with every saga and are part of
    /// every downstream idempotency key (`{saga_id}/{code}`): **never change one**, or a
    /// saga in flight would send its calls under new keys, and a charge could be taken
    /// twice. Rename the variant freely.
    pub enum Step {
        PriceCart = "price_cart",
        CreateOrder = "create_order",
        ChargePayment = "charge_payment",
        ReserveStock = "reserve_stock",
        CreateShipment = "create_shipment",
        ConfirmOrder = "confirm_order",
    }
}

stored_code! {
    /// Where a saga stands.
    pub enum SagaStatus {
        Running = "RUNNING",
        Compensating = "COMPENSATING",
        Completed = "COMPLETED",
        Cancelled = "CANCELLED",
        NeedsAttention = "NEEDS_ATTENTION",
    }
}

stored_code! {
    /// Where a step stands.
    pub enum StepStatus {
        Pending = "PENDING",
        Running = "RUNNING",
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        Compensating = "COMPENSATING",
        Compensated = "COMPENSATED",
        Skipped = "SKIPPED",
    }
}

stored_code! {
    /// Why a checkout was cancelled: the `failure_reason` users see (documented on
    /// `Checkout.failure_reason` in checkout.proto and in docs/CONTRACT.md).
    pub enum FailureReason {
        CardDeclined = "card_declined",
        InsufficientFunds = "insufficient_funds",
        OutOfStock = "out_of_stock",
        UndeliverableAddress = "undeliverable_address",
        DependencyUnavailable = "dependency_unavailable",
    }
}

stored_code! {
    /// How a checkout is coordinated (see `CoordinationMode` in checkout.proto).
    pub enum CoordinationMode {
        /// Driven by this service's engine, step by step.
        Orchestrated = "orchestrated",
        /// Run by the services' events; this service only follows them.
        Choreographed = "choreographed",
    }
}

stored_code! {
    /// Where a parked (NEEDS_ATTENTION) saga goes on when an operator resumes it, recorded
    /// by the write that parks it: the saga's own record of what it was doing, not a guess
    /// from its other fields.
    pub enum ResumePoint {
        /// Forward: a step past the pivot was refused, and the saga only goes forward.
        Forward = "forward",
        /// Back through its compensations: one was refused, or a step conflicted with
        /// what another key made (the saga failed, and undoes what took effect).
        Compensating = "compensating",
    }
}

impl Step {
    /// Position in forward order (0 = price_cart).
    pub fn position(self) -> i32 {
        Step::ALL
            .iter()
            .position(|s| *s == self)
            .map_or(0, |p| i32::try_from(p).unwrap_or(i32::MAX))
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
    pub fn key(self, saga_id: SagaId) -> IdempotencyKey {
        format!("{saga_id}/{}", self.code()).into()
    }

    /// The idempotency key of the compensation.
    pub fn compensation_key(self, saga_id: SagaId) -> IdempotencyKey {
        format!("{saga_id}/{}/compensate", self.code()).into()
    }
}

impl SagaStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    /// Whether the saga moves by itself: not ended, and not parked for a person.
    pub fn is_moving(self) -> bool {
        matches!(self, Self::Running | Self::Compensating)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_errors() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.code()).ok(), Some(*step));
        }
        assert_eq!(
            SagaStatus::parse("COMPENSATING").ok(),
            Some(SagaStatus::Compensating)
        );
        assert_eq!(StepStatus::parse("SKIPPED").ok(), Some(StepStatus::Skipped));
        assert!(SagaStatus::parse("PAUSED").is_err());
        assert!(Step::parse("charge").is_err());
    }

    #[test]
    fn failure_reasons_are_the_shared_contract_values() {
        use shop_proto::reason::failure;
        let codes: Vec<&str> = FailureReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                failure::CARD_DECLINED,
                failure::INSUFFICIENT_FUNDS,
                failure::OUT_OF_STOCK,
                failure::UNDELIVERABLE_ADDRESS,
                failure::DEPENDENCY_UNAVAILABLE
            ]
        );
    }

    #[test]
    fn keys_derive_from_saga_and_the_steps_frozen_code() {
        let id = SagaId::from(uuid::Uuid::nil());
        // These exact strings are what sagas in flight have already sent: they must not
        // change, whatever the variants are called.
        assert_eq!(
            Step::ChargePayment.key(id).as_str(),
            "00000000-0000-0000-0000-000000000000/charge_payment"
        );
        assert_eq!(
            Step::ChargePayment.compensation_key(id).as_str(),
            "00000000-0000-0000-0000-000000000000/charge_payment/compensate"
        );
        let codes: Vec<&str> = Step::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(
            codes,
            [
                "price_cart",
                "create_order",
                "charge_payment",
                "reserve_stock",
                "create_shipment",
                "confirm_order"
            ]
        );
    }
}
