//! order-svc: orders, their lines and status history. An order is created PENDING and
//! moves once, to CONFIRMED or CANCELLED.
//!
//! # Layout
//! - `domain`: the order state machine and line arithmetic (pure), and the order states
//!   as stored.
//! - `ids`: the order and checkout ids as types of their own.
//! - `store`: SQL, checked at compile time (`sqlx.toml`, `.sqlx/`).
//! - `ops`: the operations on orders that both faces below run, checks included.
//! - `api`: the tonic service: validate, run a transaction, map errors.
//! - `events`: the choreographed checkout: the events order-svc reacts to and emits.

pub mod api;
pub mod domain;
pub mod events;
pub mod ids;
pub mod ops;
pub mod store;

use platform::{config::ServerConfig, server::App, service::ServiceSpec};
use shop_proto::order::v1::order_service_server::OrderServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "order-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What sets order-svc apart; `platform::service` makes the binary from it.
pub const SERVICE: ServiceSpec<OrderServiceServer<api::OrderApi>> = ServiceSpec {
    name: NAME,
    about: "Orders and their status history (gRPC)",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: "127.0.0.1:50051",
    migrator: &MIGRATOR,
    server: |pool| {
        OrderServiceServer::new(api::OrderApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    },
    events: Some(events::participant),
};

/// Builds the server: lazy pool, the API, readiness after migrations.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    SERVICE.build(config).await
}
