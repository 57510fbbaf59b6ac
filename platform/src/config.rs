//! The settings every binary shares. Each service flattens [`ServiceArgs`] into its own
//! clap command, so `--help` lists everything in one place and every flag also reads an
//! environment variable.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Subcommand};

use crate::security::{Security, SecurityArgs, SecurityError};
pub use crate::telemetry::LogFormat;

/// Pooled database connections per service unless `DATABASE_MAX_CONNECTIONS` says
/// otherwise: what a deployment must leave room for in Postgres' `max_connections`.
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 10;

/// The orchestrator's second pool, for reads alone, unless `DATABASE_READ_CONNECTIONS`
/// says otherwise: a deployment counts it on top of the first against `max_connections`.
pub const DEFAULT_DATABASE_READ_CONNECTIONS: u32 = 4;

/// Settings common to every service binary.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Postgres URL of this service's own database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Upper bound of pooled database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = DEFAULT_DATABASE_MAX_CONNECTIONS)]
    pub database_max_connections: u32,

    /// Serve Prometheus metrics (text format, GET /metrics) on this address; off if unset.
    #[arg(long, env = "METRICS_LISTEN_ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Also serve `grpc.health.v1.Health`, and nothing else, in plaintext on this address;
    /// off if unset. For probes that cannot speak TLS, such as Kubernetes' native gRPC
    /// probes (the kubelet connects without TLS): they learn SERVING or NOT_SERVING and
    /// nothing more, while every other call stays behind mutual TLS on the listen address.
    #[arg(long, env = "HEALTH_LISTEN_ADDR")]
    pub health_listen: Option<SocketAddr>,

    /// Obey fault-injection metadata (`x-fault`, see docs/FAULTS.md). Off in production.
    #[arg(long, env = "FAULT_INJECTION", default_value_t = false)]
    pub fault_injection: bool,

    /// How long SIGTERM waits for in-flight calls before closing connections.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve gRPC server reflection (v1 and v1alpha), so grpcurl needs no proto files. On
    /// by default; a production profile may turn it off (`--reflection false`).
    #[arg(long, env = "REFLECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub reflection: bool,

    /// NATS server with JetStream, for the choreographed checkout's events. The service
    /// serves its API while the broker is away; its events wait in the outbox.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Copies JetStream keeps of the event stream (1 to 5). Every replica of every
    /// service creates or updates the stream at start, so this must be the same
    /// everywhere: a clustered broker (3 nodes in deploy/k8s's production profile) wants
    /// 3, or one lost node stops the events; a single server accepts only 1.
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_stream_replicas: u8,

    /// How long the event stream keeps an event (JetStream `max_age`). Inbox rows are
    /// kept at least as long, so a redelivery always finds its row. Set the same value
    /// on every binary (each updates the stream to its own at start).
    #[arg(long, env = "NATS_STREAM_MAX_AGE", default_value = "7d", value_parser = parse_positive_duration)]
    pub nats_stream_max_age: Duration,

    /// The most bytes the event stream holds (JetStream `max_bytes`: a number of bytes,
    /// or with KiB, MiB, GiB or TiB), `unlimited` for no bound. A full stream refuses new
    /// events rather than dropping old ones (`discard: new`): they wait in their
    /// producers' outboxes (the OutboxLagGrowing alert) until room is made, and nothing
    /// unconsumed is lost. Set the same value on every binary.
    #[arg(long, env = "NATS_STREAM_MAX_BYTES", default_value = "unlimited", value_parser = parse_stream_bytes)]
    pub nats_stream_max_bytes: StreamBytes,

    /// How long finished records are kept before the sweep deletes them: idempotency
    /// responses, inbox rows, finished sagas with their steps and events (docs/
    /// OPERATIONS.md, "Retention"). Live and parked sagas and dead letters are never
    /// swept. Set the same value on every binary.
    #[arg(long, env = "RETENTION", default_value = "30d", value_parser = parse_positive_duration)]
    pub retention: Duration,

    /// How often this binary sweeps what is older than `RETENTION`.
    #[arg(long, env = "RETENTION_INTERVAL", default_value = "1h", value_parser = parse_positive_duration)]
    pub retention_interval: Duration,

    /// Calls this server serves at once; one more is refused at once with
    /// RESOURCE_EXHAUSTED (load shedding) rather than queued without end.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,

    /// Connections this server keeps open at once; past it, new clients wait in the
    /// kernel's backlog until one closes. Keep it below the process's descriptor limit.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// A connection whose peer sends nothing for this long is closed (its descriptor and
    /// memory given back); one that never sends its first bytes goes after 10 s.
    #[arg(long, env = "CONNECTION_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_positive_duration)]
    pub connection_idle_timeout: Duration,

    #[command(flatten)]
    pub security: SecurityArgs,
}

/// Subcommands every binary has besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Exit 0 only when the server at ADDR reports SERVING (for container health checks).
    Healthcheck {
        /// Address of the server to check; defaults to the listen address.
        #[arg(long)]
        addr: Option<String>,
    },
}

/// The settings a server needs once they are checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (tests read it back).
    pub listen: SocketAddr,
    /// Where to serve health alone in plaintext (`HEALTH_LISTEN_ADDR`), if anywhere.
    pub health_listen: Option<SocketAddr>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub fault_injection: bool,
    pub shutdown_grace: Duration,
    /// Serve server reflection.
    pub reflection: bool,
    /// `nats://host:port` of the event broker; `None` runs without events (in-process
    /// tests of one service's API, which must not share a broker with other tests).
    pub nats_url: Option<String>,
    /// The event stream's copies and bounds (`NATS_STREAM_*`).
    pub nats_stream: crate::events::StreamLimits,
    /// Mutual TLS, or plaintext in development mode.
    pub security: Security,
    /// Calls served at once before more are shed.
    pub max_in_flight: usize,
    /// Connections kept at once, and how long an idle one lives.
    pub connections: crate::security::incoming::ConnectionLimits,
    /// What is kept how long, and how often it is swept.
    pub retention: crate::retention::Retention,
}

/// Why a binary cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "DATABASE_URL is not set: pass --database-url or set DATABASE_URL to this service's Postgres database, for example postgres://postgres@127.0.0.1:5432/orders"
    )]
    MissingDatabaseUrl,
    #[error(transparent)]
    Security(#[from] SecurityError),
}

impl ServiceArgs {
    /// Checks the shared settings and pairs them with the service's listen address.
    pub fn server_config(&self, listen: SocketAddr) -> Result<ServerConfig, ConfigError> {
        let database_url = self
            .database_url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .ok_or(ConfigError::MissingDatabaseUrl)?;
        Ok(ServerConfig {
            listen,
            health_listen: self.health_listen,
            database_url,
            database_max_connections: self.database_max_connections.max(1),
            fault_injection: self.fault_injection,
            shutdown_grace: self.shutdown_grace,
            reflection: self.reflection,
            nats_url: Some(self.nats_url.clone()),
            nats_stream: crate::events::StreamLimits {
                replicas: self.nats_stream_replicas,
                max_age: self.nats_stream_max_age,
                max_bytes: self.nats_stream_max_bytes.0,
            },
            security: self.security.security()?,
            max_in_flight: self.max_in_flight.max(1),
            connections: crate::security::incoming::ConnectionLimits {
                max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
                idle_timeout: self.connection_idle_timeout,
            },
            retention: crate::retention::Retention {
                keep: self.retention,
                every: self.retention_interval,
            },
        })
    }
}

/// The longest duration a setting takes: a hundred years. Longer ones are refused with a
/// clear error at start-up rather than accepted and left to panic later, when a deadline
/// is computed as `Instant::now() + duration` (which overflows far below `u64::MAX`
/// seconds) or bound as a Postgres interval.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Parses `500ms`, `10s`, `2m`, `24h`, `30d` or a bare number of seconds. A value too
/// large to represent, or longer than [`MAX_DURATION`], is refused, not wrapped.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |at| text.split_at(at));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s, 2m or 30d"))?;
    let too_long = || format!("`{text}` is too long a duration");
    let seconds = |per: u64| value.checked_mul(per).ok_or_else(too_long);
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(seconds(60)?),
        "h" => Duration::from_secs(seconds(3600)?),
        "d" => Duration::from_secs(seconds(86_400)?),
        _ => return Err(format!("`{text}`: unit must be ms, s, m, h or d")),
    };
    if duration > MAX_DURATION {
        return Err(format!(
            "`{text}` is too long a duration: at most 100 years ({}d)",
            MAX_DURATION.as_secs() / 86_400
        ));
    }
    Ok(duration)
}

/// [`parse_duration`], refusing zero: for settings where zero would mean "at once,
/// always" (a sweep of everything, a loop without pause).
/// The most bytes the event stream holds; `None`: unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBytes(pub Option<u64>);

/// `NATS_STREAM_MAX_BYTES`: `unlimited`, or a positive number of bytes, plain or with a
/// binary unit (`512MiB`, `10GiB`, `1TiB`; `KiB` too).
pub fn parse_stream_bytes(text: &str) -> Result<StreamBytes, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(StreamBytes(None));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use a number of bytes, KiB, MiB, GiB or TiB, or `unlimited`"
            ));
        }
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|bytes| i64::try_from(*bytes).is_ok())
        .ok_or_else(|| format!("{text:?} is not a size this stream can have"))?;
    if bytes == 0 {
        return Err("0 bytes would refuse every event: give a positive size or `unlimited`".into());
    }
    Ok(StreamBytes(Some(bytes)))
}

pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("`{text}`: must be longer than zero")),
        positive => Ok(positive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_sizes_parse_with_binary_units_or_unlimited() {
        assert_eq!(parse_stream_bytes("unlimited"), Ok(StreamBytes(None)));
        assert_eq!(parse_stream_bytes("1024"), Ok(StreamBytes(Some(1024))));
        assert_eq!(parse_stream_bytes("10GiB"), Ok(StreamBytes(Some(10 << 30))));
        assert_eq!(
            parse_stream_bytes("512 MiB"),
            Ok(StreamBytes(Some(512 << 20)))
        );
        for bad in ["0", "10GB", "-5", "", "99999999999TiB"] {
            assert!(parse_stream_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration(&format!("{}d", u64::MAX)).is_err());
        assert!(parse_duration(&format!("{}h", u64::MAX / 60)).is_err());
        // Representable, but a deadline this far out would overflow `Instant`.
        for huge in [
            format!("{}s", u64::MAX),
            format!("{}ms", u64::MAX),
            "36501d".into(),
        ] {
            let error = parse_duration(&huge).expect_err(&huge);
            assert!(error.contains("too long a duration"), "{error}");
        }
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        assert_eq!(parse_positive_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("0").is_err());
    }
}
