//! The payment operations both faces of payment-svc run: the gRPC API (`api`) and the
//! choreography's event handlers (`events`). A charge is decided and a refund allowed by
//! the same rules however it was asked for; the callers add only what is theirs
//! (idempotency keys, events).

use platform::reason::Reason;
use platform::{
    ApiError,
    validate::{MIN_PRICE_MINOR, Violations},
};
use shop_proto::common::v1::Money;
use sqlx::PgConnection;

use crate::{
    domain::{self, Decision, DeclineReason, PaymentStatus, RefundEffect},
    ids::OrderId,
    store::{self, NewPayment, PaymentRow},
};

/// Longest refund reason kept.
const MAX_REASON_CHARS: usize = 200;

/// A charge whose fields passed [`Charge::check`]: ready for [`charge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub order_id: OrderId,
    pub amount_minor: i64,
    pub currency: String,
    /// What the test gateway says about the payment token.
    pub decision: Decision,
}

/// A field of the caller's message: its name there, and its value.
pub type Field<'a, T> = (&'a str, T);

impl Charge {
    /// Checks a charge's fields, adding a violation per bad field to `v`, each named as
    /// the caller's message names it (`amount` in ChargeRequest, `checkout.total` in an
    /// event). The charge is meaningful only once `v` is empty.
    pub fn check(
        v: &mut Violations,
        order_id: Field<'_, &str>,
        amount: Field<'_, Option<&Money>>,
        payment_token: Field<'_, &str>,
    ) -> Self {
        let id = OrderId::from(v.uuid(order_id.0, order_id.1));
        let (amount_minor, currency) = v.money(
            amount.0,
            amount.1.map(|m| (m.amount_minor, m.currency.as_str())),
            MIN_PRICE_MINOR,
        );
        v.payment_token(payment_token.0, payment_token.1);
        let decision = domain::decide(payment_token.1)
            .unwrap_or(Decision::Decline(DeclineReason::CardDeclined));
        Self {
            order_id: id,
            amount_minor,
            currency,
            decision,
        }
    }
}

/// Records the gateway's decision: a CAPTURED payment, or a DECLINED one with the
/// decline reason (a result, not an error). An order has at most one capture:
/// FAILED_PRECONDITION `ORDER_ALREADY_PAID` if it has one already.
pub async fn charge(tx: &mut PgConnection, charge: &Charge) -> Result<PaymentRow, ApiError> {
    let (status, decline_reason) = match charge.decision {
        Decision::Approve => (PaymentStatus::Captured, None),
        Decision::Decline(reason) => (PaymentStatus::Declined, Some(reason)),
    };
    let new = NewPayment {
        order_id: charge.order_id,
        amount_minor: charge.amount_minor,
        currency: &charge.currency,
        status,
        decline_reason,
    };
    let order_id = charge.order_id;
    let row = store::insert(tx, &new).await.map_err(|e| {
        platform::error::unique_violation_as(e, || {
            ApiError::precondition(
                Reason::OrderAlreadyPaid,
                format!("order {order_id} already has a captured payment"),
            )
        })
    })?;
    tracing::info!(payment_id = %row.payment_id, status = status.code(), "charge decided");
    Ok(row)
}

/// Checks the reason a refund records (RefundRequest.reason, an event's failure_reason).
pub fn check_reason(v: &mut Violations, field: &str, reason: &str) {
    v.text(field, reason, 0, MAX_REASON_CHARS);
}

/// A payment after [`refund`], and whether this call gave money back.
#[derive(Debug)]
pub struct Refunded {
    pub payment: PaymentRow,
    /// False for a DECLINED payment: it took nothing, so nothing went back.
    pub refunded: bool,
}

/// Refunds a payment locked in this transaction (`store::lock`, `store::lock_captured`)
/// by the refund rules: a capture goes back in full, once; a decline is left as it is;
/// a refunded payment is FAILED_PRECONDITION `ALREADY_REFUNDED`. The refund records
/// `reason` when there is one.
pub async fn refund(
    tx: &mut PgConnection,
    locked: PaymentRow,
    reason: Option<&str>,
) -> Result<Refunded, ApiError> {
    Ok(match domain::refund_effect(locked.status)? {
        RefundEffect::Refund => Refunded {
            payment: store::refund(tx, &locked, reason).await?,
            refunded: true,
        },
        RefundEffect::Nothing => Refunded {
            payment: locked,
            refunded: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_names_its_fields_as_the_caller_does() {
        let mut v = Violations::default();
        let charge = Charge::check(
            &mut v,
            ("checkout.order_id", ""),
            ("checkout.total", None),
            ("checkout.payment_token", "tok_chargeDeclined"),
        );
        assert_eq!(
            charge.decision,
            Decision::Decline(DeclineReason::CardDeclined)
        );
        let error = v
            .finish(())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            "invalid request: checkout.order_id must not be empty; checkout.total is required"
        );
    }
}
