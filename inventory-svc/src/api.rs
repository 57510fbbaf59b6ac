//! The gRPC face of inventory-svc: validate every field, run one transaction, map
//! errors. Each RPC's codes are listed in `inventory.proto`.

use platform::reason::Reason;
use platform::{
    ApiError,
    compensation::Compensation,
    idempotency::{self, Claim},
    page,
    time::timestamp,
    validate::{MIN_PRICE_MINOR, Violations},
};
use shop_proto::common::v1 as common;
use shop_proto::inventory::v1::{self as pb, inventory_service_server::InventoryService};
use sqlx::PgPool;
use tracing::Span;

use crate::{
    domain::{self, Line, MAX_STOCK, Price, ReservationStatus},
    ids::{OrderId, ReservationId},
    reservations::{self, skus},
    store::{self, ProductRow, Reservation},
};

/// Idempotency operations (scopes of keys).
const OP_RESERVE: &str = "reserve";
const OP_RELEASE: &str = "release";

/// The InventoryService implementation.
#[derive(Debug, Clone)]
pub struct InventoryApi {
    pool: PgPool,
}

impl InventoryApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

platform::grpc_delegate! {
    impl InventoryService for InventoryApi {
        upsert_product(pb::UpsertProductRequest) -> pb::UpsertProductResponse;
        get_product(pb::GetProductRequest) -> pb::GetProductResponse;
        list_products(pb::ListProductsRequest) -> pb::ListProductsResponse;
        set_stock(pb::SetStockRequest) -> pb::SetStockResponse;
        get_stock(pb::GetStockRequest) -> pb::GetStockResponse;
        price_cart(pb::PriceCartRequest) -> pb::PriceCartResponse;
        reserve_stock(pb::ReserveStockRequest) -> pb::ReserveStockResponse;
        release_stock(pb::ReleaseStockRequest) -> pb::ReleaseStockResponse;
        get_reservation(pb::GetReservationRequest) -> pb::GetReservationResponse;
    }
}

impl InventoryApi {
    async fn upsert_product(
        &self,
        req: pb::UpsertProductRequest,
    ) -> Result<pb::UpsertProductResponse, ApiError> {
        let mut v = Violations::default();
        v.sku("sku", &req.sku);
        v.text("name", &req.name, 1, 200);
        let (amount_minor, currency) = v.money(
            "unit_price",
            req.unit_price
                .as_ref()
                .map(|m| (m.amount_minor, m.currency.as_str())),
            MIN_PRICE_MINOR,
        );
        let price = Price {
            amount_minor,
            currency,
        };
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::upsert_product(&mut conn, &req.sku, &req.name, &price).await?;
        Ok(pb::UpsertProductResponse {
            product: Some(product(row)),
        })
    }

    async fn get_product(
        &self,
        req: pb::GetProductRequest,
    ) -> Result<pb::GetProductResponse, ApiError> {
        let mut v = Violations::default();
        v.sku("sku", &req.sku);
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::get_product(&mut conn, &req.sku)
            .await?
            .ok_or_else(|| ApiError::not_found("product", &req.sku))?;
        Ok(pb::GetProductResponse {
            product: Some(product(row)),
        })
    }

    async fn list_products(
        &self,
        req: pb::ListProductsRequest,
    ) -> Result<pb::ListProductsResponse, ApiError> {
        let mut v = Violations::default();
        let size = page::page_size(&mut v, "page_size", req.page_size);
        let after = page::decode(&mut v, "page_token", &req.page_token);
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_products(&mut conn, after.as_deref(), size + 1).await?;
        let (rows, next_page_token) = page::split(rows, size, |row| row.sku.clone());
        Ok(pb::ListProductsResponse {
            products: rows.into_iter().map(product).collect(),
            next_page_token,
        })
    }

    async fn set_stock(&self, req: pb::SetStockRequest) -> Result<pb::SetStockResponse, ApiError> {
        let mut v = Violations::default();
        v.sku("sku", &req.sku);
        if !(0..=MAX_STOCK).contains(&req.quantity) {
            v.add("quantity", format!("must be between 0 and {MAX_STOCK}"));
        }
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::set_stock(&mut conn, &req.sku, req.quantity)
            .await?
            .ok_or_else(|| ApiError::not_found("product", &req.sku))?;
        Ok(pb::SetStockResponse {
            stock: Some(pb::Stock {
                sku: row.sku,
                available: row.available,
                reserved: row.reserved,
            }),
        })
    }

    async fn get_stock(&self, req: pb::GetStockRequest) -> Result<pb::GetStockResponse, ApiError> {
        let mut v = Violations::default();
        v.sku("sku", &req.sku);
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::get_stock(&mut conn, &req.sku)
            .await?
            .ok_or_else(|| ApiError::not_found("product", &req.sku))?;
        Ok(pb::GetStockResponse {
            sku: row.sku,
            available: row.available,
            reserved: row.reserved,
        })
    }

    async fn price_cart(
        &self,
        req: pb::PriceCartRequest,
    ) -> Result<pb::PriceCartResponse, ApiError> {
        let mut v = Violations::default();
        let lines = parse_lines(&mut v, "lines", &req.lines);
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let prices = store::prices(&mut conn, &skus(&lines)).await?;
        let cart = domain::price_cart(&lines, &prices)?;
        Ok(pb::PriceCartResponse {
            lines: cart
                .lines
                .into_iter()
                .map(|l| pb::PricedLine {
                    sku: l.line.sku,
                    quantity: l.line.quantity,
                    line_total: Some(common::Money {
                        amount_minor: l.line_total,
                        currency: l.unit_price.currency.clone(),
                    }),
                    unit_price: Some(to_money(l.unit_price)),
                })
                .collect(),
            total: Some(to_money(cart.total)),
        })
    }

    async fn reserve_stock(
        &self,
        req: pb::ReserveStockRequest,
    ) -> Result<pb::ReserveStockResponse, ApiError> {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", &req.idempotency_key);
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        let lines = parse_lines(&mut v, "lines", &req.lines);
        v.finish(())?;
        Span::current()
            .record("order_id", req.order_id.as_str())
            .record("key", req.idempotency_key.as_str());

        let mut tx = self.pool.begin().await?;
        match idempotency::claim(&mut tx, OP_RESERVE, &req.idempotency_key, &req).await? {
            Claim::Replay(response) => return Ok(response),
            Claim::Blocked => {
                return Err(ApiError::precondition(
                    Reason::ReleasedBeforeReserved,
                    "this reservation was released before it arrived; it does not take effect",
                ));
            }
            Claim::New => {}
        }
        let reservation = reservations::reserve(&mut tx, order_id, &lines).await?;
        let response = pb::ReserveStockResponse {
            reservation: Some(to_reservation(reservation)),
        };
        idempotency::commit(tx, OP_RESERVE, &req.idempotency_key, &response).await?;
        Ok(response)
    }

    async fn release_stock(
        &self,
        req: pb::ReleaseStockRequest,
    ) -> Result<pb::ReleaseStockResponse, ApiError> {
        let release = Compensation {
            request: &req,
            operation: OP_RELEASE,
            key: &req.idempotency_key,
            target_id: ("reservation_id", &req.reservation_id),
            forward_operation: OP_RESERVE,
            forward_key: ("reserve_idempotency_key", &req.reserve_idempotency_key),
            target_of: |reserved: pb::ReserveStockResponse| {
                reserved.reservation?.reservation_id.parse().ok()
            },
            check: |_, _| {},
        };
        release
            .run(&self.pool, async |tx, reservation_id| {
                let reservation =
                    reservations::release(tx, ReservationId::from(reservation_id)).await?;
                Span::current().record("order_id", reservation.row.order_id.to_string());
                Ok(pb::ReleaseStockResponse {
                    reservation: Some(to_reservation(reservation)),
                })
            })
            .await
    }

    async fn get_reservation(
        &self,
        req: pb::GetReservationRequest,
    ) -> Result<pb::GetReservationResponse, ApiError> {
        let mut v = Violations::default();
        let order_id = OrderId::from(v.uuid("order_id", &req.order_id));
        v.finish(())?;
        let mut conn = self.pool.acquire().await?;
        let reservation = store::reservation_of_order(&mut conn, order_id)
            .await?
            .ok_or_else(|| ApiError::not_found("reservation of order", &req.order_id))?;
        Ok(pb::GetReservationResponse {
            reservation: Some(to_reservation(reservation)),
        })
    }
}

/// Reads cart lines, checked as [`domain::check_lines`] says.
fn parse_lines(v: &mut Violations, field: &str, lines: &[pb::CartLine]) -> Vec<Line> {
    let lines: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    domain::check_lines(v, field, &lines);
    lines
}

fn to_money(price: Price) -> common::Money {
    common::Money {
        amount_minor: price.amount_minor,
        currency: price.currency,
    }
}

fn product(row: ProductRow) -> pb::Product {
    pb::Product {
        sku: row.sku,
        name: row.name,
        unit_price: Some(common::Money {
            amount_minor: row.price_minor,
            currency: row.currency,
        }),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn status(status: ReservationStatus) -> pb::ReservationStatus {
    match status {
        ReservationStatus::Reserved => pb::ReservationStatus::Reserved,
        ReservationStatus::Released => pb::ReservationStatus::Released,
    }
}

fn to_reservation(reservation: Reservation) -> pb::Reservation {
    pb::Reservation {
        reservation_id: reservation.row.reservation_id.to_string(),
        order_id: reservation.row.order_id.to_string(),
        status: status(reservation.row.status).into(),
        lines: reservation
            .lines
            .into_iter()
            .map(|l| pb::CartLine {
                sku: l.sku,
                quantity: l.quantity,
            })
            .collect(),
        create_time: Some(timestamp(reservation.row.created_at)),
    }
}
