//! The connections a server accepts: TCP_NODELAY on each, the TLS handshake (when TLS is
//! on) in a task of its own so a slow or hostile client cannot hold up the accept loop,
//! and the peer's identity handed to tonic as connect info, which it attaches to every
//! request of the connection.

use std::{
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
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::{
    principal::{Identity, Peer, Principal},
    tls::{ClientAuth, Tls},
};

/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// One accepted connection, ready for HTTP/2.
#[derive(Debug)]
pub struct Accepted {
    stream: Link,
    peer: Peer,
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
        match &mut self.get_mut().stream {
            Link::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Link::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
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

/// Accepts connections on `listener` until the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    connections: Arc<Connections>,
    tls: Option<ServerTls>,
) -> impl Stream<Item = io::Result<Accepted>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
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
                    };
                    if tx.send(Ok(accepted)).await.is_err() {
                        return;
                    }
                }
                Some(server) => {
                    let config = server.tls.server_config(server.client_auth);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        let handshake =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
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
                        };
                        let _ = tx.send(Ok(accepted)).await;
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
