//! The chaos run: load with injected faults (transient errors, late successes past the
//! attempt timeout) while the orchestrator is killed with SIGKILL and restarted, the
//! stack's own Postgres is restarted, the broker is killed and restarted on its store,
//! and two random hosts are partitioned (the stack then spread over network namespaces,
//! `e2e::hosts`), then the checker. Correctness, not speed: the
//! verdict must list no violation, and nothing may stay unfinished.
//!
//! Over 400 lines with its tests: every fault the run injects and its schedule, read
//! together.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use e2e::{
    Stack, StackOptions, Svc,
    clients::Clients,
    hosts::{Host, Hosts},
};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::{
    check::{self, CheckConfig, Verdict},
    interrupt::Stop,
    load::{self, LoadConfig, Mix, Report},
    progress::{self, Live, Planned},
};

/// How long a run without a duration or a count lasts.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(20);

/// How hard to push, and for how long: `duration`, `count` or both (whichever ends
/// first); neither is [`DEFAULT_DURATION`].
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub concurrency: usize,
    /// Share of requests with a transient charge failure.
    pub transient: f64,
    /// Share of requests with a reservation that succeeds after the attempt timeout.
    pub late: f64,
    /// Kill the orchestrator this many times during the run.
    pub kills: u32,
    /// Restart the stack's Postgres this many times during the run (the stack then starts
    /// a cluster of its own rather than use a shared server).
    pub postgres_restarts: u32,
    /// Kill the broker this many times during the run, each restarted on its store after
    /// [`BROKER_DOWN`].
    pub broker_kills: u32,
    /// Partition two random hosts this many times during the run, for
    /// [`PARTITION_FOR`] each (the stack then runs across network namespaces).
    pub partitions: u32,
    pub modes: load::Modes,
    /// How long the checker waits for unfinished checkouts.
    pub wait: Duration,
    /// Checkouts the checker checks at once.
    pub check_concurrency: usize,
    /// Draw the progress line on stderr.
    pub progress: bool,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            duration: None,
            count: None,
            concurrency: 16,
            transient: 0.2,
            late: 0.1,
            kills: 2,
            postgres_restarts: 0,
            broker_kills: 0,
            partitions: 0,
            modes: load::Modes::Both,
            wait: Duration::from_secs(60),
            check_concurrency: check::DEFAULT_CONCURRENCY,
            progress: false,
        }
    }
}

impl ChaosConfig {
    /// The faults this run plans.
    fn planned(&self) -> Planned {
        Planned {
            kills: self.kills,
            postgres_restarts: self.postgres_restarts,
            broker_kills: self.broker_kills,
            partitions: self.partitions,
        }
    }

    /// The run's length settled once, so the load and the fault schedule measure the same
    /// run: neither a duration nor a count is [`DEFAULT_DURATION`].
    fn resolved(&self) -> Self {
        Self {
            duration: self
                .duration
                .or(self.count.is_none().then_some(DEFAULT_DURATION)),
            ..self.clone()
        }
    }
}

/// Everything a chaos run found: the load's report, the faults done, how long the system
/// took to settle after the last one, and the checker's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub load: Report,
    pub kills: Faults,
    pub postgres_restarts: Faults,
    pub broker_kills: Faults,
    pub partitions: Faults,
    /// Seconds from the start of the load to the end of the last fault (the restarted
    /// process serving again).
    pub last_fault_at_s: Option<f64>,
    /// Seconds from the end of the last fault (else of the load) until every checkout had
    /// ended; none if some never did.
    pub drained_after_s: Option<f64>,
    /// Marked `partial` when the run was interrupted (SIGINT/SIGTERM): what was made and
    /// checked so far.
    pub verdict: Verdict,
    /// Wall time of the whole run: stack start, load, check.
    pub wall_s: f64,
}

/// Faults of one kind: planned and done.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Faults {
    pub planned: u32,
    pub done: u32,
}

impl ChaosReport {
    /// The human-readable form: the load's report, the faults, the verdict.
    pub fn render(&self) -> String {
        let mut text = self.load.render();
        text.push_str(&format!(
            "faults: orchestrator kills {}/{}, postgres restarts {}/{}, broker kills {}/{}, \
             partitions {}/{}",
            self.kills.done,
            self.kills.planned,
            self.postgres_restarts.done,
            self.postgres_restarts.planned,
            self.broker_kills.done,
            self.broker_kills.planned,
            self.partitions.done,
            self.partitions.planned
        ));
        if let Some(at) = self.last_fault_at_s {
            text.push_str(&format!(", last at {at:.1} s"));
        }
        let drained = self
            .drained_after_s
            .map_or("never".to_owned(), |s| format!("{s:.1} s"));
        text.push_str(&format!(
            "\ndrained (every checkout ended) after the last fault: {drained}\n"
        ));
        text.push_str(&self.verdict.render());
        text.push_str(&format!("wall time {:.1} s\n", self.wall_s));
        if self.verdict.partial {
            text.push_str("PARTIAL: interrupted before the end\n");
        }
        text
    }
}

/// The orchestrator's knobs for chaos: short timeouts and lease so it all fits in seconds.
fn orchestrator_env() -> Vec<(String, String)> {
    [
        ("ATTEMPT_TIMEOUT", "300ms"),
        ("STEP_DEADLINE", "3s"),
        ("RETRY_BACKOFF_BASE", "20ms"),
        ("RETRY_BACKOFF_MAX", "200ms"),
        ("SAGA_LEASE", "2s"),
        ("RECOVERY_INTERVAL", "300ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// How long a killed broker stays down: long enough for every binary to notice and for
/// events to pile up in the outboxes.
pub const BROKER_DOWN: Duration = Duration::from_secs(2);

/// How long a partition lasts.
pub const PARTITION_FOR: Duration = Duration::from_secs(3);

/// The hosts a partition may cut apart: Postgres, the broker and every binary.
const PARTITIONED: [Host; 7] = [
    Host::Postgres,
    Host::Nats,
    Host::Svc(Svc::Order),
    Host::Svc(Svc::Payment),
    Host::Svc(Svc::Inventory),
    Host::Svc(Svc::Shipping),
    Host::Svc(Svc::Orchestrator),
];

/// The two hosts the `n`th partition cuts apart: drawn, the same every run.
fn partitioned(n: u64) -> (Host, Host) {
    let count = PARTITIONED.len();
    let pick = |salt| (load::unit(n, salt) * count as f64) as usize % count;
    let a = pick(11);
    let b = (a + 1 + pick(13) % (count - 1)) % count;
    (PARTITIONED[a], PARTITIONED[b])
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    KillOrchestrator,
    RestartPostgres,
    KillBroker,
    Partition,
}

/// `n` faults of each kind spread evenly over the run: at 1/(n+1), 2/(n+1)… of it, as
/// shares of the run's length (its duration, or its count of checkouts).
fn schedule(planned: Planned) -> Vec<(f64, Fault)> {
    let spread =
        |n: u32, fault: Fault| (1..=n).map(move |i| (f64::from(i) / f64::from(n + 1), fault));
    let mut all: Vec<_> = spread(planned.kills, Fault::KillOrchestrator)
        .chain(spread(planned.postgres_restarts, Fault::RestartPostgres))
        .chain(spread(planned.broker_kills, Fault::KillBroker))
        .chain(spread(planned.partitions, Fault::Partition))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all
}

/// How far the run is, from 0 to 1: the larger of time and checkouts made.
fn share_done(config: &ChaosConfig, elapsed: Duration, made: u64) -> f64 {
    let by_time = config
        .duration
        .map_or(0.0, |d| elapsed.as_secs_f64() / d.as_secs_f64().max(0.001));
    let by_count = config
        .count
        .map_or(0.0, |n| made as f64 / (n.max(1)) as f64);
    by_time.max(by_count)
}

/// Fires the schedule's faults as the run reaches them, until all are done, the load
/// has ended or the run is stopped; returns when the last fault ended.
async fn inject(
    stack: Arc<Mutex<Stack>>,
    hosts: Option<Arc<Hosts>>,
    config: ChaosConfig,
    live: Arc<Live>,
    load_over: Arc<AtomicBool>,
    stop: Stop,
) -> anyhow::Result<Option<Instant>> {
    let started = Instant::now();
    let mut last = None;
    for (at, fault) in schedule(config.planned()) {
        while share_done(
            &config,
            started.elapsed(),
            live.made.load(Ordering::Relaxed),
        ) < at
        {
            if load_over.load(Ordering::Relaxed) || stop.is_stopped() {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut stack = stack.lock().await;
        match fault {
            Fault::KillOrchestrator => {
                stack.kill(Svc::Orchestrator);
                tokio::time::sleep(Duration::from_millis(200)).await;
                stack.restart(Svc::Orchestrator).await?;
                live.kills.fetch_add(1, Ordering::Relaxed);
            }
            Fault::RestartPostgres => {
                stack.restart_postgres().await?;
                live.postgres_restarts.fetch_add(1, Ordering::Relaxed);
            }
            Fault::KillBroker => {
                stack.kill_nats()?;
                tokio::time::sleep(BROKER_DOWN).await;
                stack.restart_nats().await?;
                live.broker_kills.fetch_add(1, Ordering::Relaxed);
            }
            Fault::Partition => {
                let hosts = hosts
                    .as_ref()
                    .context("a partition needs the stack on test hosts")?;
                let n = u64::from(live.partitions.load(Ordering::Relaxed));
                let (a, b) = partitioned(n);
                hosts.partition(a, b)?;
                tokio::time::sleep(PARTITION_FOR).await;
                hosts.heal()?;
                live.partitions.fetch_add(1, Ordering::Relaxed);
            }
        }
        last = Some(Instant::now());
    }
    Ok(last)
}

/// Starts a stack with faults on, runs the load with kills and Postgres restarts, and
/// checks the result; when `stop` is set, reports what it has, marked partial.
pub async fn run(config: &ChaosConfig, stop: &Stop) -> anyhow::Result<ChaosReport> {
    let started = Instant::now();
    let config = &config.resolved();
    let hosts = if config.partitions > 0 {
        let hosts = Hosts::create()?.context(
            "--partitions runs the stack across network namespaces: run as root with `ip` \
             and `iptables` (scripts/deps.sh netns installs them)",
        )?;
        Some(Arc::new(hosts))
    } else {
        None
    };
    let stack = Stack::start(StackOptions {
        fault_injection: true,
        orchestrator_env: orchestrator_env(),
        own_postgres: config.postgres_restarts > 0,
        hosts: hosts.clone(),
        ..StackOptions::default()
    })
    .await?;
    let mut clients = Clients::of(&stack);
    let mut state = load::setup(&mut clients, "chaos").await?;
    let live = Arc::new(Live::default());
    let planned = config.planned();
    let ticker = config
        .progress
        .then(|| progress::show(live.clone(), planned, Instant::now()));
    let stack = Arc::new(Mutex::new(stack));
    let load_over = Arc::new(AtomicBool::new(false));
    let injector = tokio::spawn(inject(
        stack.clone(),
        hosts,
        config.clone(),
        live.clone(),
        load_over.clone(),
        stop.clone(),
    ));
    live.set_phase("load");
    let load = LoadConfig {
        run_id: "chaos".into(),
        concurrency: config.concurrency,
        rate: None,
        duration: config.duration,
        count: config.count,
        mix: Mix {
            declined: 0.1,
            out_of_stock: 0.1,
            undeliverable: 0.1,
            transient: config.transient,
            late: config.late,
            late_ms: 400,
            modes: config.modes,
        },
        deadline: Duration::from_secs(5),
        retry_unavailable: true,
        progress: false,
        live: live.clone(),
        stop: stop.clone(),
    };
    let load_started = Instant::now();
    let report = load::run(&clients, &load, &mut state).await?;
    let load_ended = Instant::now();
    load_over.store(true, Ordering::Relaxed);
    live.set_phase("waiting for the last fault");
    let last_fault = injector.await??;
    let check_started = Instant::now();
    let verdict = if stop.is_stopped() {
        Verdict {
            partial: true,
            ..Verdict::default()
        }
    } else {
        check::check(
            &mut clients,
            &state,
            &CheckConfig {
                wait: config.wait,
                concurrency: config.check_concurrency,
            },
            &live,
            stop,
        )
        .await?
    };
    drop(ticker);
    let drained_after_s = verdict.settled_after_s.map(|after| {
        let settled = check_started + Duration::from_secs_f64(after);
        let calm_since = last_fault.unwrap_or(load_ended);
        settled.saturating_duration_since(calm_since).as_secs_f64()
    });
    let kills_done = live.kills.load(Ordering::Relaxed);
    let restarts_done = live.postgres_restarts.load(Ordering::Relaxed);
    let broker_kills_done = live.broker_kills.load(Ordering::Relaxed);
    let partitions_done = live.partitions.load(Ordering::Relaxed);
    drop(stack);
    Ok(ChaosReport {
        load: report,
        kills: Faults {
            planned: config.kills,
            done: kills_done,
        },
        postgres_restarts: Faults {
            planned: config.postgres_restarts,
            done: restarts_done,
        },
        broker_kills: Faults {
            planned: config.broker_kills,
            done: broker_kills_done,
        },
        partitions: Faults {
            planned: config.partitions,
            done: partitions_done,
        },
        last_fault_at_s: last_fault.map(|at| (at - load_started).as_secs_f64()),
        drained_after_s,
        verdict,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_spread_evenly_and_interleaved() {
        let plan = schedule(Planned {
            kills: 3,
            postgres_restarts: 1,
            broker_kills: 1,
            partitions: 0,
        });
        let at: Vec<f64> = plan.iter().map(|(at, _)| *at).collect();
        assert_eq!(at, [0.25, 0.5, 0.5, 0.5, 0.75]);
        for fault in [Fault::RestartPostgres, Fault::KillBroker] {
            assert_eq!(plan.iter().filter(|(_, f)| *f == fault).count(), 1);
        }
        assert!(schedule(Planned::default()).is_empty());
    }

    #[test]
    fn each_partition_cuts_two_different_hosts_the_same_every_run() {
        let pairs: Vec<_> = (0..50).map(partitioned).collect();
        assert!(pairs.iter().all(|(a, b)| a != b), "{pairs:?}");
        assert_eq!(pairs, (0..50).map(partitioned).collect::<Vec<_>>());
        let distinct: std::collections::BTreeSet<_> = pairs.iter().collect();
        assert!(distinct.len() > 10, "drawn, not fixed: {distinct:?}");
    }

    #[test]
    fn the_run_is_as_far_as_its_time_or_its_count_says() {
        let config = ChaosConfig {
            duration: Some(Duration::from_secs(100)),
            count: Some(1000),
            ..ChaosConfig::default()
        };
        assert_eq!(share_done(&config, Duration::from_secs(10), 500), 0.5);
        assert_eq!(share_done(&config, Duration::from_secs(60), 500), 0.6);
        let counted = ChaosConfig {
            count: Some(1000),
            ..ChaosConfig::default()
        };
        assert_eq!(share_done(&counted, Duration::from_secs(600), 250), 0.25);
    }

    #[test]
    fn a_run_of_no_stated_length_schedules_its_faults_over_the_default() {
        let plain = ChaosConfig::default().resolved();
        assert_eq!(plain.duration, Some(DEFAULT_DURATION));
        assert_eq!(share_done(&plain, DEFAULT_DURATION / 2, 0), 0.5);
        let counted = ChaosConfig {
            count: Some(10),
            ..ChaosConfig::default()
        }
        .resolved();
        assert_eq!(counted.duration, None);
    }
}
