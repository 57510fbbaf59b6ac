//! The gRPC face of shipping-svc: validate every field, run one transaction, map errors.
//! Each RPC's codes are listed in `shipping.proto`.

use platform::reason::Reason;
use platform::{
    ApiError,
    compensation::Compensation,
    idempotency::{self, Claim},
    time::timestamp,
    validate::Violations,
};
use shop_proto::common::v1 as common;
use shop_proto::shipping::v1::{self as pb, shipping_service_server::ShippingService};
use sqlx::PgPool;
use tracing::Span;

use crate::{
    domain::ShipmentStatus,
    ids::{OrderId, ShipmentId},
    shipments,
    store::{self, ShipmentRow},
};

/// Idempotency operations (scopes of keys).
const OP_CREATE: &str = "create";
const OP_CANCEL: &str = "cancel";

/// The ShippingService implementation.
#[derive(Debug, Clone)]
pub struct ShippingApi {
    pool: PgPool,
}

impl ShippingApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

platform::grpc_delegate! {
    impl ShippingService for ShippingApi {
        create_shipment(pb::CreateShipmentRequest) -> pb::CreateShipmentResponse;
        cancel_shipment(pb::CancelShipmentRequest) -> pb::CancelShipmentResponse;
        get_shipment(pb::GetShipmentRequest) -> pb::GetShipmentResponse;
    }
}

impl ShippingApi {
    async fn create_shipment(
        &self,
        req: pb::CreateShipmentRequest,
    ) -> Result<pb::CreateShipmentResponse, ApiError> {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", &req.idempotency_key);
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        let to = req.address.as_ref();
        v.address("address", to);
        v.finish(())?;
        let to = to.ok_or_else(|| ApiError::invalid("address", "is required"))?;
        Span::current()
            .record("order_id", req.order_id.as_str())
            .record("key", req.idempotency_key.as_str());
        shipments::deliverable(to)?;

        let mut tx = self.pool.begin().await?;
        match idempotency::claim(&mut tx, OP_CREATE, &req.idempotency_key, &req).await? {
            Claim::Replay(response) => return Ok(response),
            Claim::Blocked => {
                return Err(ApiError::precondition(
                    Reason::CancelledBeforeCreated,
                    "a cancellation for this shipment arrived first; it is not created",
                ));
            }
            Claim::New => {}
        }
        let row = shipments::create(&mut tx, order_id, to).await?;
        let response = pb::CreateShipmentResponse {
            shipment: Some(shipment(row)),
        };
        idempotency::commit(tx, OP_CREATE, &req.idempotency_key, &response).await?;
        Ok(response)
    }

    async fn cancel_shipment(
        &self,
        req: pb::CancelShipmentRequest,
    ) -> Result<pb::CancelShipmentResponse, ApiError> {
        let cancel = Compensation {
            request: &req,
            operation: OP_CANCEL,
            key: &req.idempotency_key,
            target_id: ("shipment_id", &req.shipment_id),
            forward_operation: OP_CREATE,
            forward_key: ("create_idempotency_key", &req.create_idempotency_key),
            target_of: |created: pb::CreateShipmentResponse| {
                created.shipment?.shipment_id.parse().ok()
            },
            check: |_, _| {},
        };
        cancel
            .run(&self.pool, async |tx, shipment_id| {
                let row = shipments::cancel(tx, ShipmentId::from(shipment_id)).await?;
                Span::current().record("order_id", row.order_id.to_string());
                Ok(pb::CancelShipmentResponse {
                    shipment: Some(shipment(row)),
                })
            })
            .await
    }

    async fn get_shipment(
        &self,
        req: pb::GetShipmentRequest,
    ) -> Result<pb::GetShipmentResponse, ApiError> {
        let mut v = Violations::default();
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::of_order(&mut conn, order_id)
            .await?
            .ok_or_else(|| ApiError::not_found("shipment of order", &req.order_id))?;
        Ok(pb::GetShipmentResponse {
            shipment: Some(shipment(row)),
        })
    }
}

fn status(status: ShipmentStatus) -> pb::ShipmentStatus {
    match status {
        ShipmentStatus::Created => pb::ShipmentStatus::Created,
        ShipmentStatus::Cancelled => pb::ShipmentStatus::Cancelled,
    }
}

fn shipment(row: ShipmentRow) -> pb::Shipment {
    pb::Shipment {
        shipment_id: row.shipment_id.to_string(),
        order_id: row.order_id.to_string(),
        tracking_number: row.tracking_number,
        status: status(row.status).into(),
        address: Some(common::Address {
            name: row.name,
            line1: row.line1,
            line2: row.line2,
            city: row.city,
            postal_code: row.postal_code,
            country: row.country,
        }),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}
