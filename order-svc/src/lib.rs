//! order-svc: orders, their lines and status history. An order is created PENDING and
//! moves once, to CONFIRMED or CANCELLED.
//!
//! # Layout
//! - `config`: flags and environment variables.
//! - `domain`: the order state machine and line arithmetic (pure).
//! - `store`: SQL.
//! - `api`: the tonic service: validate, run a transaction, map errors.

pub mod api;
pub mod config;
pub mod domain;
pub mod store;

use platform::{config::ServerConfig, server::App};
use shop_proto::order::v1::order_service_server::OrderServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "order-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the server: lazy pool, the API, readiness after migrations.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    platform::server::build_with_database(NAME, config, &MIGRATOR, |pool| {
        OrderServiceServer::new(api::OrderApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    })
    .await
}
