//! Events for the choreographed checkout: a transactional outbox, a relay to NATS
//! JetStream, and idempotent consumers with an inbox and a dead-letter table. Every
//! service that takes part uses this module; none of them talks to the broker itself.
//!
//! # Layout
//! - `envelope`: building and reading `shop.events.v1.Envelope`, subjects.
//! - `schema`: each event type's schema version, and the rule that a consumer acts only
//!   on the majors it knows.
//! - `outbox`: [`outbox::enqueue`] writes an event in the caller's transaction, so the
//!   state change and its event commit together; [`outbox::relay`] publishes what was
//!   committed.
//! - `consumer`: a durable pull consumer that runs a [`Handler`] per event, in a
//!   transaction with its inbox row; refusals are the handler's own events, transient
//!   errors are redelivered with backoff, and a message that keeps failing is parked.
//! - `broker`: connecting, and the stream every event goes to; `refusals`: what the
//!   broker refused a connection.
//! - `roles`: who publishes and consumes what, per principal; `permissions`: the
//!   broker's authorization that follows from it (docs/SECURITY.md).
//! - `reactions`: what a domain service writes of its part: for each event it consumes,
//!   the work and the follow-up; the inbox, the outbox and refusals are done for it.
//! - `admin`: `EventAdminService`, which lists parked messages and lets an operator retry
//!   or discard each.
//!
//! The tables (`outbox`, `inbox`, `dead_letters`) are platform's migrations
//! (`platform/migrations/events`, [`crate::db::EVENTS_SCHEMA`]), applied in each service's
//! own database with the service's schema: every service owns its database, these tables
//! included.

pub mod admin;
pub mod broker;
pub mod consumer;
pub mod envelope;
pub mod outbox;
pub mod permissions;
pub mod reactions;
pub mod refusals;
pub mod roles;
pub mod schema;

use std::time::Duration;

use sqlx::PgPool;

pub use consumer::{ConsumerSpec, Handler, HandlerError, Participant};
pub use envelope::{Event, EventKind};
pub use reactions::Reactions;

/// The JetStream stream every event is stored in.
pub const STREAM: &str = "SHOP_EVENTS";

/// Every subject of the stream: `shop.events.<producer>.<type>`.
pub const SUBJECTS: &str = "shop.events.>";

/// How long JetStream remembers a `Nats-Msg-Id`: a relay that publishes the same event
/// twice within this window (it crashed between the publish and marking the row sent)
/// stores it once. Far longer than a relay takes to restart.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long the stream keeps an event unless `NATS_STREAM_MAX_AGE` says otherwise: a
/// week, enough to replay, bounded so a demo does not fill a disk. Inbox rows outlive it
/// ([`crate::retention::inbox`]).
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The stream's copies and bounds (`NATS_STREAM_REPLICAS`, `NATS_STREAM_MAX_AGE`,
/// `NATS_STREAM_MAX_BYTES`). Every binary brings the stream to these at start, so all
/// must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub replicas: u8,
    pub max_age: Duration,
    /// `None`: no bound on the bytes it holds.
    pub max_bytes: Option<u64>,
}

impl Default for StreamLimits {
    /// The command line's defaults: one copy, a week, no byte bound.
    fn default() -> Self {
        Self {
            replicas: 1,
            max_age: STREAM_MAX_AGE,
            max_bytes: None,
        }
    }
}

/// What a service needs to take part: who it is as a producer and what it consumes.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// `nats://host:port` of the broker.
    pub nats_url: String,
    /// The producer name in subjects and envelopes (`order`, `payment`, ...).
    pub producer: &'static str,
    /// The binary's TLS identity, when it runs TLS: the broker connection then requires
    /// TLS, checks the broker's certificate and presents the binary's own.
    pub tls: Option<std::sync::Arc<crate::security::Tls>>,
    /// The stream's copies and bounds: every service brings the stream to these at
    /// start, so all must agree.
    pub stream: StreamLimits,
}

/// Runs a service's part in the choreography until dropped: connects to the broker
/// (waiting for it if need be), then relays the outbox and consumes.
pub async fn run(pool: PgPool, config: EventsConfig, participant: Participant) {
    let connected = broker::connect(
        &config.nats_url,
        config.producer,
        config.tls.as_deref(),
        config.stream,
    )
    .await;
    tracing::info!(url = %config.nats_url, consumer = participant.consumer.durable, "events: connected to the broker");
    tokio::join!(
        outbox::relay(
            pool.clone(),
            connected.clone(),
            config.producer,
            config.stream
        ),
        consumer::consume(pool, connected.js, config.stream, participant),
    );
}
