//! inventory-svc: the product catalog (prices live only here), stock levels and
//! reservations. Stock never goes below zero, under any concurrency.
//!
//! # Layout
//! - `config`: flags and environment variables.
//! - `domain`: pricing, shortage and validation rules (pure).
//! - `store`: SQL, one function per statement group.
//! - `api`: the tonic service: validate, run a transaction, map errors.

pub mod api;
pub mod config;
pub mod domain;
pub mod store;

use platform::{config::ServerConfig, server::App};
use shop_proto::inventory::v1::inventory_service_server::InventoryServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "inventory-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the server: lazy pool, the API, readiness after migrations.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    platform::server::build_with_database(NAME, config, &MIGRATOR, |pool| {
        InventoryServiceServer::new(api::InventoryApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    })
    .await
}
