//! Payment rules, free of I/O: what a test token does, and which status changes a refund
//! may make; and the payment states and decline reasons as stored.

use platform::ApiError;
use platform::reason::Reason;

platform::stored_code! {
    /// The state of a payment.
    pub enum PaymentStatus {
        Captured = "CAPTURED",
        Refunded = "REFUNDED",
        Declined = "DECLINED",
    }
}

platform::stored_code! {
    /// Why the card network declined a charge: a DECLINED payment has one, no other has.
    /// Spelled as the checkout's failure reasons (`shop_proto::reason::failure`), which
    /// the `PaymentDeclined` event carries on.
    pub enum DeclineReason {
        CardDeclined = "card_declined",
        InsufficientFunds = "insufficient_funds",
    }
}

/// What the card network says about a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline(DeclineReason),
}

/// The decision for a test token (`platform::validate::PAYMENT_TOKENS`); `None` for a
/// token this test gateway does not know.
pub fn decide(token: &str) -> Option<Decision> {
    match token {
        "tok_visa" | "tok_mastercard" => Some(Decision::Approve),
        "tok_chargeDeclined" => Some(Decision::Decline(DeclineReason::CardDeclined)),
        "tok_insufficientFunds" => Some(Decision::Decline(DeclineReason::InsufficientFunds)),
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
pub fn refund_effect(status: PaymentStatus) -> Result<RefundEffect, ApiError> {
    match status {
        PaymentStatus::Captured => Ok(RefundEffect::Refund),
        PaymentStatus::Declined => Ok(RefundEffect::Nothing),
        PaymentStatus::Refunded => Err(ApiError::precondition(
            Reason::AlreadyRefunded,
            "the payment was already refunded under another idempotency key",
        )),
    }
}

#[cfg(test)]
mod tests {
    use shop_proto::reason::failure;

    use super::*;

    #[test]
    fn test_tokens_decide_as_documented() {
        assert_eq!(decide("tok_visa"), Some(Decision::Approve));
        assert_eq!(decide("tok_mastercard"), Some(Decision::Approve));
        assert_eq!(
            decide("tok_chargeDeclined"),
            Some(Decision::Decline(DeclineReason::CardDeclined))
        );
        assert_eq!(
            decide("tok_insufficientFunds"),
            Some(Decision::Decline(DeclineReason::InsufficientFunds))
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
            refund_effect(PaymentStatus::Captured).ok(),
            Some(RefundEffect::Refund)
        );
        assert_eq!(
            refund_effect(PaymentStatus::Declined).ok(),
            Some(RefundEffect::Nothing)
        );
        assert!(refund_effect(PaymentStatus::Refunded).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for &s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.code()).ok(), Some(s));
        }
    }

    #[test]
    fn decline_reasons_are_spelled_as_the_checkouts_failure_reasons() {
        assert_eq!(DeclineReason::CardDeclined.code(), failure::CARD_DECLINED);
        assert_eq!(
            DeclineReason::InsufficientFunds.code(),
            failure::INSUFFICIENT_FUNDS
        );
    }
}
