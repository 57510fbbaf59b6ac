//! The gRPC face of order-svc: validate every field, run one transaction, map errors.
//! Each RPC's codes are listed in `order.proto`.

use platform::reason::Reason;
use platform::{
    ApiError,
    compensation::Compensation,
    idempotency::{self, Claim},
    page,
    time::timestamp,
    validate::Violations,
};
use shop_proto::common::v1 as common;
use shop_proto::order::v1::{self as pb, order_service_server::OrderService};
use sqlx::PgPool;
use tracing::Span;
use uuid::Uuid;

use crate::{
    domain::OrderStatus,
    ids::OrderId,
    ops,
    store::{self, Order},
};

/// Idempotency operations (scopes of keys).
const OP_CREATE: &str = "create";
const OP_CONFIRM: &str = "confirm";
const OP_CANCEL: &str = "cancel";

/// The OrderService implementation.
#[derive(Debug, Clone)]
pub struct OrderApi {
    pool: PgPool,
}

impl OrderApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

platform::grpc_delegate! {
    impl OrderService for OrderApi {
        create_order(pb::CreateOrderRequest) -> pb::CreateOrderResponse;
        confirm_order(pb::ConfirmOrderRequest) -> pb::ConfirmOrderResponse;
        cancel_order(pb::CancelOrderRequest) -> pb::CancelOrderResponse;
        get_order(pb::GetOrderRequest) -> pb::GetOrderResponse;
        list_orders(pb::ListOrdersRequest) -> pb::ListOrdersResponse;
        get_order_history(pb::GetOrderHistoryRequest) -> pb::GetOrderHistoryResponse;
    }
}

impl OrderApi {
    async fn create_order(
        &self,
        req: pb::CreateOrderRequest,
    ) -> Result<pb::CreateOrderResponse, ApiError> {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", &req.idempotency_key);
        let draft = ops::draft(
            &mut v,
            "",
            &req.checkout_id,
            &req.customer_id,
            &req.lines,
            req.shipping_address.as_ref(),
        );
        let draft = v.finish(draft)?;
        Span::current().record("key", req.idempotency_key.as_str());

        let mut tx = self.pool.begin().await?;
        match idempotency::claim(&mut tx, OP_CREATE, &req.idempotency_key, &req).await? {
            Claim::Replay(response) => return Ok(response),
            Claim::Blocked => {
                return Err(ApiError::precondition(
                    Reason::CancelledBeforeCreated,
                    "a cancellation for this order arrived first; it is not created",
                ));
            }
            Claim::New => {}
        }
        let order = ops::place(&mut tx, draft).await?;
        Span::current().record("order_id", order.row.order_id.to_string());
        let response = pb::CreateOrderResponse {
            order: Some(to_order(order)),
        };
        idempotency::commit(tx, OP_CREATE, &req.idempotency_key, &response).await?;
        Ok(response)
    }

    async fn confirm_order(
        &self,
        req: pb::ConfirmOrderRequest,
    ) -> Result<pb::ConfirmOrderResponse, ApiError> {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", &req.idempotency_key);
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        v.finish(())?;
        Span::current()
            .record("order_id", req.order_id.as_str())
            .record("key", req.idempotency_key.as_str());

        let mut tx = self.pool.begin().await?;
        if let Claim::Replay(response) =
            idempotency::claim(&mut tx, OP_CONFIRM, &req.idempotency_key, &req).await?
        {
            return Ok(response);
        }
        let order = ops::confirm(&mut tx, order_id).await?.order;
        let response = pb::ConfirmOrderResponse {
            order: Some(to_order(order)),
        };
        idempotency::commit(tx, OP_CONFIRM, &req.idempotency_key, &response).await?;
        Ok(response)
    }

    async fn cancel_order(
        &self,
        req: pb::CancelOrderRequest,
    ) -> Result<pb::CancelOrderResponse, ApiError> {
        let cancel = Compensation {
            request: &req,
            operation: OP_CANCEL,
            key: &req.idempotency_key,
            target_id: ("order_id", &req.order_id),
            forward_operation: OP_CREATE,
            forward_key: ("create_idempotency_key", &req.create_idempotency_key),
            target_of: |created: pb::CreateOrderResponse| created.order?.order_id.parse().ok(),
            check: |req, v| ops::check_reason(v, "reason", &req.reason),
        };
        cancel
            .run(&self.pool, async |tx, order_id| {
                Span::current().record("order_id", order_id.to_string());
                let order = ops::cancel(tx, OrderId::from(order_id), &req.reason)
                    .await?
                    .order;
                Ok(pb::CancelOrderResponse {
                    order: Some(to_order(order)),
                })
            })
            .await
    }

    async fn get_order(&self, req: pb::GetOrderRequest) -> Result<pb::GetOrderResponse, ApiError> {
        let mut v = Violations::default();
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let order = store::get(&mut conn, order_id)
            .await?
            .ok_or_else(|| ApiError::not_found("order", &req.order_id))?;
        Ok(pb::GetOrderResponse {
            order: Some(to_order(order)),
        })
    }

    async fn list_orders(
        &self,
        req: pb::ListOrdersRequest,
    ) -> Result<pb::ListOrdersResponse, ApiError> {
        let mut v = Violations::default();
        v.text("customer_id", &req.customer_id, 1, 64);
        let size = page::page_size(&mut v, "page_size", req.page_size);
        let before = page::decode(&mut v, "page_token", &req.page_token)
            .map(|cursor| Uuid::try_parse(&cursor).map_err(|_| ()));
        let before = match before {
            Some(Ok(id)) => Some(OrderId::from(id)),
            Some(Err(())) => {
                v.add("page_token", "is not a token returned by this service");
                None
            }
            None => None,
        };
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let orders = store::list(&mut conn, &req.customer_id, before, size + 1).await?;
        let (orders, next_page_token) = page::split(orders, size, |o| o.row.order_id.to_string());
        Ok(pb::ListOrdersResponse {
            orders: orders.into_iter().map(to_order).collect(),
            next_page_token,
        })
    }

    async fn get_order_history(
        &self,
        req: pb::GetOrderHistoryRequest,
    ) -> Result<pb::GetOrderHistoryResponse, ApiError> {
        let mut v = Violations::default();
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::history(&mut conn, order_id).await?;
        if rows.is_empty() {
            return Err(ApiError::not_found("order", &req.order_id));
        }
        Ok(pb::GetOrderHistoryResponse {
            changes: rows
                .into_iter()
                .map(|r| pb::StatusChange {
                    // An order's creation comes from no status: UNSPECIFIED, as the proto
                    // says.
                    from_status: r
                        .from_status
                        .map_or(pb::OrderStatus::Unspecified, to_status)
                        .into(),
                    to_status: to_status(r.to_status).into(),
                    reason: r.reason,
                    change_time: Some(timestamp(r.changed_at)),
                })
                .collect(),
        })
    }
}

fn to_status(status: OrderStatus) -> pb::OrderStatus {
    match status {
        OrderStatus::Pending => pb::OrderStatus::Pending,
        OrderStatus::Confirmed => pb::OrderStatus::Confirmed,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
    }
}

fn to_order(order: Order) -> pb::Order {
    let row = order.row;
    let money = |amount_minor| {
        Some(common::Money {
            amount_minor,
            currency: row.currency.clone(),
        })
    };
    pb::Order {
        order_id: row.order_id.to_string(),
        checkout_id: row.checkout_id.map(|id| id.to_string()).unwrap_or_default(),
        customer_id: row.customer_id.clone(),
        status: to_status(row.status).into(),
        lines: order
            .lines
            .iter()
            .map(|l| pb::OrderLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_price: money(l.unit_price_minor),
                line_total: money(l.line_total_minor),
            })
            .collect(),
        total: money(row.total_minor),
        shipping_address: Some(common::Address {
            name: row.ship_name.clone(),
            line1: row.ship_line1.clone(),
            line2: row.ship_line2.clone(),
            city: row.ship_city.clone(),
            postal_code: row.ship_postal.clone(),
            country: row.ship_country.clone(),
        }),
        // The proto's "none" is the empty string.
        cancel_reason: row.cancel_reason.clone().unwrap_or_default(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}
