//! Free ports on the loopback interface for the servers a test harness starts (the e2e
//! stack, its Postgres and NATS, `testing::TestNats`): chosen once, below the
//! ephemeral range, so that a server restarted on its port finds it still free and comes
//! back at the same address.

use std::{
    net::TcpListener,
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// Ports handed out to the servers a test starts: below Linux's ephemeral range
/// (`ip_local_port_range`, 32768–60999 by default). A port the kernel picked for
/// `bind(0)` comes from the ephemeral range, which every outgoing connection of every
/// parallel test (to Postgres, NATS, the services) also draws from: between the probe
/// and the service's own bind, one of those connections could take it, and the service
/// would exit with "address in use". Nothing takes a port from this range on its own.
const RANGE: std::ops::Range<u32> = 20_000..32_000;

/// The next candidate, walked in order from a start that differs per process, so test
/// binaries that overlap in time (and the stacks of one binary) rarely probe the same
/// ports.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A free TCP port on 127.0.0.1 outside the ephemeral range, checked by binding it.
pub fn free_port() -> std::io::Result<u16> {
    let span = RANGE.end - RANGE.start;
    let _ = NEXT.compare_exchange(
        u32::MAX,
        process_seed() % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = u16::try_from(RANGE.start + offset).expect("the range is below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn process_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    std::process::id().wrapping_mul(7919).wrapping_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_distinct_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        for port in &ports {
            assert!(RANGE.contains(&u32::from(*port)), "{port}");
            TcpListener::bind(("127.0.0.1", *port)).unwrap();
        }
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len());
    }
}
