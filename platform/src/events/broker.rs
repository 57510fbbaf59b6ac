//! The broker: a NATS connection with JetStream, and the one stream every event goes to,
//! created or brought up to date at start-up (idempotent, so every replica may do it).

use std::time::Duration;

use async_nats::{
    Client, Event, ServerError,
    jetstream::{self, stream},
};

use super::{DUPLICATE_WINDOW, STREAM, SUBJECTS, permissions::inbox_prefix, refusals::Refusals};
use crate::security::Tls;

/// Connects to `url` and makes sure the stream exists as configured here, with
/// `replicas` copies, retrying until the broker answers (a service starts, and serves its
/// API, while the broker is down; its events wait in the outbox). Also returns what the
/// broker refuses this connection from then on.
pub async fn connect(
    url: &str,
    name: &str,
    tls: Option<&Tls>,
    replicas: u8,
) -> (jetstream::Context, Refusals) {
    let mut wait = Duration::from_millis(200);
    loop {
        match try_connect(url, name, tls, replicas).await {
            Ok(connected) => return connected,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), url, "broker unavailable; events wait in the outbox");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A client of the broker at `url`, over mutual TLS with `tls` (the binary's certificate,
/// and the shop's CA for the broker's), plaintext without.
pub async fn client(url: &str, name: &str, tls: Option<&Tls>) -> anyhow::Result<Client> {
    Ok(connection(url, name, tls).await?.0)
}

/// [`client`], and what the broker refuses it (each refusal is also logged as an error).
///
/// Over TLS its reply subjects start with its principal's own inbox prefix: the broker
/// lets each principal subscribe there only, so replies and pulled events meant for one
/// certificate cannot be read with another.
pub async fn connection(
    url: &str,
    name: &str,
    tls: Option<&Tls>,
) -> anyhow::Result<(Client, Refusals)> {
    let refusals = Refusals::default();
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(2))
        .event_callback(log_events(name.to_owned(), refusals.clone()));
    if let Some(tls) = tls {
        let mut config = (*tls.client_config()).clone();
        // Ours asks for HTTP/2 (gRPC); NATS speaks its own protocol inside TLS.
        config.alpn_protocols.clear();
        options = options.require_tls(true).tls_client_config(config);
        if let Some(principal) = tls.principal() {
            options = options.custom_inbox_prefix(inbox_prefix(principal));
        }
    }
    Ok((options.connect(url).await?, refusals))
}

/// The connection's event handler: records refusals and logs each subject's first (a
/// batch of refused events would otherwise log one line each), logs other server
/// errors. A refusal is an error, not a warning: the broker's authorization and this
/// binary disagree, which no retry mends.
fn log_events(
    name: String,
    refusals: Refusals,
) -> impl Fn(Event) -> std::future::Ready<()> + Send + Sync + 'static {
    move |event| {
        if let Event::ServerError(ServerError::Other(message)) = &event {
            match refusals.record(message) {
                Some(refused) if refused.again => {}
                Some(refused) => tracing::error!(
                    connection = %name,
                    operation = refused.operation.as_str(),
                    subject = refused.subject,
                    "the broker refused this; the certificate's principal may not do it \
                     (docs/SECURITY.md)"
                ),
                None => {
                    tracing::warn!(connection = %name, error = %message, "the broker reported an error")
                }
            }
        }
        std::future::ready(())
    }
}

async fn try_connect(
    url: &str,
    name: &str,
    tls: Option<&Tls>,
    replicas: u8,
) -> anyhow::Result<(jetstream::Context, Refusals)> {
    let (client, refusals) = connection(url, name, tls).await?;
    let js = jetstream::new(client);
    ensure_stream(&js, replicas).await?;
    Ok((js, refusals))
}

/// Creates the stream, or updates it to this configuration.
pub async fn ensure_stream(js: &jetstream::Context, replicas: u8) -> anyhow::Result<()> {
    js.create_or_update_stream(stream_config(replicas)).await?;
    Ok(())
}

/// The stream as every service wants it. The replica count is written out, never left
/// at the library's default: an update carrying the default would scale a clustered
/// stream back down to one copy each time a service restarts.
pub fn stream_config(replicas: u8) -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: super::STREAM_MAX_AGE,
        num_replicas: usize::from(replicas.max(1)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_asks_for_the_replicas_it_is_given() {
        assert_eq!(stream_config(3).num_replicas, 3);
        assert_eq!(stream_config(1).num_replicas, 1);
        // Zero would mean "the server's default" on create and one copy on update.
        assert_eq!(stream_config(0).num_replicas, 1);
        assert_eq!(stream_config(1).name, STREAM);
    }
}
