//! inventory-svc: the product catalog (prices live only here), stock levels and
//! reservations. Stock never goes below zero, under any concurrency.
//!
//! # Layout
//! - `domain`: pricing, shortage and validation rules (pure), and the reservation states
//!   as stored.
//! - `ids`: the reservation and order ids as types of their own.
//! - `store`: SQL, one function per statement group, checked at compile time
//!   (`sqlx.toml`, `.sqlx/`).
//! - `reservations`: reserving and releasing inside a transaction, shared by the RPCs
//!   and the event handlers.
//! - `api`: the tonic service: validate, run a transaction, map errors.
//! - `events`: the choreographed checkout: PaymentCaptured and ShipmentRejected in,
//!   StockReserved, StockRejected and StockReleased out.

pub mod api;
pub mod domain;
pub mod events;
pub mod ids;
pub mod reservations;
pub mod store;

use platform::{config::ServerConfig, server::App, service::ServiceSpec};
use shop_proto::inventory::v1::inventory_service_server::InventoryServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "inventory-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What sets inventory-svc apart; `platform::service` makes the binary from it.
pub const SERVICE: ServiceSpec<InventoryServiceServer<api::InventoryApi>> = ServiceSpec {
    name: NAME,
    about: "Catalog, prices, stock and reservations (gRPC)",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: "127.0.0.1:50053",
    migrator: &MIGRATOR,
    server: |pool| {
        InventoryServiceServer::new(api::InventoryApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    },
    events: Some(events::participant),
};

/// Builds the server: lazy pool, the API, readiness after migrations, and its part in
/// the choreographed checkout when the config names a broker.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    SERVICE.build(config).await
}
