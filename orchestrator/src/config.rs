//! Every setting of the orchestrator; `orchestrator --help` lists them.

use std::{net::SocketAddr, time::Duration};

use clap::Subcommand;
use clap::{Args, Parser};
use platform::{
    config::{
        Command, DEFAULT_DATABASE_READ_CONNECTIONS, ServiceArgs, parse_duration,
        parse_positive_duration,
    },
    security::token::TokenArgs,
};

use crate::{api::streams::StreamLimits, downstream::resilience::Resilience};

#[derive(Debug, Parser)]
#[command(
    name = "orchestrator",
    version,
    about = "Checkout saga orchestrator (gRPC)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<OrchestratorCommand>,

    /// gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50050")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub service: ServiceArgs,

    #[command(flatten)]
    pub saga: SagaArgs,

    #[command(flatten)]
    pub reads: ReadArgs,

    #[command(flatten)]
    pub tokens: TokenArgs,
}

/// What the orchestrator binary does besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum OrchestratorCommand {
    #[command(flatten)]
    Common(Command),
    /// Print a bearer token for the front door, signed with AUTH_JWT_SECRET_FILE
    /// (development and tests; a real shop's tokens come from its identity provider).
    Token {
        /// The customer the token is for (its subject).
        #[arg(long)]
        subject: String,
        /// Add the operator scope: every customer's checkouts, ResumeCheckout.
        #[arg(long)]
        operator: bool,
        /// How long the token is valid.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

/// Where the downstream services are and how the saga treats them.
#[derive(Debug, Clone, Args)]
pub struct SagaArgs {
    #[arg(long, env = "ORDER_SVC_URL", default_value = "http://127.0.0.1:50051")]
    pub order_svc_url: String,
    #[arg(
        long,
        env = "PAYMENT_SVC_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub payment_svc_url: String,
    #[arg(
        long,
        env = "INVENTORY_SVC_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub inventory_svc_url: String,
    #[arg(
        long,
        env = "SHIPPING_SVC_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub shipping_svc_url: String,

    /// How long a replica owns a saga without renewing (it renews every third of this).
    /// A crashed replica's sagas are taken over by another within this plus
    /// `RECOVERY_INTERVAL` of its last renewal: the takeover time after a crash. Shorter
    /// takes over sooner but renews more often and loses a lease to a shorter stall
    /// (fencing keeps that safe; it costs a resume).
    #[arg(long, env = "SAGA_LEASE", default_value = "3s", value_parser = parse_duration)]
    pub saga_lease: Duration,

    /// How often to look for sagas whose owner stopped renewing.
    #[arg(long, env = "RECOVERY_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub recovery_interval: Duration,

    /// A checkout not yet ended that records no progress for this long is flagged stalled
    /// (in its view and in the `checkouts_stalled` metric): the visibility a choreographed
    /// checkout otherwise lacks when a service stops reacting.
    #[arg(long, env = "STALL_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub stall_after: Duration,

    /// Longest PlaceOrder waits for the end when the caller sets no deadline.
    #[arg(long, env = "PLACE_ORDER_MAX_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub place_order_max_wait: Duration,

    /// Timeout of one downstream attempt (sent as grpc-timeout).
    #[arg(long, env = "ATTEMPT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,

    /// Deadline of one step across all its attempts.
    #[arg(long, env = "STEP_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub step_deadline: Duration,

    /// Retries after the first attempt of a step.
    #[arg(long, env = "RETRY_MAX", default_value_t = 4)]
    pub retry_max: u32,

    /// First backoff ceiling; doubles per retry (full jitter below it).
    #[arg(long, env = "RETRY_BACKOFF_BASE", default_value = "50ms", value_parser = parse_duration)]
    pub retry_backoff_base: Duration,

    /// Largest backoff ceiling, also the cap between compensation rounds.
    #[arg(long, env = "RETRY_BACKOFF_MAX", default_value = "2s", value_parser = parse_duration)]
    pub retry_backoff_max: Duration,

    /// Retries allowed per 100 successful calls per downstream, on top of a floor.
    #[arg(long, env = "RETRY_BUDGET_PERCENT", default_value_t = 20.0)]
    pub retry_budget_percent: f32,

    /// Retries per second always allowed per downstream.
    #[arg(long, env = "RETRY_BUDGET_MIN_PER_SEC", default_value_t = 10)]
    pub retry_budget_min_per_sec: u32,

    /// Calls in flight per downstream.
    #[arg(long, env = "DOWNSTREAM_CONCURRENCY", default_value_t = 256)]
    pub downstream_concurrency: usize,

    /// Consecutive transient failures that open a downstream's circuit breaker.
    #[arg(long, env = "BREAKER_FAILURES", default_value_t = 10)]
    pub breaker_failures: u32,

    /// How long an open breaker fails fast before letting one probe through.
    #[arg(long, env = "BREAKER_OPEN_FOR", default_value = "2s", value_parser = parse_duration)]
    pub breaker_open_for: Duration,

    /// The longest an open breaker fails fast: each failed probe doubles the open time,
    /// from BREAKER_OPEN_FOR up to this.
    #[arg(long, env = "BREAKER_OPEN_MAX", default_value = "10s", value_parser = parse_duration)]
    pub breaker_open_max: Duration,
}

/// How reads (GetCheckout, ListCheckouts, WatchCheckout) are bounded, so that no read
/// load can cost a saga driver its lease or a PlaceOrder its deadline.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// Connections of a second pool that serves GetCheckout, ListCheckouts and
    /// WatchCheckout alone, on top of DATABASE_MAX_CONNECTIONS (the drivers', PlaceOrder's
    /// and recovery's): reads queue for these and never for a driver's connection, so a
    /// flood of them cannot delay a lease renewal. Count both pools against the
    /// database's max_connections.
    #[arg(long, env = "DATABASE_READ_CONNECTIONS", default_value_t = DEFAULT_DATABASE_READ_CONNECTIONS)]
    pub database_read_connections: u32,

    /// WatchCheckout streams this replica keeps open at once, from all callers; the next
    /// is refused with RESOURCE_EXHAUSTED (reason WATCH_STREAMS_EXHAUSTED). Streams do not
    /// count against MAX_IN_FLIGHT (they outlive their call), so this is their bound.
    #[arg(long, env = "MAX_WATCH_STREAMS", default_value_t = 1000)]
    pub max_watch_streams: usize,

    /// WatchCheckout streams one caller (a token's subject) keeps open on this replica at
    /// once; the next is refused with RESOURCE_EXHAUSTED (reason
    /// WATCH_STREAMS_PER_CALLER_EXHAUSTED), so one customer cannot take every stream.
    /// Not applied with --dev-insecure, where callers have no identity.
    #[arg(long, env = "MAX_WATCH_STREAMS_PER_CALLER", default_value_t = 32)]
    pub max_watch_streams_per_caller: usize,

    /// How often this replica looks, in one query, whether any saga it has watchers for
    /// was changed by another replica's driver (its own drivers and every tracker wake
    /// watchers at once); the longest such a change takes to reach a watcher here.
    #[arg(long, env = "WATCH_POLL_INTERVAL", default_value = "250ms", value_parser = parse_positive_duration)]
    pub watch_poll_interval: Duration,
}

/// The checked read limits (see [`ReadArgs`]).
#[derive(Debug, Clone)]
pub struct Reads {
    /// Size of the read pool.
    pub connections: u32,
    pub streams: StreamLimits,
    pub poll_interval: Duration,
}

impl ReadArgs {
    pub fn reads(&self) -> Reads {
        Reads {
            connections: self.database_read_connections.max(1),
            streams: StreamLimits {
                total: self.max_watch_streams,
                per_caller: self.max_watch_streams_per_caller,
            },
            poll_interval: self.watch_poll_interval,
        }
    }
}

/// The checked settings the saga runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub order_url: String,
    pub payment_url: String,
    pub inventory_url: String,
    pub shipping_url: String,
    pub lease: Duration,
    pub recovery_interval: Duration,
    pub max_wait: Duration,
    pub stall_after: Duration,
    pub resilience: Resilience,
    pub reads: Reads,
    /// How the front door checks bearer tokens (unused with `--dev-insecure`).
    pub tokens: TokenArgs,
}

impl SagaArgs {
    pub fn settings(&self, reads: &ReadArgs) -> Settings {
        Settings {
            order_url: self.order_svc_url.clone(),
            payment_url: self.payment_svc_url.clone(),
            inventory_url: self.inventory_svc_url.clone(),
            shipping_url: self.shipping_svc_url.clone(),
            lease: self.saga_lease.max(Duration::from_secs(1)),
            recovery_interval: self.recovery_interval.max(Duration::from_millis(100)),
            max_wait: self.place_order_max_wait,
            stall_after: self.stall_after.max(Duration::from_millis(100)),
            resilience: Resilience {
                attempt_timeout: self.attempt_timeout,
                step_deadline: self.step_deadline,
                max_retries: self.retry_max,
                backoff_base: self.retry_backoff_base,
                backoff_max: self.retry_backoff_max,
                budget_percent: self.retry_budget_percent.clamp(0.0, 1000.0),
                budget_min_per_sec: self.retry_budget_min_per_sec,
                concurrency: self.downstream_concurrency.max(1),
                breaker_failures: self.breaker_failures.max(1),
                breaker_open_for: self.breaker_open_for,
                breaker_open_max: self.breaker_open_max.max(self.breaker_open_for),
            },
            reads: reads.reads(),
            tokens: TokenArgs::default(),
        }
    }
}

impl Settings {
    /// Defaults with the given downstream URLs (tests and the harness).
    pub fn with_urls(order: String, payment: String, inventory: String, shipping: String) -> Self {
        let cli = Cli::parse_from(["orchestrator"]);
        let mut settings = cli.saga.settings(&cli.reads);
        settings.order_url = order;
        settings.payment_url = payment;
        settings.inventory_url = inventory;
        settings.shipping_url = shipping;
        settings
    }
}
