//! Order rules, free of I/O: the status state machine and the arithmetic of lines.

use platform::ApiError;
use platform::reason::Reason;

platform::stored_code! {
    /// The status of an order, as the order and its history store it.
    pub enum OrderStatus {
        Pending = "PENDING",
        Confirmed = "CONFIRMED",
        Cancelled = "CANCELLED",
    }
}

/// What a requested status change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Record the change.
    Apply,
    /// The order is already there: nothing to record, answer with it as it is.
    AlreadyThere,
}

/// The state machine: PENDING moves once, to CONFIRMED or CANCELLED; reaching the state
/// an order is already in is a no-op; everything else is FAILED_PRECONDITION.
pub fn transition(from: OrderStatus, to: OrderStatus) -> Result<Transition, ApiError> {
    match (from, to) {
        (OrderStatus::Pending, OrderStatus::Confirmed | OrderStatus::Cancelled) => {
            Ok(Transition::Apply)
        }
        (from, to) if from == to => Ok(Transition::AlreadyThere),
        (from, to) => Err(ApiError::precondition(
            Reason::IllegalTransition,
            format!("an order that is {from} cannot become {to}"),
        )),
    }
}

/// The total of a line, or `None` on overflow.
pub fn line_total(unit_price_minor: i64, quantity: i32) -> Option<i64> {
    unit_price_minor.checked_mul(i64::from(quantity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_moves_once() {
        assert_eq!(
            transition(OrderStatus::Pending, OrderStatus::Confirmed).ok(),
            Some(Transition::Apply)
        );
        assert_eq!(
            transition(OrderStatus::Pending, OrderStatus::Cancelled).ok(),
            Some(Transition::Apply)
        );
    }

    #[test]
    fn reaching_the_current_state_is_a_no_op() {
        for s in [OrderStatus::Confirmed, OrderStatus::Cancelled] {
            assert_eq!(transition(s, s).ok(), Some(Transition::AlreadyThere));
        }
    }

    #[test]
    fn final_states_are_final() {
        assert!(transition(OrderStatus::Cancelled, OrderStatus::Confirmed).is_err());
        assert!(transition(OrderStatus::Confirmed, OrderStatus::Cancelled).is_err());
        assert!(transition(OrderStatus::Confirmed, OrderStatus::Pending).is_err());
    }

    #[test]
    fn line_totals_check_overflow() {
        assert_eq!(line_total(250, 4), Some(1000));
        assert_eq!(line_total(i64::MAX, 2), None);
    }
}
