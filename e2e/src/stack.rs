//! The five binaries as real processes on real sockets, each with its own fresh
//! database, all on one NATS server (JetStream) of the stack's own, wired by the settings
//! of docs/CONTRACT.md.
//!
//! Long because one `Stack` owns every process's whole life (start, kill -9, SIGSTOP,
//! restart, replicas, placement on test hosts, teardown even on a panic): split, each part
//! would reach into the others' processes.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use platform::{
    config::{DEFAULT_DATABASE_MAX_CONNECTIONS, DEFAULT_DATABASE_READ_CONNECTIONS},
    security::{
        Principal, Security,
        connect::{self, FrontDoor},
        token::AttachToken,
    },
};
use shop_proto::checkout::v1::checkout_service_client::CheckoutServiceClient;

pub use crate::svc::Svc;
use crate::{
    hosts::{Host, Hosts, Place},
    nats::Nats,
    net::free_port,
    pki::Pki,
    postgres::{Postgres, Shutdown},
};

/// How to start a stack.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Start every service with `FAULT_INJECTION=true`.
    pub fault_injection: bool,
    /// Use the docs/CONTRACT.md default ports instead of free ones (the local runner);
    /// for NATS with `dev_insecure`, the broker already on 127.0.0.1:4222 if one answers,
    /// else one started there (see [`crate::nats`]); over TLS always one of its own.
    pub default_ports: bool,
    /// Extra environment for the orchestrator (resilience knobs).
    pub orchestrator_env: Vec<(String, String)>,
    /// Extra environment for every service.
    pub env: Vec<(String, String)>,
    /// Serve Prometheus metrics from every service, each on a free port.
    pub metrics: bool,
    /// Start a Postgres cluster of the stack's own even when a server already answers, so
    /// that [`Stack::restart_postgres`] may restart it (a chaos fault).
    pub own_postgres: bool,
    /// Put the orchestrator's database on a Postgres cluster of its own, as a production
    /// deployment would (one server per service), so that it may crash alone
    /// ([`Stack::stop_orchestrator_postgres_for`]). Its WAL writer wakes only every 10 s:
    /// commits made without a WAL flush stay in memory until a flushed commit writes them,
    /// which is the window a crash can take them back in.
    pub own_orchestrator_postgres: bool,
    /// Run every process with `DEV_INSECURE=true`: plaintext, no certificate and no token
    /// checks. Off by default: a stack runs over mutual TLS with a fresh development PKI
    /// (see [`crate::pki`]), and its clients are the operator, with an operator token.
    pub dev_insecure: bool,
    /// Keep the PKI in this folder (made there if it holds none) instead of a fresh one
    /// in the log folder: the local runner's, so that grpcurl and tokens outlive a run.
    pub pki_dir: Option<PathBuf>,
    /// Run each process on a test host of its own ([`crate::hosts`]): Postgres (a cluster
    /// of the stack's own), NATS and each binary in its host's network namespace, on its
    /// address and the docs/CONTRACT.md port, so that the test can cut the network
    /// between any two of them. `None`: everything on the loopback, as usual. A replica
    /// ([`Stack::start_replica`]) then runs on [`Host::Replica`].
    pub hosts: Option<Arc<Hosts>>,
}

impl StackOptions {
    /// Database connections the stack's services may open at most: each pool's size
    /// (`DATABASE_MAX_CONNECTIONS` from the options, else the services' default), the
    /// orchestrator's read pool (`DATABASE_READ_CONNECTIONS`) on top, and one each for
    /// the harness's own statements.
    pub fn database_connections(&self) -> u32 {
        let setting = |env: &[(String, String)], name: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.parse().ok())
        };
        let pool_size = |env: &[(String, String)]| setting(env, "DATABASE_MAX_CONNECTIONS");
        let domain = pool_size(&self.env).unwrap_or(DEFAULT_DATABASE_MAX_CONNECTIONS);
        let orchestrator = pool_size(&self.orchestrator_env).unwrap_or(domain);
        let reads = setting(&self.orchestrator_env, "DATABASE_READ_CONNECTIONS")
            .or_else(|| setting(&self.env, "DATABASE_READ_CONNECTIONS"))
            .unwrap_or(DEFAULT_DATABASE_READ_CONNECTIONS);
        let services = u32::try_from(Svc::ALL.len()).unwrap_or(u32::MAX);
        (services - 1) * domain + orchestrator + reads + services
    }
}

#[derive(Debug)]
struct Process {
    child: Option<Child>,
    /// Where it runs: its address, and its host's namespace.
    place: Place,
    port: u16,
    metrics_port: Option<u16>,
    database: String,
    database_url: String,
    paused: bool,
}

/// A running stack. Dropping it kills every process, drops its databases, then stops its
/// NATS server and removes the broker's store (unless the broker was already running).
#[derive(Debug)]
pub struct Stack {
    postgres: Arc<Postgres>,
    /// The orchestrator's own cluster, with `own_orchestrator_postgres`.
    orchestrator_postgres: Option<Arc<Postgres>>,
    /// Dropped after the services (fields drop after `Drop::drop`), so none of them sees
    /// the broker go before it dies itself.
    nats: Nats,
    processes: BTreeMap<Svc, Process>,
    options: StackOptions,
    bin_dir: PathBuf,
    /// Where each service's stdout and stderr go (`<binary>.log`).
    pub log_dir: PathBuf,
    /// The stack's certificates and token secret; `None` with `dev_insecure`.
    pki: Option<Pki>,
    /// How this process connects to the stack: as the operator, over TLS.
    client: Security,
}

/// Where the service binaries are: `SHOP_BIN_DIR`, else next to this executable (tests
/// run from `target/<profile>/deps`, the runner from `target/<profile>`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SHOP_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .context("executable has no folder")?
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

impl Stack {
    /// Starts Postgres (or finds it), a NATS server and the five services, and waits until
    /// all serve.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let postgres = match &options.hosts {
            // Its own, on its host: a found server is not on the hosts' network.
            Some(hosts) => Postgres::start_own_at(hosts.place(Host::Postgres), &[]).await?,
            None if options.own_postgres => Postgres::start_own().await?,
            None => Postgres::find_or_start().await?,
        };
        Self::start_on(Arc::new(postgres), options).await
    }

    /// Starts a NATS server and the five services on an already found Postgres.
    pub async fn start_on(postgres: Arc<Postgres>, options: StackOptions) -> anyhow::Result<Self> {
        postgres
            .ensure_free_slots(options.database_connections())
            .await?;
        if options.hosts.is_some() && options.own_orchestrator_postgres {
            bail!("a second Postgres of the orchestrator's own is not placed on the test hosts");
        }
        let hosts = options.hosts.clone();
        let place = |host: Host| {
            hosts
                .as_ref()
                .map(|hosts| hosts.place(host))
                .unwrap_or_default()
        };
        let bin_dir = bin_dir()?;
        for svc in Svc::ALL {
            let path = bin_dir.join(svc.binary());
            if !path.exists() {
                bail!(
                    "{} is missing: build the binaries first (cargo build --bins)",
                    path.display()
                );
            }
        }
        let run = uuid::Uuid::new_v4().simple().to_string();
        let log_dir = std::env::temp_dir().join(format!("shop-stack-{}", &run[..12]));
        std::fs::create_dir_all(&log_dir)?;
        let (pki, client) = if options.dev_insecure {
            (None, Security::DevInsecure)
        } else {
            let pki = match &options.pki_dir {
                Some(dir) => Pki::open_or_generate(dir)?,
                None => Pki::generate(&log_dir.join("pki"))?,
            };
            let client = pki.security(Principal::Operator)?;
            (Some(pki), client)
        };
        let nats_log = log_dir.join("nats-server.log");
        let nats_place = place(Host::Nats);
        // Over TLS the broker is one of the stack's own, serving mutual TLS: one found
        // on 4222 would be plaintext. On a test host, its certificate names its address.
        let nats = match (&pki, options.default_ports) {
            _ if options.hosts.is_some() => {
                let tls = match &pki {
                    Some(pki) => {
                        pki.reissue_broker(&[&nats_place.ip.to_string()])?;
                        Some(pki.broker())
                    }
                    None => None,
                };
                Nats::start_at(nats_place, &nats_log, tls).await
            }
            (Some(pki), _) => Nats::start_tls(&nats_log, pki.broker()).await,
            (None, true) => Nats::find_or_start_default(&nats_log).await,
            (None, false) => Nats::start(&nats_log).await,
        };
        let nats = match nats {
            Ok(nats) => nats,
            Err(error) => {
                // Keep the broker's log when it is what failed, to read it.
                if !nats_log.exists() {
                    let _ = std::fs::remove_dir_all(&log_dir);
                }
                return Err(error.context("the stack's NATS server"));
            }
        };
        let orchestrator_postgres = if options.own_orchestrator_postgres {
            Some(Arc::new(
                Postgres::start_own_with(&[("wal_writer_delay", "10s")]).await?,
            ))
        } else {
            None
        };
        let mut stack = Self {
            postgres,
            orchestrator_postgres,
            nats,
            processes: BTreeMap::new(),
            options,
            bin_dir,
            log_dir,
            pki,
            client,
        };
        for svc in Svc::ALL {
            let place = place(Host::Svc(svc));
            let port = if place.netns.is_some() {
                // A host of its own: its address is free, and so is every port on it.
                svc.default_port()
            } else if stack.options.default_ports {
                let port = svc.default_port();
                TcpListener::bind(("127.0.0.1", port))
                    .with_context(|| format!("port {port} for {} is taken", svc.binary()))?;
                port
            } else {
                free_port()?
            };
            let metrics_port = if stack.options.metrics {
                Some(free_port()?)
            } else {
                None
            };
            let database = format!("shop_{}_{}", svc.binary().replace('-', "_"), &run[..12]);
            let cluster = match &stack.orchestrator_postgres {
                Some(own) if svc == Svc::Orchestrator => own,
                _ => &stack.postgres,
            };
            let database_url = cluster.create_database(&database).await?;
            stack.processes.insert(
                svc,
                Process {
                    child: None,
                    place,
                    port,
                    metrics_port,
                    database,
                    database_url,
                    paused: false,
                },
            );
        }
        for svc in Svc::ALL {
            stack.spawn(svc)?;
        }
        for svc in Svc::ALL {
            stack.wait_serving(svc).await?;
        }
        Ok(stack)
    }

    fn process(&self, svc: Svc) -> &Process {
        &self.processes[&svc]
    }

    fn process_mut(&mut self, svc: Svc) -> &mut Process {
        self.processes
            .get_mut(&svc)
            .unwrap_or_else(|| unreachable!("every service is registered"))
    }

    /// The address a service listens on (its test host's, with `hosts`).
    pub fn addr(&self, svc: Svc) -> SocketAddr {
        let process = self.process(svc);
        SocketAddr::new(process.place.ip, process.port)
    }

    /// Where a service serves Prometheus metrics, when started with `metrics`.
    pub fn metrics_addr(&self, svc: Svc) -> Option<SocketAddr> {
        let process = self.process(svc);
        process
            .metrics_port
            .map(|port| SocketAddr::new(process.place.ip, port))
    }

    /// `https://127.0.0.1:PORT` of a service (`http://` with `dev_insecure`; its test
    /// host's address with `hosts`).
    pub fn url(&self, svc: Svc) -> String {
        format!("{}://{}", self.scheme(), self.addr(svc))
    }

    fn scheme(&self) -> &'static str {
        if self.pki.is_some() { "https" } else { "http" }
    }

    /// The stack's development PKI (certificates, token secret); `None` with
    /// `dev_insecure`.
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// How this process reaches the stack (as the operator, over TLS).
    pub fn security(&self) -> &Security {
        &self.client
    }

    /// Sends a token for `subject` (with the operator scope if asked); sends nothing with
    /// `dev_insecure`, where none is checked.
    pub fn token(&self, subject: &str, operator: bool) -> anyhow::Result<AttachToken> {
        match &self.pki {
            None => Ok(AttachToken::none()),
            Some(pki) => Ok(AttachToken::bearer(&pki.token(subject, operator)?)?),
        }
    }

    /// A CheckoutService client of the stack's orchestrator, as an operator.
    pub fn checkout_client(&self) -> anyhow::Result<CheckoutServiceClient<FrontDoor>> {
        Ok(CheckoutServiceClient::with_interceptor(
            self.channel(Svc::Orchestrator),
            self.token("operator", true)?,
        ))
    }

    /// `nats://127.0.0.1:PORT`: the broker every service of the stack was given as
    /// `NATS_URL`.
    pub fn nats_url(&self) -> String {
        self.nats.url()
    }

    /// The stack's NATS server: its port, version, store, and whether the stack owns it.
    pub fn nats(&self) -> &Nats {
        &self.nats
    }

    /// kill -9 the NATS server, as in a broker crash; the services keep running and its
    /// store stays for [`Stack::restart_nats`]. Fails when the broker is one the stack
    /// found running (the local runner's) rather than started.
    pub fn kill_nats(&mut self) -> anyhow::Result<()> {
        self.nats.kill()
    }

    /// Starts the NATS server again on the same port and store (killing it first if it
    /// still runs) and waits until it accepts clients with JetStream on; the services
    /// reconnect by themselves.
    pub async fn restart_nats(&mut self) -> anyhow::Result<()> {
        self.nats.restart().await
    }

    /// Restarts the stack's Postgres (`pg_ctl restart -m fast`): every service loses its
    /// connections mid-transaction and must reconnect by itself. Fails unless the stack
    /// was started with `own_postgres`.
    pub async fn restart_postgres(&self) -> anyhow::Result<()> {
        self.postgres.restart().await
    }

    /// Stops the stack's Postgres for `down` (`how`: cleanly, or as in a crash), then
    /// starts it again: every service loses its database for that long and must recover
    /// by itself. Fails unless the stack was started with `own_postgres`.
    pub async fn stop_postgres_for(&self, down: Duration, how: Shutdown) -> anyhow::Result<()> {
        self.postgres.stop_for(down, how).await
    }

    /// [`Stack::stop_postgres_for`] for the orchestrator's own cluster: its database
    /// alone goes away, the services keep theirs. Fails unless the stack was started with
    /// `own_orchestrator_postgres`.
    pub async fn stop_orchestrator_postgres_for(
        &self,
        down: Duration,
        how: Shutdown,
    ) -> anyhow::Result<()> {
        let Some(own) = &self.orchestrator_postgres else {
            bail!("the orchestrator's database is on the shared cluster: not its own to stop");
        };
        own.stop_for(down, how).await
    }

    /// The name of a service's database.
    pub fn database(&self, svc: Svc) -> &str {
        &self.process(svc).database
    }

    /// The database URL a service uses.
    pub fn database_url(&self, svc: Svc) -> &str {
        &self.process(svc).database_url
    }

    /// A lazily connected channel to a service, as the operator.
    pub fn channel(&self, svc: Svc) -> Channel {
        self.channel_as(svc, &self.client)
    }

    /// A lazily connected channel to a service, as whoever `security` makes this
    /// process (tests of who may call what).
    pub fn channel_as(&self, svc: Svc, security: &Security) -> Channel {
        lazy_channel(&self.url(svc), security, svc.principal())
    }

    fn log_file(&self, svc: Svc) -> PathBuf {
        self.log_dir.join(format!("{}.log", svc.binary()))
    }

    fn spawn(&mut self, svc: Svc) -> anyhow::Result<()> {
        let mut command = self.command(svc, self.addr(svc), &self.log_file(svc))?;
        if let Some(addr) = self.metrics_addr(svc) {
            command.env("METRICS_LISTEN_ADDR", addr.to_string());
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", svc.binary()))?;
        let process = self.process_mut(svc);
        process.child = Some(child);
        process.paused = false;
        Ok(())
    }

    /// The command that runs `svc` on `addr` with the stack's settings, logging to `log`,
    /// at `svc`'s place when `addr` is its own (a replica runs beside the test).
    fn command(&self, svc: Svc, addr: SocketAddr, log: &Path) -> anyhow::Result<Command> {
        let place = self.process(svc).place.clone();
        self.command_at(svc, &place, addr, log)
    }

    /// The command that runs `svc` at `place`, on `addr`, with the stack's settings.
    fn command_at(
        &self,
        svc: Svc,
        place: &Place,
        addr: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Command> {
        let binary = self.bin_dir.join(svc.binary());
        let mut command = logged_command_at(place, &binary, addr, log)?;
        command
            .env("DATABASE_URL", self.database_url(svc))
            .env("NATS_URL", self.nats.url())
            .env("FAULT_INJECTION", self.options.fault_injection.to_string());
        match &self.pki {
            None => {
                command.env("DEV_INSECURE", "true");
            }
            Some(pki) => {
                command.envs(pki.env(svc.principal()));
                if svc == Svc::Orchestrator {
                    command.env("AUTH_JWT_SECRET_FILE", pki.secret());
                }
            }
        }
        for (name, value) in &self.options.env {
            command.env(name, value);
        }
        if svc == Svc::Orchestrator {
            command
                .env("ORDER_SVC_URL", self.url(Svc::Order))
                .env("PAYMENT_SVC_URL", self.url(Svc::Payment))
                .env("INVENTORY_SVC_URL", self.url(Svc::Inventory))
                .env("SHIPPING_SVC_URL", self.url(Svc::Shipping));
            for (name, value) in &self.options.orchestrator_env {
                command.env(name, value);
            }
        }
        Ok(command)
    }

    /// Waits (up to 30 s) until the service reports SERVING.
    pub async fn wait_serving(&mut self, svc: Svc) -> anyhow::Result<()> {
        let channel = self.channel(svc);
        let log = self.log_file(svc);
        let process = self.process_mut(svc);
        wait_serving(channel, process.child.as_mut(), svc.binary(), &log).await
    }

    /// Starts another orchestrator process on the stack's database and downstreams, with
    /// the same settings: a second replica sharing the sagas, which takes over the ones
    /// the stack's own orchestrator held if that one dies.
    pub async fn start_replica(&self) -> anyhow::Result<Replica> {
        let place = self
            .options
            .hosts
            .as_ref()
            .map(|hosts| hosts.place(Host::Replica))
            .unwrap_or_default();
        let addr = SocketAddr::new(place.ip, free_port()?);
        let log = self
            .log_dir
            .join(format!("orchestrator-replica-{}.log", addr.port()));
        let child = self
            .command_at(Svc::Orchestrator, &place, addr, &log)?
            .spawn()
            .context("starting an orchestrator replica")?;
        let mut replica = Replica {
            child: Some(child),
            log: log.clone(),
            addr,
            scheme: self.scheme(),
            security: self.client.clone(),
        };
        wait_serving(
            replica.channel(),
            replica.child.as_mut(),
            "orchestrator replica",
            &log,
        )
        .await?;
        Ok(replica)
    }

    /// The process id of `svc`, while it runs (to read its `/proc` entry).
    pub fn pid(&self, svc: Svc) -> Option<u32> {
        self.process(svc).child.as_ref().map(Child::id)
    }

    /// kill -9: the process dies at once, mid-call, leases and all.
    pub fn kill(&mut self, svc: Svc) {
        if let Some(mut child) = self.process_mut(svc).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the process to exit; returns its exit code.
    pub fn terminate(&mut self, svc: Svc) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.process_mut(svc).child.take() else {
            return Ok(None);
        };
        signal(&child, Signal::SIGTERM)?;
        Ok(child.wait()?.code())
    }

    /// SIGSTOP: the process hangs (sockets open, nothing answered) until [`Stack::resume`].
    pub fn pause(&mut self, svc: Svc) -> anyhow::Result<()> {
        let process = self.process_mut(svc);
        if let Some(child) = &process.child {
            signal(child, Signal::SIGSTOP)?;
            process.paused = true;
        }
        Ok(())
    }

    /// SIGCONT after [`Stack::pause`].
    pub fn resume(&mut self, svc: Svc) -> anyhow::Result<()> {
        let process = self.process_mut(svc);
        if let Some(child) = &process.child {
            signal(child, Signal::SIGCONT)?;
            process.paused = false;
        }
        Ok(())
    }

    /// Starts a killed service again on the same port and database, and waits for it.
    pub async fn restart(&mut self, svc: Svc) -> anyhow::Result<()> {
        self.kill(svc);
        self.spawn(svc)?;
        self.wait_serving(svc).await
    }
}

/// The command that runs `binary` on `addr` as the harness runs every process: no
/// stdin, stdout and stderr appended to `log`, `RUST_LOG` from `STACK_LOG` (default
/// `info`), no colours.
pub fn logged_command(binary: &Path, addr: SocketAddr, log: &Path) -> anyhow::Result<Command> {
    logged_command_at(&Place::default(), binary, addr, log)
}

/// [`logged_command`] run at `place` (in a test host's namespace).
pub fn logged_command_at(
    place: &Place,
    binary: &Path,
    addr: SocketAddr,
    log: &Path,
) -> anyhow::Result<Command> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = place.command(binary);
    command
        .env("LISTEN_ADDR", addr.to_string())
        .env(
            "RUST_LOG",
            std::env::var("STACK_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(command)
}

/// Waits (up to 30 s) until the server on `channel` reports SERVING, failing early if
/// its process exits.
pub async fn wait_serving(
    channel: Channel,
    mut child: Option<&mut Child>,
    name: &str,
    log: &Path,
) -> anyhow::Result<()> {
    let mut health = HealthClient::new(channel);
    for _ in 0..300 {
        if let Some(child) = child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{name} exited with {status}; the end of {}:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        let check = health.check(HealthCheckRequest::default());
        if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_millis(500), check).await
            && reply.into_inner().status() == ServingStatus::Serving
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{name} never reported SERVING; the end of {}:\n{}",
        log.display(),
        log_tail(log)
    )
}

/// The last lines of a process's log, for a failure message: CI keeps the test's output,
/// not the temporary folder the log was in.
fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
        Err(error) => format!("(unreadable: {error})"),
    }
}

/// An extra orchestrator process of a stack ([`Stack::start_replica`]); killed when
/// dropped.
#[derive(Debug)]
pub struct Replica {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
    addr: SocketAddr,
    scheme: &'static str,
    security: Security,
}

impl Replica {
    /// `https://127.0.0.1:PORT` of the replica's CheckoutService.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// A lazily connected channel to the replica, as the stack's clients connect.
    pub fn channel(&self) -> Channel {
        lazy_channel(&self.url(), &self.security, Principal::Orchestrator)
    }

    /// kill -9, as [`Stack::kill`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A lazily connected channel to `url` (one of the stack's, always a valid URI), which
/// must be `server`.
fn lazy_channel(url: &str, security: &Security, server: Principal) -> Channel {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .unwrap_or_else(|_| unreachable!("http(s)://127.0.0.1:PORT is a valid URI"));
    connect::channel(endpoint, security, server)
}

fn signal(child: &Child, signal: Signal) -> anyhow::Result<()> {
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    kill(Pid::from_raw(pid), signal)?;
    Ok(())
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A test that failed mid-fault leaves its rules: lift them, or dropping the
        // databases below would wait on a Postgres it cannot reach.
        if let Some(hosts) = &self.options.hosts {
            let _ = hosts.heal();
        }
        for process in self.processes.values_mut() {
            if let Some(mut child) = process.child.take() {
                if process.paused {
                    let _ = signal(&child, Signal::SIGCONT);
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let postgres = self.postgres.clone();
        let databases: Vec<String> = self
            .processes
            .values()
            .map(|p| p.database.clone())
            .collect();
        // Drop may run outside a runtime (or inside one we must not block): use our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                for database in databases {
                    let _ = postgres.drop_database(&database).await;
                }
            });
            Some(())
        })
        .join();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        } else {
            eprintln!("stack logs kept in {}", self.log_dir.display());
        }
    }
}
