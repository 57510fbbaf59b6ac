//! Payment rules, free of I/O: what a test token does, and which status changes a refund
//! may make.

use platform::ApiError;
use platform::reason::Reason;
use shop_proto::reason::failure;

/// The state of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Captured,
    Refunded,
    Declined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "CAPTURED",
            Self::Refunded => "REFUNDED",
            Self::Declined => "DECLINED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "CAPTURED" => Some(Self::Captured),
            "REFUNDED" => Some(Self::Refunded),
            "DECLINED" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// What the card network says about a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline(&'static str),
}

/// The decision for a test token (`platform::validate::PAYMENT_TOKENS`); `None` for a
/// token this test gateway does not know.
pub fn decide(token: &str) -> Option<Decision> {
    match token {
        "tok_visa" | "tok_mastercard" => Some(Decision::Approve),
        "tok_chargeDeclined" => Some(Decision::Decline(failure::CARD_DECLINED)),
        "tok_insufficientFunds" => Some(Decision::Decline(failure::INSUFFICIENT_FUNDS)),
        _ => None,
    }
}

/// What a refund does to a payment in `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundEffect {
    /// Captured money goes back.
    Refund,
    /// A decline took nothing: nothing to give back.
    Nothing,
}

/// Refund rules: a capture is refunded once; a second refund under another key is an
/// error, because moving money must never be silently repeated or silently skipped.
pub fn refund_effect(status: Status) -> Result<RefundEffect, ApiError> {
    match status {
        Status::Captured => Ok(RefundEffect::Refund),
        Status::Declined => Ok(RefundEffect::Nothing),
        Status::Refunded => Err(ApiError::precondition(
            Reason::AlreadyRefunded,
            "the payment was already refunded under another idempotency key",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tokens_decide_as_documented() {
        assert_eq!(decide("tok_visa"), Some(Decision::Approve));
        assert_eq!(decide("tok_mastercard"), Some(Decision::Approve));
        assert_eq!(
            decide("tok_chargeDeclined"),
            Some(Decision::Decline("card_declined"))
        );
        assert_eq!(
            decide("tok_insufficientFunds"),
            Some(Decision::Decline("insufficient_funds"))
        );
        assert_eq!(decide("tok_amex_typo"), None);
        assert!(
            platform::validate::PAYMENT_TOKENS
                .iter()
                .all(|t| decide(t).is_some())
        );
    }

    #[test]
    fn a_capture_is_refunded_once() {
        assert_eq!(
            refund_effect(Status::Captured).ok(),
            Some(RefundEffect::Refund)
        );
        assert_eq!(
            refund_effect(Status::Declined).ok(),
            Some(RefundEffect::Nothing)
        );
        assert!(refund_effect(Status::Refunded).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [Status::Captured, Status::Refunded, Status::Declined] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
