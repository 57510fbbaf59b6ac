//! The whole binary of a domain service (order, payment, inventory, shipping). Each one
//! owns one Postgres database and serves one gRPC service over it, so what tells them
//! apart fits in a [`ServiceSpec`]; the command line, the `healthcheck` subcommand,
//! telemetry, migrations, readiness and shutdown are written once, here and in
//! [`crate::server`].
//!
//! ```text
//! pub const SERVICE: ServiceSpec<OrderServiceServer<OrderApi>> = ServiceSpec {
//!     name: "order-svc",
//!     about: "Orders and their status history (gRPC)",
//!     version: env!("CARGO_PKG_VERSION"),
//!     default_listen: "127.0.0.1:50051",
//!     migrator: &MIGRATOR,
//!     server: |pool| OrderServiceServer::new(OrderApi::new(pool)),
//!     events: Some(events::participant),
//! };
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     order_svc::SERVICE.run().await
//! }
//! ```

use std::{ffi::OsString, net::SocketAddr, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser};
use sqlx::{PgPool, migrate::Migrator};

use crate::{
    config::{Command, ServerConfig, ServiceArgs},
    events::{EventsConfig, Participant, admin::DeadLetters},
    server::{App, GrpcService},
};

/// What sets one domain service apart from the others.
pub struct ServiceSpec<S> {
    /// The binary's name: in `--help`, logs, metrics and fault specs.
    pub name: &'static str,
    /// The one line `--help` starts with.
    pub about: &'static str,
    /// What `--version` prints: the service crate's `env!("CARGO_PKG_VERSION")`, since
    /// this crate's own would be platform's.
    pub version: &'static str,
    /// Where to listen unless `--listen` or `LISTEN_ADDR` says otherwise.
    pub default_listen: &'static str,
    /// The service's own schema, applied with platform's tables
    /// ([`crate::db::service_schema`]) before the service reports SERVING.
    pub migrator: &'static Migrator,
    /// The tonic server over the service's pool.
    pub server: fn(PgPool) -> S,
    /// The service's part in the choreographed checkout: its consumer and handler, given
    /// the producer name of the events it emits. Run once it is SERVING (with the outbox
    /// relay) when the config names a broker, and behind `EventAdminService`'s retry of a
    /// dead letter. `None` for a service that neither emits nor consumes events.
    pub events: Option<fn(&'static str) -> Participant>,
}

/// The command line every domain service takes. Name, about, version and the default
/// listen address are filled in from the [`ServiceSpec`], so one definition serves all.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR")]
    listen: SocketAddr,

    #[command(flatten)]
    service: ServiceArgs,
}

impl<S> ServiceSpec<S> {
    /// The service's command line: what `--help` shows.
    pub fn command(&self) -> clap::Command {
        Cli::command()
            .name(self.name)
            .about(self.about)
            .version(self.version)
            .mut_arg("listen", |listen| {
                listen.default_value(self.default_listen).required(false)
            })
    }

    /// Parses `args` (program name first) like `Parser::try_parse_from` would.
    fn try_parse_from(
        &self,
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Cli, clap::Error> {
        let mut command = self.command();
        let matches = command.try_get_matches_from_mut(args)?;
        Cli::from_arg_matches(&matches).map_err(|error| error.format(&mut command))
    }
}

impl<S: GrpcService> ServiceSpec<S> {
    /// Everything the binary's `main` does: parse the command line (printing help or the
    /// error and exiting on bad input), then [`crate::server::run_binary`].
    pub async fn run(&self) -> ExitCode {
        let cli = self
            .try_parse_from(std::env::args_os())
            .unwrap_or_else(|error| error.exit());
        crate::server::run_binary(self.name, cli.listen, cli.service, cli.command, |config| {
            self.build(config)
        })
        .await
    }

    /// Builds the server, bound but not serving: a lazy pool, the gRPC service, readiness
    /// once the schema is migrated, then the events (when the service has a part in the
    /// choreography and the config names a broker). Tests call it with a config of their
    /// own.
    pub async fn build(&self, config: ServerConfig) -> anyhow::Result<App> {
        let pool = crate::db::lazy_pool(&config.database_url, config.database_max_connections)?;
        // `order-svc` publishes under `shop.events.order.*`.
        let producer = self.name.trim_end_matches("-svc");
        let participant = self
            .events
            .zip(config.nats_url.clone())
            .map(|(participant, nats_url)| (participant(producer), nats_url));
        let events = participant.clone().map(|(participant, nats_url)| {
            let events = EventsConfig {
                nats_url,
                producer,
                tls: config.security.tls(),
                stream: config.nats_stream,
            };
            crate::events::run(pool.clone(), events, participant)
        });
        let (ready, watched, swept, migrator, name) = (
            pool.clone(),
            pool.clone(),
            pool.clone(),
            crate::db::service_schema(self.migrator),
            self.name,
        );
        let retention = config.retention;
        let sweeps = vec![
            crate::retention::idempotency_keys(retention),
            crate::retention::inbox(retention, config.nats_stream.max_age),
            crate::retention::settled_dead_letters(retention),
        ];
        let mut app = App::builder(self.name, config)
            .add_service((self.server)(pool.clone()))
            .database(pool.clone());
        if let Some((participant, _)) = participant {
            app = app.add_service(DeadLetters::server(pool, participant));
        }
        let app = app
            .ready_when(async move { crate::db::migrate_until_ready(&ready, &migrator).await })
            .background(async move {
                let events = async move {
                    if let Some(events) = events {
                        events.await;
                    }
                };
                tokio::join!(
                    crate::metrics::watch_pool(name, watched),
                    crate::retention::run(name, swept, retention, sweeps),
                    events
                );
            })
            .bind()
            .await?;
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static MIGRATOR: Migrator = Migrator::DEFAULT;

    const SPEC: ServiceSpec<()> = ServiceSpec {
        name: "example-svc",
        about: "An example (gRPC)",
        version: "9.8.7",
        default_listen: "127.0.0.1:50099",
        migrator: &MIGRATOR,
        server: |_| (),
        events: None,
    };

    #[test]
    fn command_is_well_formed() {
        SPEC.command().debug_assert();
    }

    #[test]
    fn help_shows_the_service_and_every_flag_with_its_variable() {
        let help = SPEC.command().render_long_help().to_string();
        assert!(help.starts_with("An example (gRPC)"), "{help}");
        for flag in [
            "--listen",
            "LISTEN_ADDR",
            "[default: 127.0.0.1:50099]",
            "--database-url",
            "DATABASE_URL",
            "--database-max-connections",
            "--metrics-listen",
            "--fault-injection",
            "--shutdown-grace",
            "--log-format",
            "--reflection",
            "REFLECTION",
            "--nats-url",
            "NATS_URL",
            "healthcheck",
        ] {
            assert!(help.contains(flag), "{flag} missing from\n{help}");
        }
        assert_eq!(SPEC.command().render_version(), "example-svc 9.8.7\n");
    }

    #[test]
    fn listen_defaults_to_the_service_address() {
        let command = SPEC.command();
        let listen = command
            .get_arguments()
            .find(|arg| arg.get_id() == "listen")
            .map(|arg| arg.get_default_values().to_vec());
        assert_eq!(listen, Some(vec!["127.0.0.1:50099".into()]));
    }

    #[test]
    fn flags_and_healthcheck_parse() {
        let cli = SPEC
            .try_parse_from([
                "example-svc",
                "--listen",
                "0.0.0.0:7000",
                "--fault-injection",
            ])
            .unwrap();
        assert_eq!(cli.listen, SocketAddr::from(([0, 0, 0, 0], 7000)));
        assert!(cli.service.fault_injection);
        assert!(cli.command.is_none());

        let cli = SPEC
            .try_parse_from(["example-svc", "healthcheck", "--addr", "127.0.0.1:7000"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Healthcheck { addr: Some(addr) }) if addr == "127.0.0.1:7000"
        ));
    }
}
