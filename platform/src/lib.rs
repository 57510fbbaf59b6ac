//! What every shop service shares, so that each service's `main.rs` stays a few lines and
//! each `api.rs` holds only its own rules.
//!
//! # Layout
//! - [`config`]: the flags and environment variables every binary takes, and the
//!   `healthcheck` subcommand.
//! - [`telemetry`]: tracing setup (text or JSON logs, OTLP export, W3C propagation).
//! - [`metrics`]: the Prometheus exporter, per-RPC metrics, pool gauges.
//! - [`server`]: bootstrap: health, reflection v1 and v1alpha, one span per RPC, fault
//!   injection, readiness after migrations, graceful shutdown.
//! - [`service`]: the whole binary of a domain service, from a [`service::ServiceSpec`].
//! - [`db`]: the Postgres pool and start-up migrations.
//! - [`error`]: the API error type and its mapping to `tonic::Status` with rich details.
//! - [`reason`]: the `ErrorInfo` reasons of refusals, one enum for the services that
//!   send them and the callers that read them.
//! - [`grpc_delegate!`]: a service's tonic trait, each RPC handed to its handler.
//! - [`validate`]: field checks that collect `google.rpc.BadRequest` violations, and the
//!   limits every service shares ([`countries`]: the assigned country codes).
//! - [`idempotency`]: the idempotency-key table every mutating RPC goes through, and
//!   [`fingerprint`]: the canonical fingerprint of a request it compares.
//! - [`compensation`]: the skeleton every compensating RPC (cancel, refund, release) runs.
//! - [`events`]: the choreography's outbox, relay, idempotent consumers and dead letters.
//! - [`fault`]: the fault-injection tower layer (off unless enabled).
//! - [`wire_errors`]: the right codes for requests that fail to decode or are too large.
//! - [`page`]: opaque page tokens.
//! - [`ports`]: free loopback ports below the ephemeral range, for test harnesses.
//! - [`security`]: mutual TLS, who may call what, and the front door's bearer tokens.
//! - [`time`]: timestamp conversion.
//! - [`stored`]: the typed vocabulary: enums stored as text codes that must parse
//!   ([`stored_code!`]) and UUID newtypes for ids ([`uuid_id!`]).
//! - `testing` (feature `testing`): throwaway databases and in-process servers for tests.

pub mod compensation;
pub mod config;
pub mod countries;
pub mod db;
pub mod deadline;
mod delegate;
pub mod error;
pub mod events;
pub mod fault;
pub mod fingerprint;
pub mod healthcheck;
pub mod idempotency;
pub mod metrics;
pub mod page;
pub mod ports;
pub mod readiness;
pub mod reason;
pub mod retention;
pub mod security;
pub mod server;
pub mod service;
pub mod stored;
pub mod telemetry;
pub mod time;
pub mod validate;
pub mod wire_errors;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::ApiError;

/// What platform's macros expand to, so a crate using them needs no dependency for it.
#[doc(hidden)]
pub mod __private {
    pub use sqlx;
    pub use tonic;
    pub use uuid;
}
