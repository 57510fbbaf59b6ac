//! The gRPC face of payment-svc: validate every field, run one transaction, map errors.
//! Each RPC's codes are listed in `payment.proto`.

use platform::reason::Reason;
use platform::{
    ApiError,
    compensation::Compensation,
    idempotency::{self, Claim},
    time::timestamp,
    validate::Violations,
};
use shop_proto::common::v1 as common;
use shop_proto::payment::v1::{self as pb, payment_service_server::PaymentService};
use sqlx::PgPool;
use tracing::Span;

use crate::{
    domain::PaymentStatus,
    ids::{OrderId, PaymentId},
    ops::{self, Charge},
    store::{self, PaymentRow},
};

/// Idempotency operations (scopes of keys).
const OP_CHARGE: &str = "charge";
const OP_REFUND: &str = "refund";

/// The PaymentService implementation.
#[derive(Debug, Clone)]
pub struct PaymentApi {
    pool: PgPool,
}

impl PaymentApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

platform::grpc_delegate! {
    impl PaymentService for PaymentApi {
        charge(pb::ChargeRequest) -> pb::ChargeResponse;
        refund(pb::RefundRequest) -> pb::RefundResponse;
        get_payment(pb::GetPaymentRequest) -> pb::GetPaymentResponse;
        list_payments(pb::ListPaymentsRequest) -> pb::ListPaymentsResponse;
    }
}

impl PaymentApi {
    async fn charge(&self, req: pb::ChargeRequest) -> Result<pb::ChargeResponse, ApiError> {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", &req.idempotency_key);
        let charge = Charge::check(
            &mut v,
            ("order_id", &req.order_id),
            ("amount", req.amount.as_ref()),
            ("payment_token", &req.payment_token),
        );
        let charge = v.finish(charge)?;
        Span::current()
            .record("order_id", req.order_id.as_str())
            .record("key", req.idempotency_key.as_str());

        let mut tx = self.pool.begin().await?;
        match idempotency::claim(&mut tx, OP_CHARGE, &req.idempotency_key, &req).await? {
            Claim::Replay(response) => return Ok(response),
            Claim::Blocked => {
                return Err(ApiError::precondition(
                    Reason::CancelledBeforeCharged,
                    "a refund for this charge arrived first; the charge does not take effect",
                ));
            }
            Claim::New => {}
        }
        let row = ops::charge(&mut tx, &charge).await?;
        let response = pb::ChargeResponse {
            payment: Some(payment(row)),
        };
        idempotency::commit(tx, OP_CHARGE, &req.idempotency_key, &response).await?;
        Ok(response)
    }

    async fn refund(&self, req: pb::RefundRequest) -> Result<pb::RefundResponse, ApiError> {
        let refund = Compensation {
            request: &req,
            operation: OP_REFUND,
            key: &req.idempotency_key,
            target_id: ("payment_id", &req.payment_id),
            forward_operation: OP_CHARGE,
            forward_key: ("charge_idempotency_key", &req.charge_idempotency_key),
            target_of: |charged: pb::ChargeResponse| charged.payment?.payment_id.parse().ok(),
            check: |req, v| ops::check_reason(v, "reason", &req.reason),
        };
        refund
            .run(&self.pool, async |tx, payment_id| {
                let row = store::lock(tx, PaymentId::from(payment_id))
                    .await?
                    .ok_or_else(|| ApiError::not_found("payment", payment_id.to_string()))?;
                Span::current().record("order_id", row.order_id.to_string());
                // The request's empty reason is none given.
                let reason = Some(req.reason.as_str()).filter(|r| !r.is_empty());
                let row = ops::refund(tx, row, reason).await?.payment;
                Ok(pb::RefundResponse {
                    payment: Some(payment(row)),
                })
            })
            .await
    }

    async fn get_payment(
        &self,
        req: pb::GetPaymentRequest,
    ) -> Result<pb::GetPaymentResponse, ApiError> {
        let mut v = Violations::default();
        let payment_id = PaymentId::from(v.uuid("payment_id", &req.payment_id));
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::get(&mut conn, payment_id)
            .await?
            .ok_or_else(|| ApiError::not_found("payment", &req.payment_id))?;
        Ok(pb::GetPaymentResponse {
            payment: Some(payment(row)),
        })
    }

    async fn list_payments(
        &self,
        req: pb::ListPaymentsRequest,
    ) -> Result<pb::ListPaymentsResponse, ApiError> {
        let mut v = Violations::default();
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::of_order(&mut conn, order_id).await?;
        Ok(pb::ListPaymentsResponse {
            payments: rows.into_iter().map(payment).collect(),
        })
    }
}

fn status(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::Captured => pb::PaymentStatus::Captured,
        PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
        PaymentStatus::Declined => pb::PaymentStatus::Declined,
    }
}

fn payment(row: PaymentRow) -> pb::Payment {
    pb::Payment {
        payment_id: row.payment_id.to_string(),
        amount: Some(common::Money {
            amount_minor: row.amount_minor,
            currency: row.currency,
        }),
        status: status(row.status).into(),
        order_id: row.order_id.to_string(),
        // The proto's "none" is the empty string.
        decline_reason: row
            .decline_reason
            .map(|reason| reason.code().to_owned())
            .unwrap_or_default(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}
