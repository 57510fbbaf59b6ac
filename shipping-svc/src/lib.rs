//! shipping-svc: creates shipments with tracking numbers and cancels them. Country AQ
//! (Antarctica) is not served.
//!
//! # Layout
//! - `domain`: which countries are served, tracking numbers (pure), and the shipment
//!   states as stored.
//! - `ids`: the shipment and order ids as types of their own.
//! - `store`: SQL, checked at compile time (`sqlx.toml`, `.sqlx/`).
//! - `shipments`: creating and cancelling inside a transaction, shared by the RPCs and
//!   the event handler.
//! - `api`: the tonic service: validate, run a transaction, map errors.
//! - `events`: the choreographed checkout: StockReserved in, ShipmentCreated and
//!   ShipmentRejected out.

pub mod api;
pub mod domain;
pub mod events;
pub mod ids;
pub mod shipments;
pub mod store;

use platform::{config::ServerConfig, server::App, service::ServiceSpec};
use shop_proto::shipping::v1::shipping_service_server::ShippingServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "shipping-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What sets shipping-svc apart; `platform::service` makes the binary from it.
pub const SERVICE: ServiceSpec<ShippingServiceServer<api::ShippingApi>> = ServiceSpec {
    name: NAME,
    about: "Shipments and tracking numbers (gRPC)",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: "127.0.0.1:50054",
    migrator: &MIGRATOR,
    server: |pool| {
        ShippingServiceServer::new(api::ShippingApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    },
    events: Some(events::participant),
};

/// Builds the server: lazy pool, the API, readiness after migrations, and its part in
/// the choreographed checkout when the config names a broker.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    SERVICE.build(config).await
}
