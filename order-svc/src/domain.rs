//! Order rules, free of I/O: the status state machine and the arithmetic of lines.

use platform::ApiError;
use platform::reason::Reason;

/// The status of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Confirmed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
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
pub fn transition(from: Status, to: Status) -> Result<Transition, ApiError> {
    match (from, to) {
        (Status::Pending, Status::Confirmed | Status::Cancelled) => Ok(Transition::Apply),
        (from, to) if from == to => Ok(Transition::AlreadyThere),
        (from, to) => Err(ApiError::precondition(
            Reason::IllegalTransition,
            format!(
                "an order that is {} cannot become {}",
                from.as_str(),
                to.as_str()
            ),
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
            transition(Status::Pending, Status::Confirmed).ok(),
            Some(Transition::Apply)
        );
        assert_eq!(
            transition(Status::Pending, Status::Cancelled).ok(),
            Some(Transition::Apply)
        );
    }

    #[test]
    fn reaching_the_current_state_is_a_no_op() {
        for s in [Status::Confirmed, Status::Cancelled] {
            assert_eq!(transition(s, s).ok(), Some(Transition::AlreadyThere));
        }
    }

    #[test]
    fn final_states_are_final() {
        assert!(transition(Status::Cancelled, Status::Confirmed).is_err());
        assert!(transition(Status::Confirmed, Status::Cancelled).is_err());
        assert!(transition(Status::Confirmed, Status::Pending).is_err());
    }

    #[test]
    fn line_totals_check_overflow() {
        assert_eq!(line_total(250, 4), Some(1000));
        assert_eq!(line_total(i64::MAX, 2), None);
    }
}
