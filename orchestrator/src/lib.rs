//! The orchestrator: `shop.checkout.v1.CheckoutService`, running each checkout as a saga
//! over the order, payment, inventory and shipping services.
//!
//! # Layout
//! - `api`: the front door as tonic sees it: CheckoutService (`api::checkout`: place,
//!   reads, resume; typed commands, the one mapping to protobuf, call metadata, stream
//!   caps) and the operators' DeadLetterService (`api::operator`, a relay to each
//!   service's EventAdminService). Each handler asks the `Caller` what its bearer token
//!   proved.
//! - `saga`: steps, statuses, failure reasons (typed, stored as stable codes) and the
//!   pure state machine (`saga::rules`): what runs next and what an outcome writes;
//!   `saga::choreography`: what each event of a choreographed checkout means.
//! - `steps`: one module per step: its request, forward call, compensation and what a
//!   refusal means.
//! - `driver`: the engine (asks the rules, makes the step's call, writes the outcome),
//!   the saga as its driver holds it, leases, recovery of sagas whose driver died, and
//!   the count of stalled checkouts.
//! - `downstream`: every call to the four services and the tower stack around it
//!   (classify, retry, breaker, resilience), in one place.
//! - `store`: sagas, steps, events and leases in the orchestrator's own database, every
//!   query checked at compile time.
//! - `tracker`: follows choreographed checkouts' events into the same saga rows.
//! - `feed`: wakes PlaceOrder waiters and WatchCheckout streams when their saga changes
//!   (one listener and one poll per replica).
//! - `config`: flags and environment variables, downstream URLs, resilience knobs;
//!   `ids`: `SagaId`, `OrderId`, `LeaseToken`, `IdempotencyKey`; `retention`: the
//!   orchestrator's own sweeps.

pub mod api;
pub mod config;
pub mod downstream;
pub mod driver;
pub mod feed;
pub mod ids;
pub mod retention;
pub mod saga;
pub mod steps;
pub mod store;
pub mod tracker;

use std::{sync::Arc, time::Duration};

use platform::{
    config::ServerConfig,
    events::{EventsConfig, admin::DeadLetters},
    security::{Security, caller::BearerCheck, token::Verifier},
    server::App,
};
use shop_proto::checkout::v1::checkout_service_server::CheckoutServiceServer;

use tonic::server::NamedService;

use crate::{config::Settings, downstream::clients::Clients, driver::engine::Engine};

/// Binary name, used in logs and fault specs.
pub const NAME: &str = "orchestrator";

/// The `service` the read pool's connections are reported as (`db_pool_connections`),
/// apart from the drivers' pool: either can saturate alone, and the DatabasePoolSaturated
/// alert watches each.
pub const READ_POOL: &str = "orchestrator-reads";

/// The schema, embedded and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the server; see [`build_with_engine`].
pub async fn build(config: ServerConfig, settings: Settings) -> anyhow::Result<App> {
    Ok(build_with_engine(config, settings).await?.0)
}

/// Builds the server and returns its engine too, so tests can stop a replica the way a
/// crash would (no lease handed back). Recovery starts once migrations are applied; on
/// shutdown the engine stops and hands its leases back.
pub async fn build_with_engine(
    config: ServerConfig,
    settings: Settings,
) -> anyhow::Result<(App, Arc<Engine>)> {
    let pool = platform::db::lazy_pool(&config.database_url, config.database_max_connections)?;
    let clients = Clients::new(&settings, &config.security)?;
    // Over TLS the front door checks a bearer token on every call; a missing key is an
    // error at start, not an open door.
    let verifier = match &config.security {
        Security::DevInsecure => None,
        Security::Tls(_) => Some(Verifier::from_args(&settings.tokens)?),
    };
    // Reads have a pool of their own, so no read load can hold the connections a driver
    // renews its lease with (they queue for these instead).
    let reads = platform::db::lazy_pool(&config.database_url, settings.reads.connections)?;
    let feed = feed::Feed::new();
    let engine = Arc::new(Engine::new(
        pool.clone(),
        clients.clone(),
        &settings,
        feed.clone(),
    ));
    let read_side = api::checkout::ReadSide {
        pool: reads.clone(),
        feed: feed.clone(),
        streams: api::streams::Streams::new(settings.reads.streams),
    };
    let api = api::checkout::CheckoutApi::new(
        pool.clone(),
        read_side,
        engine.clone(),
        &clients,
        &settings,
        config.retention.keep,
    );
    let service = CheckoutServiceServer::new(api)
        .max_decoding_message_size(platform::server::MAX_MESSAGE_BYTES);
    let (engine_for_recovery, stopping) = (engine.clone(), engine.clone());
    // Choreographed checkouts: CheckoutRequested leaves through the outbox, the tracker
    // follows the services' events, and its changes wake this replica's waiters.
    let tls = config.security.tls();
    let stream = config.nats_stream;
    let events = config.nats_url.clone().map(|nats_url| {
        let config = EventsConfig {
            nats_url,
            producer: platform::events::roles::ORCHESTRATOR.producer,
            tls: tls.clone(),
            stream,
        };
        let (pool, feed) = (pool.clone(), feed.clone());
        async move {
            tokio::join!(
                platform::events::run(pool.clone(), config, tracker::participant()),
                tracker::forward_changes(pool, feed),
            );
        }
    });
    // Every service's dead letters for a token-checked operator; the tracker's in process.
    let operations = api::operator::server(
        &settings,
        &config.security,
        events.as_ref().map(|_| pool.clone()),
    )?;
    let watched = pool.clone();
    let poll_interval = settings.reads.poll_interval;
    let retention = config.retention;
    let sweeps = vec![
        crate::retention::finished_sagas(retention),
        platform::retention::inbox(retention, stream.max_age),
        platform::retention::settled_dead_letters(retention),
    ];
    let mut app = App::builder(NAME, config)
        .front_door(BearerCheck::new(
            <CheckoutServiceServer<api::checkout::CheckoutApi> as NamedService>::NAME,
            verifier,
        ))
        .add_service(service)
        .add_service(operations)
        .database(pool.clone());
    if events.is_some() {
        app = app.add_service(DeadLetters::server(pool.clone(), tracker::participant()));
    }
    let app = app
        .ready_when(async move { platform::db::migrate_until_ready(&pool, &MIGRATOR).await })
        .background(async move {
            let events = async move {
                if let Some(events) = events {
                    events.await;
                }
            };
            tokio::join!(
                driver::recovery::recover_forever(engine_for_recovery, settings.recovery_interval),
                platform::metrics::watch_pool(NAME, watched.clone()),
                platform::metrics::watch_pool(READ_POOL, reads.clone()),
                platform::retention::run(NAME, watched.clone(), retention, sweeps),
                driver::stalls::watch(watched, settings.stall_after),
                feed::poll_watched(feed, reads, poll_interval),
                events,
            );
        })
        .on_shutdown(async move {
            // Drivers stop at their next await; a few seconds is plenty.
            stopping.shut_down(Duration::from_secs(5)).await;
        })
        .bind()
        .await?;
    Ok((app, engine))
}
