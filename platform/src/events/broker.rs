//! The broker: a NATS connection with JetStream, and the one stream every event goes to,
//! created or brought up to date at start-up (idempotent, so every replica may do it).
//!
//! A broker can come back without its store (a lost volume, a node replaced): the stream
//! and every durable consumer are gone. Whoever finds that out first creates the stream
//! again ([`find_or_recreate`], called by consumers; the relay on a publish that finds no
//! stream), consumers create their durables again, and every relay notices that the
//! stream is a new one by its creation time ([`Incarnation`]) and publishes again what
//! its outbox still keeps (`outbox::KEEP_SENT`): the events it had published into the
//! lost store may not all have been consumed, and the consumers' inboxes absorb the rest.

use std::time::Duration;

use async_nats::{
    Client, Event, ServerError,
    datetime::DateTime,
    jetstream::{
        self, ErrorCode,
        context::{CreateStreamErrorKind, GetStreamErrorKind},
        stream,
    },
};

use super::{
    DUPLICATE_WINDOW, STREAM, SUBJECTS, StreamLimits, permissions::inbox_prefix, refusals::Refusals,
};
use crate::security::Tls;

/// Which stream a binary last saw: its creation time. A different one means the stream
/// was created again since (the broker lost its store), with none of the events it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incarnation(DateTime);

/// A broker connection: JetStream, the stream as first found, and what the broker refuses
/// this connection from then on.
#[derive(Debug, Clone)]
pub struct Connected {
    pub js: jetstream::Context,
    pub stream: Incarnation,
    pub refusals: Refusals,
}

/// Connects to `url` and makes sure the stream exists as configured here, with
/// `stream`'s copies and bounds, retrying until the broker answers (a service starts, and serves its
/// API, while the broker is down; its events wait in the outbox).
pub async fn connect(url: &str, name: &str, tls: Option<&Tls>, stream: StreamLimits) -> Connected {
    let mut wait = Duration::from_millis(200);
    loop {
        match try_connect(url, name, tls, stream).await {
            Ok(connected) => return connected,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), url, "broker unavailable; events wait in the outbox");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// How often a connection pings the broker. async-nats gives up on a connection when a
/// third ping goes unanswered, so a broker that went silent (a partition: no reset, no
/// error) is noticed after two to three of these. The library's 60 s let a connection
/// cut for 15 s go unnoticed, and it resumed only when TCP next resent, 12–15 s after
/// the heal; noticed, it reconnects as soon as the network lets it, and the flow went on
/// 7–9 s after the heal (docs/FAULTS.md, "Between hosts"). A ping is a few bytes each
/// way.
const PING_INTERVAL: Duration = Duration::from_secs(5);

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
        .ping_interval(PING_INTERVAL)
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
    stream: StreamLimits,
) -> anyhow::Result<Connected> {
    let (client, refusals) = connection(url, name, tls).await?;
    let js = jetstream::new(client);
    let stream = ensure_stream(&js, stream).await?;
    Ok(Connected {
        js,
        stream,
        refusals,
    })
}

/// Creates the stream, or updates it to this configuration.
///
/// Create first, update only when the broker says the stream exists with another
/// configuration: every binary of a stack does this as it starts, and creating a stream
/// that exists as asked is a no-op, while concurrent updates of one stream crashed
/// nats-server 2.9 (Debian's; a nil dereference in `stream.update`, seen when five
/// binaries started at once). async-nats's `create_or_update_stream` updates first.
pub async fn ensure_stream(
    js: &jetstream::Context,
    stream: StreamLimits,
) -> anyhow::Result<Incarnation> {
    let config = stream_config(stream);
    let created = match js.create_stream(config.clone()).await {
        Ok(created) => created.cached_info().created,
        Err(error)
            if matches!(
                error.kind(),
                CreateStreamErrorKind::JetStream(ref js_error)
                    if js_error.error_code() == ErrorCode::STREAM_NAME_EXIST
            ) =>
        {
            js.update_stream(config).await?.created
        }
        Err(error) => return Err(error.into()),
    };
    Ok(Incarnation(created))
}

/// The stream, created again (and said so) when the broker no longer has it.
pub async fn find_or_recreate(
    js: &jetstream::Context,
    limits: StreamLimits,
) -> anyhow::Result<(stream::Stream, Incarnation)> {
    match js.get_stream(STREAM).await {
        Ok(mut stream) => {
            let created = stream.info().await?.created;
            Ok((stream, Incarnation(created)))
        }
        Err(error) if is_missing(error.kind()) => {
            tracing::warn!(
                stream = STREAM,
                "the stream is gone (the broker lost its store?): creating it again; \
                 outboxes publish again what they keep"
            );
            metrics::counter!("events_stream_recreated_total").increment(1);
            let incarnation = ensure_stream(js, limits).await?;
            Ok((js.get_stream(STREAM).await?, incarnation))
        }
        Err(error) => Err(error.into()),
    }
}

/// The stream as it is now, `None` when the broker has none.
pub async fn incarnation(js: &jetstream::Context) -> anyhow::Result<Option<Incarnation>> {
    match js.get_stream(STREAM).await {
        Ok(mut stream) => Ok(Some(Incarnation(stream.info().await?.created))),
        Err(error) if is_missing(error.kind()) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn is_missing(kind: GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(error) if error.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// The stream as every service wants it. The replica count is written out, never left
/// at the library's default: an update carrying the default would scale a clustered
/// stream back down to one copy each time a service restarts. A full stream refuses
/// new events (`discard: new`) instead of dropping the oldest, which consumers may not
/// have read: refused events wait in their producers' outboxes.
pub fn stream_config(limits: StreamLimits) -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: limits.max_age,
        max_bytes: limits
            .max_bytes
            .and_then(|bytes| i64::try_from(bytes).ok())
            .unwrap_or(-1),
        discard: stream::DiscardPolicy::New,
        num_replicas: usize::from(limits.replicas.max(1)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_asks_for_the_replicas_and_bounds_it_is_given() {
        let with = |replicas, max_bytes| {
            stream_config(StreamLimits {
                replicas,
                max_bytes,
                ..StreamLimits::default()
            })
        };
        assert_eq!(with(3, None).num_replicas, 3);
        assert_eq!(with(1, None).num_replicas, 1);
        // Zero would mean "the server's default" on create and one copy on update.
        assert_eq!(with(0, None).num_replicas, 1);
        assert_eq!(with(1, None).name, STREAM);
        assert_eq!(with(1, None).max_bytes, -1, "unbounded");
        assert_eq!(with(1, Some(1 << 30)).max_bytes, 1 << 30);
        assert_eq!(with(1, None).max_age, crate::events::STREAM_MAX_AGE);
        assert_eq!(with(1, None).discard, stream::DiscardPolicy::New);
    }
}
