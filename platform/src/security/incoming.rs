//! The connections a server accepts: TCP_NODELAY on each, the TLS handshake (when TLS is
//! on) in a task of its own so a slow or hostile client cannot hold up the accept loop,
//! and the peer's identity handed to tonic as connect info, which it attaches to every
//! request of the connection.
//!
//! Bounded, so that no client can hold a server's memory and descriptors for ever:
//! - at most [`ConnectionLimits::max_connections`] open at once: a permit is taken
//!   *before* accepting (as mini-redis does), so past the cap new clients wait in the
//!   kernel's backlog instead of costing a descriptor and a task each;
//! - at most [`MAX_HANDSHAKES`] TLS handshakes at once (CPU), each counted from the
//!   client's first bytes, and the whole within [`HANDSHAKE_TIMEOUT`] of accepting;
//! - a connection that has sent nothing yet (no HTTP/2 preface) is closed after
//!   [`PREFACE_TIMEOUT`], and one whose peer has sent nothing for
//!   [`ConnectionLimits::idle_timeout`] is closed too. Only what the peer sends counts:
//!   the server's own writes would keep a forgotten connection alive. A watch stream
//!   with nothing to say for that long is closed with it; its client watches again.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::{
    principal::{Identity, Peer, Principal},
    tls::{ClientAuth, Tls},
};

/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay silent before its first bytes (the HTTP/2 preface).
pub const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once; more wait for one to finish.
pub const MAX_HANDSHAKES: usize = 128;

/// How many connections a server keeps, and how long an idle one lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long a peer may send nothing before its connection is closed
    /// (`CONNECTION_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// The connections a server accepted, and how many of them have TCP_NODELAY. Every one
/// should: tonic ignores `Server::tcp_nodelay` for a listener handed in as a stream, and
/// without it a response written in two pieces waits for the peer's delayed ACK (~40 ms
/// on Linux). Counted so a test can tell if that ever regresses.
#[derive(Debug, Default)]
pub struct Connections {
    accepted: AtomicU64,
    nodelay: AtomicU64,
}

impl Connections {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn with_nodelay(&self) -> u64 {
        self.nodelay.load(Ordering::Relaxed)
    }
}

/// One accepted connection, ready for HTTP/2. Holds its place under the cap until
/// dropped, and closes itself when its peer falls silent.
#[derive(Debug)]
pub struct Accepted {
    stream: Link,
    peer: Peer,
    silence: Silence,
    _permit: OwnedSemaphorePermit,
}

/// When a connection's peer has been silent for too long: a deadline pushed back by
/// every read that brings bytes.
#[derive(Debug)]
struct Silence {
    deadline: Pin<Box<tokio::time::Sleep>>,
    idle: Duration,
}

impl Silence {
    fn new(idle: Duration) -> Self {
        Self {
            deadline: Box::pin(tokio::time::sleep(PREFACE_TIMEOUT.min(idle))),
            idle,
        }
    }
}

/// What the bytes of an accepted connection travel over: TCP itself (`--dev-insecure`) or
/// TLS on it. Boxed: a TLS session is far larger than a socket.
#[derive(Debug)]
enum Link {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Accepted {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer
    }
}

impl AsyncRead for Accepted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = match &mut this.stream {
            Link::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Link::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        };
        match read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let next = tokio::time::Instant::now() + this.silence.idle;
                this.silence.deadline.as_mut().reset(next);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.silence.deadline.as_mut().poll(cx).is_ready() => {
                metrics::counter!("connections_closed_idle_total").increment(1);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer sent nothing for too long",
                )))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Link::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Link::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Link::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Link::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Link::Plain(tcp) => tcp.is_write_vectored(),
            Link::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Link::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Link::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Link::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Link::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// TLS for a server: its identity and whether clients must present a certificate.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub tls: Arc<Tls>,
    pub client_auth: ClientAuth,
}

/// Accepts connections on `listener`, within `limits`, until the returned stream is
/// dropped.
pub fn incoming(
    listener: TcpListener,
    connections: Arc<Connections>,
    tls: Option<ServerTls>,
    limits: ConnectionLimits,
) -> impl Stream<Item = io::Result<Accepted>> {
    let (tx, rx) = mpsc::channel(64);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            // A place first: past the cap, clients wait in the backlog, unaccepted.
            let permit = tokio::select! {
                permit = open.clone().acquire_owned() => permit,
                () = tx.closed() => return,
            };
            let Ok(permit) = permit else { return };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, remote_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY on an accepted connection");
            }
            connections.accepted.fetch_add(1, Ordering::Relaxed);
            if tcp.nodelay().unwrap_or(false) {
                connections.nodelay.fetch_add(1, Ordering::Relaxed);
            }
            let remote_addr = Some(remote_addr);
            match &tls {
                None => {
                    let accepted = Accepted {
                        stream: Link::Plain(tcp),
                        peer: Peer {
                            remote_addr,
                            identity: Identity::Plaintext,
                        },
                        silence: Silence::new(limits.idle_timeout),
                        _permit: permit,
                    };
                    if tx.send(Ok(accepted)).await.is_err() {
                        return;
                    }
                }
                Some(server) => {
                    let config = server.tls.server_config(server.client_auth);
                    let tx = tx.clone();
                    let handshakes = handshakes.clone();
                    tokio::spawn(async move {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        // The handshake's turn is taken once the client has spoken: a
                        // silent connection holds a place under the connection cap, never
                        // a handshake's, so it cannot keep others from theirs.
                        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                            tcp.readable().await?;
                            let _turn = handshakes.acquire().await.map_err(io::Error::other)?;
                            acceptor.accept(tcp).await
                        })
                        .await;
                        let stream = match handshake {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::info!(?remote_addr, %error, "TLS handshake refused");
                                return;
                            }
                            Err(_) => {
                                tracing::info!(?remote_addr, "TLS handshake timed out");
                                return;
                            }
                        };
                        let identity = match stream.get_ref().1.peer_certificates() {
                            None | Some([]) => Identity::Anonymous,
                            Some([leaf, ..]) => match Principal::of_certificate(leaf) {
                                Some(principal) => Identity::Known(principal),
                                None => Identity::Unknown,
                            },
                        };
                        let accepted = Accepted {
                            stream: Link::Tls(Box::new(stream)),
                            peer: Peer {
                                remote_addr,
                                identity,
                            },
                            silence: Silence::new(limits.idle_timeout),
                            _permit: permit,
                        };
                        let _ = tx.send(Ok(accepted)).await;
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
