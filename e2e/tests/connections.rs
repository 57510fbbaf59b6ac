//! Idle connections from outside: thousands of clients connect to a real service and then
//! say nothing, some over plain TCP (they never begin the TLS handshake) and some after a
//! completed handshake. The service closes each once its silence outlasts the preface or
//! idle timeout (`CONNECTION_IDLE_TIMEOUT`, 2 s here), and its descriptors come back. Its
//! resident memory is measured and printed before, at the peak and after: the allocator
//! need not hand freed memory back to the system, so that is reported, not asserted.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::{Duration, Instant};

use e2e::{Stack, Svc, scenario::options};
use futures::future::join_all;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use platform::security::Security;
use rustls_pki_types::ServerName;
use tokio::{io::AsyncReadExt, net::TcpStream};

/// Connections that never begin the TLS handshake, and connections that complete it (a
/// debug build's handshake costs both sides milliseconds of CPU: these are made 20 at a
/// time, so that none waits out the server's handshake timeout on a 2-core machine).
const PLAIN: usize = 2_800;
const TLS: usize = 200;

/// Descriptors `pid` holds open.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// `pid`'s resident memory, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Reads until the server ends the connection (EOF or a reset), at most `within`.
async fn ended_within(mut stream: impl tokio::io::AsyncRead + Unpin, within: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test]
async fn thousands_of_silent_connections_are_closed_and_their_descriptors_come_back() {
    // This process holds every client end, and the services inherit its limit.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let wanted = 16_384.min(hard);
    if wanted < 8_192 {
        eprintln!(
            "skipped: the descriptor limit ({hard}) is too low for {PLAIN} + {TLS} connections"
        );
        return;
    }
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
    let mut options = options();
    options
        .env
        .push(("CONNECTION_IDLE_TIMEOUT".into(), "2s".into()));
    let stack = Stack::start(options).await.unwrap();
    let Security::Tls(tls) = stack.security() else {
        panic!("the stack runs over TLS")
    };
    let pid = stack.pid(Svc::Payment).unwrap();
    let addr = stack.addr(Svc::Payment);
    let (fds_before, rss_before) = (descriptors(pid), rss_mib(pid));

    let opened = Instant::now();
    let (peak_tx, peak) = tokio::sync::watch::channel(fds_before);
    let sampler = tokio::spawn(async move {
        loop {
            let now = descriptors(pid);
            peak_tx.send_if_modified(|peak| {
                let higher = now > *peak;
                *peak = (*peak).max(now);
                higher
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // All at once, as a flood. Some may overflow the kernel's accept backlog: such a
    // client believes itself connected (its last ACK was dropped) to a server that never
    // had it, so the server's side is what is checked for them: its descriptors.
    let plain: Vec<TcpStream> = join_all((0..PLAIN).map(|_| TcpStream::connect(addr)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_plain = *peak.borrow();
    let rss_plain = rss_mib(pid);
    eprintln!(
        "{PLAIN} plain connections opened in {:?}: descriptors {fds_before} -> {fds_plain} \
         at most, RSS {rss_before:.1} -> {rss_plain:.1} MiB",
        opened.elapsed()
    );
    assert!(
        fds_plain >= fds_before + PLAIN / 2,
        "the service held the connections ({fds_before} -> {fds_plain})"
    );
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = ServerName::try_from(Svc::Payment.principal().name())
        .unwrap()
        .to_owned();
    let mut secured = Vec::with_capacity(TLS);
    for _ in 0..TLS / 20 {
        let batch = join_all((0..20).map(|_| async {
            let tcp = TcpStream::connect(addr).await?;
            connector.connect(name.clone(), tcp).await
        }))
        .await;
        secured.extend(batch.into_iter().map(Result::unwrap));
    }
    eprintln!(
        "{TLS} TLS connections opened by {:?}: RSS {:.1} MiB",
        opened.elapsed(),
        rss_mib(pid)
    );

    // Every connection that completed its handshake was the server's: each is closed.
    let within = Duration::from_secs(30);
    let tls_ended = join_all(secured.into_iter().map(|s| ended_within(s, within))).await;
    let closed = opened.elapsed();
    assert!(
        tls_ended.iter().all(|ended| *ended),
        "a silent TLS connection stayed open"
    );

    // The service lets go of them all: its descriptors come back to where they were.
    let mut fds_after = descriptors(pid);
    for _ in 0..300 {
        if fds_after <= fds_before + 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds_after = descriptors(pid);
    }
    sampler.abort();
    drop(plain);
    let rss_after = rss_mib(pid);
    eprintln!(
        "all closed by the service {closed:?} after opening: descriptors {fds_after}, RSS \
         {rss_after:.1} MiB"
    );
    assert!(
        fds_after <= fds_before + 8,
        "descriptors did not come back: {fds_before} before, {fds_after} after"
    );
}
