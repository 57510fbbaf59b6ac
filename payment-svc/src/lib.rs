//! payment-svc: charges and refunds in integer minor units. A charge either captures or
//! declines (a result, not an error); a refund returns a capture in full.
//!
//! # Layout
//! - `domain`: test-token decisions and payment status rules (pure), and the payment
//!   states and decline reasons as stored.
//! - `ids`: the payment and order ids as types of their own.
//! - `store`: SQL, checked at compile time (`sqlx.toml`, `.sqlx/`).
//! - `ops`: charging and refunding, checks included, which both faces below run.
//! - `api`: the tonic service: validate, run a transaction, map errors.
//! - `events`: the choreographed checkout: the events payment-svc reacts to and emits.

pub mod api;
pub mod domain;
pub mod events;
pub mod ids;
pub mod ops;
pub mod store;

use platform::{config::ServerConfig, server::App, service::ServiceSpec};
use shop_proto::payment::v1::payment_service_server::PaymentServiceServer;

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "payment-svc";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What sets payment-svc apart; `platform::service` makes the binary from it.
pub const SERVICE: ServiceSpec<PaymentServiceServer<api::PaymentApi>> = ServiceSpec {
    name: NAME,
    about: "Charges and refunds (gRPC)",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: "127.0.0.1:50052",
    migrator: &MIGRATOR,
    server: |pool| {
        PaymentServiceServer::new(api::PaymentApi::new(pool))
            .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES)
    },
    events: Some(events::participant),
};

/// Builds the server: lazy pool, the API, readiness after migrations.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    SERVICE.build(config).await
}
