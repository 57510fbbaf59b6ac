//! The NATS server (JetStream on) that a stack's events go through.
//!
//! A stack gets a broker of its own: `nats-server -js` on a free loopback port, its store
//! in a temporary folder, so that tests never share one, nor use a broker that happens to
//! run on the machine. The port is chosen once, below the ephemeral range
//! ([`crate::net`]), and named on the command line: the broker lives as long as the
//! stack, can be killed (-9) and restarted on the same port and store (by
//! [`Nats::restart`], or by hand from its own command line), so its clients reconnect to
//! the address they know; it goes with its store when dropped. The local runner, on
//! the docs/CONTRACT.md ports, instead uses the NATS server already answering on
//! 127.0.0.1:4222 if there is one (it must have JetStream on), else starts its own there.
//!
//! The binary is found by `platform::testing::nats_server_binary`, as every test's broker
//! is: `NATS_SERVER_BIN`, `nats-server` on `PATH`, then `/usr/sbin/nats-server`.
//!
//! Over 400 lines with its tests: starting, TLS, placement on a test host, restart on the
//! same port and store, and finding the runner's broker are one process's life.

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{hosts::Place, nats_auth::BrokerTls};

/// The port of the default `NATS_URL`, `nats://127.0.0.1:4222` (platform's config).
pub const DEFAULT_PORT: u16 = 4222;

/// A reachable NATS server with JetStream and, when we started it, its process.
#[derive(Debug)]
pub struct Nats {
    /// The address it serves on: the loopback, or its test host's.
    host: IpAddr,
    port: u16,
    /// What its INFO said: the server's version.
    version: String,
    /// `None` when the broker was already running (the local runner's 127.0.0.1:4222).
    owned: Option<Owned>,
}

/// A broker this harness started, and its folder: `store/` (JetStream) and ports files.
#[derive(Debug)]
struct Owned {
    binary: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    tls: Option<BrokerTls>,
    /// Where it runs (its namespace, on a test host).
    place: Place,
}

impl Nats {
    /// Starts a broker of our own on a free loopback port, its store in a fresh temporary
    /// folder; its output is appended to `log`.
    pub async fn start(log: &Path) -> anyhow::Result<Self> {
        Self::start_on(None, log, None, Place::default()).await
    }

    /// [`Nats::start`], serving mutual TLS only, with each principal's permissions.
    pub async fn start_tls(log: &Path, tls: BrokerTls) -> anyhow::Result<Self> {
        Self::start_on(None, log, Some(tls), Place::default()).await
    }

    /// [`Nats::start`] or [`Nats::start_tls`] at `place`: on a test host, in its
    /// namespace, serving on its address (over TLS the broker's certificate must name
    /// that address: [`crate::pki::Pki::reissue_broker`]).
    pub async fn start_at(
        place: Place,
        log: &Path,
        tls: Option<BrokerTls>,
    ) -> anyhow::Result<Self> {
        Self::start_on(None, log, tls, place).await
    }

    /// For the local runner: the broker already answering on 127.0.0.1:4222, if it is a
    /// NATS server with JetStream on; else one of our own started on that port.
    pub async fn find_or_start_default(log: &Path) -> anyhow::Result<Self> {
        Self::find_or_start(DEFAULT_PORT, log).await
    }

    async fn find_or_start(port: u16, log: &Path) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(_) => Self::start_on(Some(port), log, None, Place::default()).await,
            Ok(stream) => {
                let info = read_info(stream).with_context(|| {
                    format!(
                        "port {port} is taken by something that is not a NATS server: stop \
                         it, or run with --any-ports"
                    )
                })?;
                if !info.jetstream {
                    bail!(
                        "the NATS server on 127.0.0.1:{port} (version {}) runs without \
                         JetStream: restart it with `-js`, stop it (a broker is then started \
                         here), or run with --any-ports",
                        info.version
                    );
                }
                Ok(Self {
                    host: addr.ip(),
                    port,
                    version: info.version,
                    owned: None,
                })
            }
        }
    }

    /// Starts `nats-server -js` on `port` (`None`: a free one, chosen here) in a fresh
    /// folder, over mutual TLS when given its files.
    async fn start_on(
        port: Option<u16>,
        log: &Path,
        tls: Option<BrokerTls>,
        place: Place,
    ) -> anyhow::Result<Self> {
        let binary = platform::testing::nats_server_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "shop-nats-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(dir.join("store"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut nats = Self {
            host: place.ip,
            port: 0,
            version: String::new(),
            owned: Some(Owned {
                binary,
                dir,
                log: log.to_owned(),
                child: None,
                tls,
                place,
            }),
        };
        let Some(port) = port else {
            // A port chosen here can still be taken by another process between the check
            // and the broker's bind (rarely, below the ephemeral range): try another.
            let mut tries = 0;
            loop {
                tries += 1;
                match nats.launch(crate::net::free_port()?).await {
                    Ok(()) => return Ok(nats),
                    Err(error) if tries >= 3 => return Err(error),
                    Err(_) => {}
                }
            }
        };
        // On failure `nats` is dropped here, which kills the process and removes the folder.
        nats.launch(port).await?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:PORT` (its test host's address instead, on one), the
    /// `NATS_URL` to give the services.
    pub fn url(&self) -> String {
        format!("nats://{}", SocketAddr::new(self.host, self.port))
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's version, from its INFO.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether this harness started the broker (and so stops it, and may kill and restart
    /// it), rather than found it running.
    pub fn started_here(&self) -> bool {
        self.owned.is_some()
    }

    /// Where JetStream keeps the stream, for a broker started here.
    pub fn store_dir(&self) -> Option<PathBuf> {
        self.owned.as_ref().map(|owned| owned.dir.join("store"))
    }

    /// One line on what the broker is and who owns it, for people.
    pub fn describe(&self) -> String {
        match &self.owned {
            Some(owned) => format!(
                "{}: nats-server {} with JetStream{}, started for this run from {} (store {}, \
                 removed when it stops)",
                self.url(),
                self.version,
                if owned.tls.is_some() {
                    " and mutual TLS (each certificate allowed its principal's subjects only)"
                } else {
                    ""
                },
                owned.binary.display(),
                owned.dir.join("store").display()
            ),
            None => format!(
                "{}: the NATS server (version {}, JetStream on) that was already running \
                 there; used as it is and left running, so its stream keeps the events of \
                 earlier runs",
                self.url(),
                self.version
            ),
        }
    }

    fn owned_mut(&mut self) -> anyhow::Result<&mut Owned> {
        let port = self.port;
        self.owned.as_mut().with_context(|| {
            format!(
                "the NATS server on 127.0.0.1:{port} was already running: the stack did not \
                 start it, so it does not kill or restart it"
            )
        })
    }

    /// kill -9: the broker dies at once, as in a crash; its store stays on disk.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let owned = self.owned_mut()?;
        if let Some(mut child) = owned.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts the broker again on the same port and store (after [`Nats::kill`], or
    /// killing it first), and waits until it accepts clients with JetStream on.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        let port = self.port;
        self.launch(port).await
    }

    /// Spawns the process on `port` and waits (up to 10 s) until it has written its ports
    /// file and answers with an INFO that says JetStream is on.
    async fn launch(&mut self, port: u16) -> anyhow::Result<()> {
        let owned = self.owned_mut()?;
        // A server killed with -9 leaves its ports file behind.
        remove_ports_files(&owned.dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&owned.log)
            .with_context(|| format!("opening {}", owned.log.display()))?;
        let host = owned.place.ip;
        let mut command = owned.place.command(&owned.binary);
        command
            .args([
                "-js",
                "-a",
                &host.to_string(),
                "-p",
                &port.to_string(),
                "-sd",
            ])
            .arg(owned.dir.join("store"))
            .arg("--ports_file_dir")
            .arg(&owned.dir);
        if let Some(tls) = &owned.tls {
            // Mutual TLS, and each certificate allowed its principal's subjects only: a
            // configuration file, since certificates are mapped to users only there.
            // Clients still read the INFO line in plaintext first, then upgrade.
            let config = owned.dir.join("nats.conf");
            std::fs::write(&config, crate::nats_auth::broker_config(tls))
                .with_context(|| format!("writing {}", config.display()))?;
            command.arg("--config").arg(config);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", owned.binary.display()))?;
        owned.child = Some(child);
        let (dir, log) = (owned.dir.clone(), owned.log.clone());
        for _ in 0..200 {
            let owned = self.owned_mut()?;
            if let Some(child) = owned.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                owned.child = None;
                bail!(
                    "nats-server exited with {status} (is port {port} taken?); see {}",
                    log.display()
                );
            }
            if let Some(listening) = ports_file_port(&dir) {
                if listening != port {
                    bail!("nats-server listens on {listening}, not on {port}");
                }
                let addr = SocketAddr::new(host, listening);
                let info = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .map_err(anyhow::Error::from)
                    .and_then(read_info);
                if let Ok(info) = info
                    && info.jetstream
                {
                    self.port = listening;
                    self.version = info.version;
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "nats-server did not accept clients with JetStream on within 10 s; see {}",
            log.display()
        )
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(owned) = &mut self.owned {
            if let Some(mut child) = owned.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&owned.dir);
        }
    }
}

/// What a NATS server says first to every client.
#[derive(Debug)]
struct Info {
    version: String,
    jetstream: bool,
}

/// Reads the `INFO {...}` line a NATS server sends on connect (within 2 s).
fn read_info(stream: TcpStream) -> anyhow::Result<Info> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let json = line
        .strip_prefix("INFO ")
        .with_context(|| format!("no NATS INFO line: {:?}", line.trim_end()))?;
    let field = |name: &str| {
        let key = format!("\"{name}\":");
        json.find(&key).map(|at| {
            json[at + key.len()..]
                .trim_start()
                .split([',', '}'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"')
                .to_owned()
        })
    };
    Ok(Info {
        version: field("version").unwrap_or_else(|| "unknown".into()),
        jetstream: field("jetstream").as_deref() == Some("true"),
    })
}

/// The client port in a ports file: `{"nats":["nats://127.0.0.1:PORT"],...}`.
fn client_port(ports: &str) -> Option<u16> {
    let rest = &ports[ports.find("\"nats\":[\"")? + "\"nats\":[\"".len()..];
    let url = rest.split('"').next()?;
    url.rsplit_once(':')?.1.parse().ok()
}

/// Ports files (`<argv0>_<pid>.ports`) in `dir`.
fn ports_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "ports"))
                .collect()
        })
        .unwrap_or_default()
}

/// The client port in the ports file of the one server that runs in `dir`, once written.
fn ports_file_port(dir: &Path) -> Option<u16> {
    ports_files(dir)
        .iter()
        .find_map(|path| client_port(&std::fs::read_to_string(path).ok()?))
}

fn remove_ports_files(dir: &Path) {
    for path in ports_files(dir) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// One request over the raw NATS protocol: the reply's payload.
    fn request(port: u16, subject: &str, payload: &str) -> String {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("INFO "), "{line}");
        write!(
            writer,
            "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB _INBOX.t 1\r\n\
             PUB {subject} _INBOX.t {}\r\n{payload}\r\n",
            payload.len()
        )
        .unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.starts_with("PING") {
                writer.write_all(b"PONG\r\n").unwrap();
                continue;
            }
            assert!(!line.starts_with("-ERR"), "{line}");
            if let Some(header) = line.strip_prefix("MSG ") {
                let size: usize = header.split_whitespace().last().unwrap().parse().unwrap();
                let mut body = vec![0; size + 2];
                reader.read_exact(&mut body).unwrap();
                body.truncate(size);
                return String::from_utf8(body).unwrap();
            }
        }
    }

    fn log() -> PathBuf {
        std::env::temp_dir().join(format!(
            "shop-nats-test-{}.log",
            uuid::Uuid::new_v4().simple()
        ))
    }

    #[tokio::test]
    async fn a_broker_of_its_own_keeps_its_stream_across_a_kill_and_a_restart() {
        let log = log();
        let mut nats = Nats::start(&log).await.unwrap();
        assert!(nats.started_here());
        assert_ne!(
            nats.port(),
            DEFAULT_PORT,
            "a free port, not the default one"
        );
        assert_eq!(nats.url(), format!("nats://127.0.0.1:{}", nats.port()));
        let port = nats.port();

        let created = request(
            port,
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","subjects":["t.>"],"storage":"file"}"#,
        );
        assert!(!created.contains("\"error\""), "{created}");
        let ack = request(port, "t.a", "hello");
        assert!(ack.contains("\"seq\":1"), "{ack}");
        // The file store flushes what it acknowledged within milliseconds.
        tokio::time::sleep(Duration::from_millis(300)).await;

        nats.kill().unwrap();
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "killed, nothing listens on {port}"
        );
        nats.restart().await.unwrap();
        assert_eq!(nats.port(), port, "restarted on the same port");
        let info = request(port, "$JS.API.STREAM.INFO.T", "");
        assert!(info.contains("\"messages\":1"), "same store: {info}");

        let dir = nats.store_dir().unwrap();
        drop(nats);
        assert!(!dir.exists(), "the store goes with the broker");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        let _ = std::fs::remove_file(log);
    }

    #[tokio::test]
    async fn a_broker_restarted_from_its_own_command_line_comes_back_at_its_address() {
        let log = log();
        let mut nats = Nats::start(&log).await.unwrap();
        let port = nats.port();
        assert!(
            (20_000..32_000).contains(&port),
            "below the ephemeral range: {port}"
        );
        let created = request(
            port,
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","subjects":["t.>"],"storage":"file"}"#,
        );
        assert!(!created.contains("\"error\""), "{created}");
        tokio::time::sleep(Duration::from_millis(300)).await;

        // What an operator (or a supervisor) would run again: the command line as is.
        let pid = nats.owned.as_ref().unwrap().child.as_ref().unwrap().id();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        nats.kill().unwrap();
        /// The broker started by hand, killed however the test ends.
        struct ByHand(Child);
        impl Drop for ByHand {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let again = ByHand(
            std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for _ in 0..100 {
            let up = TcpStream::connect(("127.0.0.1", port))
                .map_err(anyhow::Error::from)
                .and_then(read_info);
            if up.is_ok_and(|info| info.jetstream) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let info = request(port, "$JS.API.STREAM.INFO.T", "");
        drop(again);
        assert!(
            info.contains("\"name\":\"T\""),
            "the same address and store: {info}"
        );
        drop(nats);
        let _ = std::fs::remove_file(log);
    }

    /// A listener on a free port that greets each client with `greeting`.
    fn fake_server(greeting: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(greeting.as_bytes());
            }
        });
        port
    }

    #[tokio::test]
    async fn the_local_runner_uses_a_running_broker_only_if_it_is_nats_with_jetstream() {
        let log = log();
        let port = fake_server("HTTP/1.1 400 Bad Request\r\n\r\n");
        let error = Nats::find_or_start(port, &log).await.unwrap_err();
        assert!(
            format!("{error:#}").contains("not a NATS server"),
            "{error:#}"
        );

        let port = fake_server("INFO {\"version\":\"2.9.10\",\"port\":4222}\r\n");
        let error = Nats::find_or_start(port, &log).await.unwrap_err();
        assert!(
            format!("{error:#}").contains("without JetStream"),
            "{error:#}"
        );

        let port = fake_server("INFO {\"version\":\"2.14.5\",\"jetstream\":true}\r\n");
        let mut found = Nats::find_or_start(port, &log).await.unwrap();
        assert!(!found.started_here());
        assert_eq!(found.version(), "2.14.5");
        assert_eq!(found.url(), format!("nats://127.0.0.1:{port}"));
        assert!(
            found.kill().is_err(),
            "a broker found running is not ours to kill"
        );
        assert!(found.restart().await.is_err());
        assert!(found.describe().contains("already running"));
        assert!(!log.exists(), "nothing was started");
    }

    #[test]
    fn ports_files_are_read() {
        assert_eq!(
            client_port(r#"{"nats":["nats://127.0.0.1:41234"],"monitoring":null}"#),
            Some(41234)
        );
        assert_eq!(client_port("{}"), None);
    }
}
