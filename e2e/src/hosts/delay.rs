//! A delayed link without netem: a forwarding TCP proxy inside the client host's
//! namespace, onto which an iptables `nat OUTPUT` rule redirects the connections the host
//! opens to a delayed server (not every kernel has netem, this machine's included; a
//! proxy needs nothing else).
//!
//! The redirect is transparent: the client still connects to the server's address and
//! port (TLS names and certificates are unchanged), the proxy reads where it was going
//! from the connection's `SO_ORIGINAL_DST` and opens its own connection there, marked
//! with [`MARK`] so that the redirect lets it pass. Each chunk read from either side is
//! stamped on arrival and written to the other side at arrival + the delay: in order, and
//! without one chunk's wait adding to the next one's (chunks in flight overlap as packets
//! on a slow link do, so a delay does not become a throughput limit).
//!
//! What differs from netem, which delays each packet on an interface: the delay is per
//! chunk of the byte stream, above TCP. The proxy's two TCP connections (client ↔ proxy
//! on loopback, proxy ↔ server across the bridge) have no delay of their own, so TCP
//! sees a short round trip: a lost segment is resent after about 200 ms (Linux's floor),
//! where across a link with a round trip of 2 × the delay it would wait about that round
//! trip more. A connection is accepted by the proxy at once (the handshake with the
//! server is not delayed), and a server that resets a connection is seen by the client
//! as one closed.

use std::{
    collections::HashMap,
    fs::File,
    io,
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;
use nix::sched::{CloneFlags, setns};
use socket2::SockRef;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpSocket, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{mpsc, oneshot},
    time::Instant,
};

/// The firewall mark of the proxy's own connections to servers: the redirect rule skips
/// packets carrying it, or the proxy's connections would be sent back to itself.
pub(super) const MARK: u32 = 0x5d17;

/// The most bytes read at once, and the most chunks held per direction of a connection
/// (16 MiB): past that, reading waits, which TCP turns into backpressure.
const CHUNK: usize = 64 * 1024;
const CHUNKS_HELD: usize = 256;

/// Each delayed server's address and the delay of its connections, each way. Read per
/// chunk, so that a change (or [`DelayProxy::clear`]) applies to open connections too.
type Delays = Arc<Mutex<HashMap<Ipv4Addr, Duration>>>;

/// One client host's proxy: a thread inside its namespace, serving on loopback.
#[derive(Debug)]
pub(super) struct DelayProxy {
    port: u16,
    delays: Delays,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Starts a proxy in the namespace `netns` (`ip netns` name): a thread that enters it
    /// and runs a runtime of its own, so that the listener and every connection the proxy
    /// opens belong to that namespace. It serves on 127.0.0.1, a free port.
    pub(super) fn start(netns: &str) -> anyhow::Result<Self> {
        let path = Path::new("/run/netns").join(netns);
        let namespace = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let delays = Delays::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("delay-{netns}"))
            .spawn({
                let delays = delays.clone();
                move || {
                    let listening = (|| -> anyhow::Result<_> {
                        setns(&namespace, CloneFlags::CLONE_NEWNET).context("setns")?;
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?;
                        let listener =
                            runtime.block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
                        Ok((runtime, listener))
                    })();
                    let (runtime, listener) = match listening {
                        Ok(listening) => listening,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let port = listener.local_addr().map(|addr| addr.port());
                    let _ = ready_tx.send(port.map_err(anyhow::Error::from));
                    runtime.block_on(async {
                        tokio::select! {
                            _ = stopped => {}
                            () = serve(listener, delays) => {}
                        }
                    });
                    // Dropping the runtime here drops every relay, closing its sockets.
                }
            })
            .context("starting the delay proxy's thread")?;
        let port = ready_rx
            .recv()
            .context("the delay proxy's thread ended")?
            .with_context(|| format!("the delay proxy in {netns}"))?;
        Ok(Self {
            port,
            delays,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The loopback port the redirect sends connections to.
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// Connections to `server` wait `each_way` in each direction.
    pub(super) fn set(&self, server: Ipv4Addr, each_way: Duration) {
        lock(&self.delays).insert(server, each_way);
    }

    /// No delay any more, for the connections still open through the proxy too (new ones
    /// no longer come once the redirect is gone).
    pub(super) fn clear(&self) {
        lock(&self.delays).clear();
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(delays: &Delays) -> std::sync::MutexGuard<'_, HashMap<Ipv4Addr, Duration>> {
    delays.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts redirected connections and relays each, until the proxy is dropped.
async fn serve(listener: TcpListener, delays: Delays) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let delays = delays.clone();
                tokio::spawn(async move {
                    match relay(client, delays).await {
                        // How a connection ends when a process at either end is killed.
                        Err(error)
                            if matches!(
                                error.kind(),
                                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                            ) => {}
                        Err(error) => eprintln!("delay proxy: a connection ended: {error}"),
                        Ok(()) => {}
                    }
                });
            }
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                eprintln!("delay proxy: accept: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Connects to where `client` was going and carries both directions, delayed, until both
/// have ended; an error in either closes both connections.
async fn relay(client: TcpStream, delays: Delays) -> io::Result<()> {
    let original = SockRef::from(&client).original_dst_v4()?;
    let Some(server_addr) = original.as_socket_ipv4() else {
        return Err(io::Error::other("the original destination is not IPv4"));
    };
    let socket = TcpSocket::new_v4()?;
    SockRef::from(&socket).set_mark(MARK)?;
    let server = socket.connect(SocketAddr::V4(server_addr)).await?;
    // Chunks go out as soon as they are due, not when Nagle lets them.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let server_ip = *server_addr.ip();
    let delay = move || {
        lock(&delays)
            .get(&server_ip)
            .copied()
            .unwrap_or(Duration::ZERO)
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::try_join!(
        pipe(client_read, server_write, delay.clone()),
        pipe(server_read, client_write, delay),
    )?;
    Ok(())
}

/// One direction: a reader that stamps each chunk with when it is due (arrival + the
/// delay) and a writer that sends each when due, in order. The writer's wait for one chunk
/// overlaps the next ones' (they were stamped when they arrived), so the delay is added
/// once to each chunk rather than piling up. An end of stream goes through the same
/// queue, so the other side's shutdown is delayed like the data before it.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: impl Fn() -> Duration,
) -> io::Result<()> {
    let (queue, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_HELD);
    let reading = async move {
        let mut buffer = vec![0; CHUNK];
        loop {
            let read = from.read(&mut buffer).await?;
            let chunk = (Instant::now() + delay(), buffer[..read].to_vec());
            // A closed queue: the writer failed, and says why.
            if queue.send(chunk).await.is_err() || read == 0 {
                return Ok::<_, io::Error>(());
            }
        }
    };
    let writing = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if chunk.is_empty() {
                return to.shutdown().await;
            }
            to.write_all(&chunk).await?;
        }
        Ok(())
    };
    tokio::try_join!(reading, writing)?;
    Ok(())
}
