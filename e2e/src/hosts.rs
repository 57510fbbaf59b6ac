//! Test hosts on one machine: a network namespace per host, each with its own address on
//! a private bridge the test makes, so that traffic between two processes of a stack
//! crosses two veths and a bridge as it would cross a network, and can be cut there.
//!
//! The layout: a bridge `shb<tag>` in the root namespace holding `10.X.Y.1/24` (the
//! test's own address: the test process reaches every host through it), and one
//! namespace `shop-<tag>-<host>` per [`Host`] with a veth `eth0` on that bridge and
//! `10.X.Y.N/24`. A [`Stack`](crate::Stack) given the hosts
//! ([`StackOptions::hosts`](crate::StackOptions::hosts)) starts Postgres, NATS and each
//! binary inside its host's namespace ([`Place::command`]), serving on that host's address.
//!
//! Faults are iptables rules inside the namespaces (a partition drops every packet, a
//! lossy link a random share of them), always on the *receiving* side
//! (`INPUT -s SENDER -j DROP`): a dropped packet is lost silently, as on a real network,
//! where a rule on the sending side (`OUTPUT`) would fail the sender's `send` at once
//! with EPERM, which no network does. `tc netem` (delay, loss) is not in every kernel and
//! is not used: a delay is a forwarding proxy in the client host's namespace
//! ([`Hosts::delay`], `hosts/delay.rs`). Everything goes when [`Hosts`] is dropped, also
//! when a test panics: the proxies, the veths, the namespaces (and with them every
//! rule), the bridge.
//!
//! Over 400 lines with its tests: every fault is a pair of rules made and undone here, so
//! `heal` can be read against all of them at once (the delay proxy is `hosts/delay.rs`).

use std::{
    collections::{BTreeMap, btree_map::Entry},
    ffi::OsStr,
    net::{IpAddr, Ipv4Addr},
    process::Command,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::svc::Svc;

mod delay;

use delay::DelayProxy;

/// A host of the layout: Postgres's, the broker's, one service's, or the second
/// orchestrator replica's ([`crate::Stack::start_replica`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    Postgres,
    Nats,
    Svc(Svc),
    Replica,
}

impl Host {
    /// Every host, each made by [`Hosts::create`].
    pub const ALL: [Host; 8] = [
        Host::Postgres,
        Host::Nats,
        Host::Svc(Svc::Order),
        Host::Svc(Svc::Payment),
        Host::Svc(Svc::Inventory),
        Host::Svc(Svc::Shipping),
        Host::Svc(Svc::Orchestrator),
        Host::Replica,
    ];

    /// The host's name, in its namespace's name and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Host::Postgres => "postgres",
            Host::Nats => "nats",
            Host::Svc(svc) => svc.binary(),
            Host::Replica => "replica",
        }
    }

    /// The last byte of its address (the bridge is `.1`).
    fn octet(self) -> u8 {
        match self {
            Host::Postgres => 2,
            Host::Nats => 3,
            Host::Svc(Svc::Order) => 11,
            Host::Svc(Svc::Payment) => 12,
            Host::Svc(Svc::Inventory) => 13,
            Host::Svc(Svc::Shipping) => 14,
            Host::Svc(Svc::Orchestrator) => 10,
            Host::Replica => 15,
        }
    }
}

impl From<Svc> for Host {
    fn from(svc: Svc) -> Self {
        Host::Svc(svc)
    }
}

/// Where a process runs: the address it serves on and, for a test host, the network
/// namespace it is started in. The default is this machine's loopback, as every stack
/// ran before there were hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub ip: IpAddr,
    /// `ip netns` name; `None`: the namespace of the test itself.
    pub netns: Option<String>,
}

impl Default for Place {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            netns: None,
        }
    }
}

impl Place {
    /// A command that runs `program` here: through `ip netns exec NAME` on a test host
    /// (which sets the namespace and then execs `program`, so the child's pid is the
    /// program's own and a kill reaches it), as is elsewhere.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(program);
                command
            }
        }
    }
}

/// The namespaces, veths and bridge of one test, and the faults between them.
#[derive(Debug)]
pub struct Hosts {
    tag: String,
    subnet: [u8; 3],
    bridge: String,
    /// Each host's namespace and its root-side veth.
    hosts: BTreeMap<Host, (String, String)>,
    /// The delay proxy of each host that has delayed connections ([`Hosts::delay`]),
    /// started on its first delay and kept until the hosts are dropped: connections
    /// opened through it stay on it after a heal (without delay).
    proxies: Mutex<BTreeMap<Host, DelayProxy>>,
}

impl Hosts {
    /// Makes the bridge and one namespace per host of [`Host::ALL`]. `Ok(None)`, after
    /// printing why, where this machine cannot: not root, no `ip` or `iptables`, or
    /// namespaces refused (an unprivileged container); the caller skips its test then.
    pub fn create() -> anyhow::Result<Option<Self>> {
        if let Err(why) = usable() {
            eprintln!("skipped: test hosts need network namespaces, and {why}");
            return Ok(None);
        }
        let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
        let mut hosts = Self {
            bridge: format!("shb{tag}"),
            subnet: free_subnet()?,
            tag,
            hosts: BTreeMap::new(),
            proxies: Mutex::default(),
        };
        // The first namespace is the probe: refused here means refused everywhere.
        let first = hosts.netns(Host::Postgres);
        if let Err(error) = ip(&["netns", "add", &first]) {
            eprintln!("skipped: cannot make a network namespace here: {error:#}");
            return Ok(None);
        }
        let _ = ip(&["netns", "del", &first]);
        // From here on a failure is the harness's, and `hosts` cleans up what was made.
        let bridge = hosts.bridge.clone();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", hosts.bridge_ip()),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for (index, host) in Host::ALL.into_iter().enumerate() {
            let netns = hosts.netns(host);
            let veth = format!("shv{}{index}", hosts.tag);
            ip(&["netns", "add", &netns])?;
            hosts.hosts.insert(host, (netns.clone(), veth.clone()));
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            let address = format!("{}/24", hosts.ip(host));
            ip(&["-n", &netns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        }
        Ok(Some(hosts))
    }

    fn netns(&self, host: Host) -> String {
        format!("shop-{}-{}", self.tag, host.name())
    }

    /// The test's own address on the bridge (the root namespace's).
    pub fn bridge_ip(&self) -> IpAddr {
        let [a, b, c] = self.subnet;
        IpAddr::V4(Ipv4Addr::new(a, b, c, 1))
    }

    /// A host's address.
    pub fn ip(&self, host: Host) -> IpAddr {
        let [a, b, c] = self.subnet;
        IpAddr::V4(Ipv4Addr::new(a, b, c, host.octet()))
    }

    /// Where a process of `host` runs.
    pub fn place(&self, host: Host) -> Place {
        Place {
            ip: self.ip(host),
            netns: Some(self.netns(host)),
        }
    }

    /// Packets from `from` to `to` are lost; the other way still goes. A TCP connection
    /// across it can still carry what `to` sends, but nothing `from` sends arrives (not
    /// even the ACKs of what `to` sent, so `to` keeps resending).
    pub fn partition_one_way(&self, from: Host, to: Host) -> anyhow::Result<()> {
        let source = self.ip(from).to_string();
        self.iptables(to, &["-I", "INPUT", "-s", &source, "-j", "DROP"])
    }

    /// A lossy link: each packet from `a` to `b`, and from `b` to `a`, is lost with
    /// `probability` (iptables' `statistic` match, drawn per packet). TCP resends what is
    /// lost, so calls arrive late rather than not at all. Only packets that cross the
    /// link (`-i eth0`) are drawn: with a [delay](Self::delay) on it too, the proxy's
    /// answers to its client cross loopback with the server's address as their source,
    /// and must not be drawn a second time.
    pub fn lossy(&self, a: Host, b: Host, probability: f64) -> anyhow::Result<()> {
        let chance = format!("{probability:.4}");
        for (from, to) in [(a, b), (b, a)] {
            let source = self.ip(from).to_string();
            let rule = [
                "-I",
                "INPUT",
                "-i",
                "eth0",
                "-s",
                &source,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &chance,
                "-j",
                "DROP",
            ];
            self.iptables(to, &rule)?;
        }
        Ok(())
    }

    /// `a` and `b` lose every packet to each other; each still reaches everyone else.
    pub fn partition(&self, a: Host, b: Host) -> anyhow::Result<()> {
        self.partition_one_way(a, b)?;
        self.partition_one_way(b, a)
    }

    /// `host` loses every packet from anyone (the test included), and every other host
    /// loses the packets `host` sends: cut off from everything, still running.
    pub fn isolate(&self, host: Host) -> anyhow::Result<()> {
        self.iptables(host, &["-I", "INPUT", "-i", "eth0", "-j", "DROP"])?;
        for other in Host::ALL.into_iter().filter(|other| *other != host) {
            self.partition_one_way(host, other)?;
        }
        Ok(())
    }

    /// A slow link: every TCP connection `client` opens to `server` from now on carries
    /// each chunk `each_way` late in each direction (a request/answer round trip takes
    /// 2 × `each_way` longer). Connections already open are not touched (the redirect
    /// below applies to a connection's first packet), so delay a link before the stack
    /// that uses it starts, or before its connections are made.
    ///
    /// Made without netem: an iptables `nat OUTPUT` REDIRECT in `client`'s namespace
    /// sends those connections to a forwarding proxy there (`hosts/delay.rs`: what that
    /// changes compared with a delay per packet), which finds the real destination with
    /// `SO_ORIGINAL_DST`, so addresses, ports and TLS names are unchanged. Only the
    /// connections `client` opens are delayed: those `server` opens to `client` would need
    /// a rule on `server`'s side (`delay(server, client, ...)`).
    pub fn delay(&self, client: Host, server: Host, each_way: Duration) -> anyhow::Result<()> {
        let IpAddr::V4(server_ip) = self.ip(server) else {
            bail!("the test hosts are IPv4");
        };
        let mut proxies = self.proxies.lock().unwrap_or_else(PoisonError::into_inner);
        let proxy = match proxies.entry(client) {
            Entry::Occupied(started) => started.into_mut(),
            Entry::Vacant(first) => first.insert(DelayProxy::start(&self.hosts[&client].0)?),
        };
        proxy.set(server_ip, each_way);
        let (destination, port) = (server_ip.to_string(), proxy.port().to_string());
        let skip_own = format!("{:#x}", delay::MARK);
        let rule = [
            "-t",
            "nat",
            "-I",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            &destination,
            "-m",
            "mark",
            "!",
            "--mark",
            &skip_own,
            "-j",
            "REDIRECT",
            "--to-ports",
            &port,
        ];
        self.iptables(client, &rule)
    }

    /// Every fault gone: the rules of every host flushed, and every delay lifted.
    /// Connections that were cut are not reset; they resume when TCP next resends.
    /// Connections made through a delay proxy stay on it, without delay; new ones go
    /// straight.
    pub fn heal(&self) -> anyhow::Result<()> {
        for host in Host::ALL {
            self.iptables(host, &["-F", "INPUT"])?;
        }
        let proxies = self.proxies.lock().unwrap_or_else(PoisonError::into_inner);
        for (host, proxy) in proxies.iter() {
            self.iptables(*host, &["-t", "nat", "-F", "OUTPUT"])?;
            proxy.clear();
        }
        Ok(())
    }

    /// `iptables -w ARGS` inside `host`'s namespace.
    fn iptables(&self, host: Host, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["netns", "exec"];
        all.push(&self.hosts[&host].0);
        all.extend(["iptables", "-w"]);
        all.extend(args);
        ip(&all).with_context(|| format!("a rule on {}", host.name()))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // The proxies first: their threads and sockets are inside the namespaces.
        self.proxies
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        // The root-side veth first: a namespace is torn down by the kernel some time
        // after `ip netns del` returns, its veth pair with it, so deleting the pair here
        // makes the cleanup finished when this returns.
        for (netns, veth) in self.hosts.values() {
            let _ = ip(&["link", "del", veth]);
            let _ = ip(&["netns", "del", netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Why this machine cannot make test hosts, if it cannot.
fn usable() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("this test does not run as root".into());
    }
    for tool in ["ip", "iptables"] {
        let found = Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success());
        if !found {
            return Err(format!(
                "`{tool}` is missing (Debian: apt-get install iproute2 iptables)"
            ));
        }
    }
    Ok(())
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A /24 in 10.160.0.0/11 that no route of this machine overlaps: picked at random, so
/// that tests running at once (each with hosts of its own) rarely pick the same, and a
/// clash with another's bridge address fails `ip addr add` rather than mixing them up.
fn free_subnet() -> anyhow::Result<[u8; 3]> {
    let output = Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .context("running ip route")?;
    let routes = String::from_utf8_lossy(&output.stdout);
    let taken: Vec<(u32, u32)> = routes
        .lines()
        .filter(|line| !line.starts_with("default"))
        .filter_map(|line| line.split_whitespace().find_map(parse_cidr))
        .collect();
    for _ in 0..100 {
        let random = uuid::Uuid::new_v4().as_u128();
        let (b, c) = (160 + (random % 64) as u8, ((random >> 8) % 256) as u8);
        let net = u32::from(Ipv4Addr::new(10, b, c, 0));
        let overlaps = taken.iter().any(|(other, len)| {
            let mask = |len: u32| u32::MAX.checked_shl(32 - len).unwrap_or(0);
            let shorter = mask((*len).min(24));
            net & shorter == other & shorter
        });
        if !overlaps {
            return Ok([10, b, c]);
        }
    }
    bail!("no free /24 in 10.160.0.0/11 for the test hosts")
}

/// `A.B.C.D/LEN` or `A.B.C.D` as (address, prefix length). A route's first such word is
/// its destination (`local 127.0.0.1 ...`, `10.88.0.0/16 dev ...`); the default route is
/// left out by the caller, since it takes nothing.
fn parse_cidr(word: &str) -> Option<(u32, u32)> {
    let (address, len) = word.split_once('/').unwrap_or((word, "32"));
    let address: Ipv4Addr = address.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    (len > 0 && len <= 32).then_some((u32::from(address), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_as_prefixes() {
        assert_eq!(
            parse_cidr("10.88.0.0/16"),
            Some((u32::from(Ipv4Addr::new(10, 88, 0, 0)), 16))
        );
        assert_eq!(
            parse_cidr("192.168.1.7"),
            Some((u32::from(Ipv4Addr::new(192, 168, 1, 7)), 32))
        );
        assert_eq!(parse_cidr("0.0.0.0/0"), None);
        assert_eq!(parse_cidr("dev"), None);
    }

    #[test]
    fn a_place_outside_any_namespace_runs_the_program_itself() {
        let place = Place::default();
        assert_eq!(place.command("true").get_program(), "true");
        let inside = Place {
            ip: IpAddr::V4(Ipv4Addr::new(10, 160, 0, 2)),
            netns: Some("shop-x-postgres".into()),
        };
        let command = inside.command("postgres");
        assert_eq!(command.get_program(), "ip");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["netns", "exec", "shop-x-postgres", "postgres"]);
    }
}
