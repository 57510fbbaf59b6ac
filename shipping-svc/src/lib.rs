//! shipping-svc: creates shipments with tracking numbers and cancels them. Country AQ
//! (Antarctica) is not served.
//!
//! # Layout
//! - `config`: flags and environment variables.
//! - `domain`: which countries are served, tracking numbers (pure).
//! - `store`: SQL.
//! - `api`: the tonic service: validate, run a transaction, map errors.

pub mod api;
pub mod config;
pub mod domain;
pub mod store;

use platform::{config::ServerConfig, server::App};
use shop_proto::shipping::v1::shipping_service_server::ShippingServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "shipping-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the server: lazy pool, the API, readiness after migrations.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    platform::server::build_with_database(NAME, config, &MIGRATOR, |pool| {
        ShippingServiceServer::new(api::ShippingApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    })
    .await
}
