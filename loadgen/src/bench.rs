//! The benchmark: the saga's throughput and latency at several concurrencies on the
//! local stack, beside its floor (the same calls straight to the services, [`bare`]),
//! the machine's ceiling for this work, what a checkout costs the databases, and where a
//! checkout's time goes.
//!
//! The stack runs on a Postgres cluster of the benchmark's own, as durable as a
//! production server (`fsync` on, `synchronous_commit` on) and with `pg_stat_statements`
//! loaded to count statements ([`costs`]).
//!
//! Ceiling: pgbench `simple-update` TPS on the same Postgres, divided by the commits one
//! checkout makes across all five databases, next to the raw tonic unary round-trip rate
//! (health checks) on the same loopback.
//!
//! Over 400 lines: one sweep and its report (rates, latencies, per-database counters),
//! read together.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use e2e::{Stack, StackOptions, Svc, clients::Clients, postgres::Postgres};
use serde::Serialize;
use shop_proto::checkout::v1 as pb;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    bare,
    costs::{self, Costs},
    hops::{self, Hop},
    load::{self, LoadConfig, Mix, Report, RunState},
};

/// What the sweep measures.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub levels: Vec<usize>,
    pub seconds: u64,
    /// The coordination mode of every checkout of the sweep.
    pub modes: load::Modes,
}

/// Everything the benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The saga, one run per concurrency.
    pub runs: Vec<Report>,
    /// The floor at the same concurrencies: the same calls, no orchestrator.
    pub bare_runs: Vec<Report>,
    /// One checkout's commits, WAL flushes and statements (a batch at concurrency 8).
    pub costs: Costs,
    pub pgbench_tps: f64,
    pub ceiling_checkouts_per_sec: f64,
    pub tonic_unary_per_sec: f64,
    pub tonic_unary_p50_ms: f64,
    /// Mean milliseconds per saga step at concurrency 32 (or the last level).
    pub step_ms: BTreeMap<String, f64>,
    /// Each call of a checkout at the same level, as the orchestrator and the service
    /// timed it.
    pub hops: BTreeMap<String, Hop>,
    pub machine: String,
}

fn config(
    run_id: &str,
    modes: load::Modes,
    concurrency: usize,
    duration: Option<Duration>,
    count: Option<u64>,
) -> LoadConfig {
    let mix = Mix {
        modes,
        ..Mix::default()
    };
    LoadConfig::closed_loop(run_id, concurrency, duration, count, mix)
}

/// Runs the whole benchmark against a fresh stack of the binaries in `SHOP_BIN_DIR`.
pub async fn run(bench: &BenchConfig) -> anyhow::Result<Results> {
    let postgres = Arc::new(
        Postgres::start_own_with(&[
            ("fsync", "on"),
            ("shared_preload_libraries", "pg_stat_statements"),
        ])
        .await?,
    );
    let options = StackOptions {
        metrics: true,
        ..StackOptions::default()
    };
    let stack = Stack::start_on(postgres.clone(), options).await?;
    let mut clients = Clients::of(&stack);
    let services = bare::Services::of(&stack)?;
    let state = load::setup(&mut clients, "bench").await?;
    let level_state = |run_id: String| RunState {
        run_id,
        ..state.clone()
    };

    eprintln!("warming up...");
    let warm_up = |run_id: &str| config(run_id, bench.modes, 8, Some(Duration::from_secs(3)), None);
    load::run(
        &clients,
        &warm_up("bench-warm"),
        &mut level_state("bench-warm".into()),
    )
    .await?;
    load::run_bare(
        &services,
        &warm_up("bench-bare"),
        &mut level_state("bench-bare".into()),
    )
    .await?;

    eprintln!("counting what a checkout costs the databases...");
    let costs = count_costs(&postgres, &stack, &clients, &state, bench.modes).await?;
    eprintln!(
        "  {:.1} commits, {:.1} WAL flushes, {:.1} statements per checkout",
        costs.commits_total, costs.wal_flushes, costs.statements_total
    );

    let mut runs = Vec::new();
    let mut bare_runs = Vec::new();
    let mut step_ms = BTreeMap::new();
    let mut hop_ms = BTreeMap::new();
    for &level in &bench.levels {
        let measured = |run_id: &str| {
            config(
                run_id,
                bench.modes,
                level,
                Some(Duration::from_secs(bench.seconds)),
                None,
            )
        };
        let profiled = level == 32 || (step_ms.is_empty() && Some(&level) == bench.levels.last());
        eprintln!("concurrency {level}: the saga...");
        let run_id = format!("bench-c{level}");
        let before = hops::snapshot(&stack).await?;
        let report = load::run(
            &clients,
            &measured(&run_id),
            &mut level_state(run_id.clone()),
        )
        .await?;
        eprint!("{}", report.render());
        if profiled {
            hop_ms = hops::between(&before, &hops::snapshot(&stack).await?);
            step_ms = step_breakdown(&mut clients, &run_id).await?;
        }
        runs.push(report);

        eprintln!("concurrency {level}: the floor...");
        let run_id = format!("bare-c{level}");
        let report = load::run_bare(
            &services,
            &measured(&run_id),
            &mut level_state(run_id.clone()),
        )
        .await?;
        eprint!("{}", report.render());
        bare_runs.push(report);
    }

    eprintln!("measuring the raw tonic unary rate...");
    let (tonic_unary_per_sec, tonic_unary_p50_ms) =
        tonic_unary(&stack, 32, Duration::from_secs(5)).await?;
    drop(stack);
    eprintln!("measuring pgbench simple-update...");
    let pgbench_tps = pgbench(&postgres, 32, 10).await?;
    Ok(Results {
        runs,
        bare_runs,
        ceiling_checkouts_per_sec: pgbench_tps / costs.commits_total.max(1.0),
        costs,
        pgbench_tps,
        tonic_unary_per_sec,
        tonic_unary_p50_ms,
        step_ms,
        hops: hop_ms,
        machine: machine(),
    })
}

/// What one checkout costs: a batch of 200 at concurrency 8, counted by Postgres, less
/// what the idle stack does meanwhile.
async fn count_costs(
    postgres: &Postgres,
    stack: &Stack,
    clients: &Clients,
    state: &RunState,
    modes: load::Modes,
) -> anyhow::Result<Costs> {
    const CHECKOUTS: u64 = 200;
    costs::prepare(postgres).await?;
    let idle = costs::read(postgres, stack).await?;
    let start = costs::read(postgres, stack).await?;
    let mut counted = RunState {
        run_id: "bench-costs".into(),
        ..state.clone()
    };
    let report = load::run(
        clients,
        &config("bench-costs", modes, 8, None, Some(CHECKOUTS)),
        &mut counted,
    )
    .await?;
    if report.error_count() > 0 {
        bail!("errors while counting: {:?}", report.errors);
    }
    let end = costs::read(postgres, stack).await?;
    Ok(costs::per_checkout(&idle, &start, &end, CHECKOUTS))
}

/// Mean duration of each step over a run's checkouts, from the saga's own records.
async fn step_breakdown(
    clients: &mut Clients,
    run_id: &str,
) -> anyhow::Result<BTreeMap<String, f64>> {
    // Its newest 500, 100 a page (the most the shop serves).
    let mut checkouts = Vec::new();
    let mut page_token = String::new();
    while checkouts.len() < 500 {
        let page = clients
            .checkout
            .list_checkouts(pb::ListCheckoutsRequest {
                mode: pb::CoordinationMode::Unspecified.into(),
                page_size: 100,
                page_token,
                status: pb::CheckoutStatus::Completed.into(),
                customer_id: run_id.into(),
            })
            .await?
            .into_inner();
        checkouts.extend(page.checkouts);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    let ms = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .map(|t| t.seconds as f64 * 1000.0 + f64::from(t.nanos) / 1e6)
    };
    for checkout in &checkouts {
        let (Some(first), Some(last)) = (
            checkout.steps.first().and_then(|s| ms(&s.start_time)),
            ms(&checkout.update_time),
        ) else {
            continue;
        };
        let whole = sums
            .entry("(whole saga, first step to last write)".into())
            .or_default();
        whole.0 += last - first;
        whole.1 += 1;
        for step in &checkout.steps {
            if let (Some(start), Some(end)) = (ms(&step.start_time), ms(&step.end_time)) {
                let entry = sums.entry(step.name.clone()).or_default();
                entry.0 += end - start;
                entry.1 += 1;
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|(k, (sum, n))| (k, sum / f64::from(n.max(1))))
        .collect())
}

/// Health checks at `concurrency` over one channel: the bare cost of a tonic unary call.
async fn tonic_unary(
    stack: &Stack,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<(f64, f64)> {
    let channel = stack.channel(Svc::Inventory);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = HealthClient::new(channel.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < duration {
                    let t = Instant::now();
                    if client.check(HealthCheckRequest::default()).await.is_ok() {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await?);
    }
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    Ok((
        latencies.len() as f64 / started.elapsed().as_secs_f64(),
        p50,
    ))
}

/// pgbench simple-update TPS on a scratch database of the same server.
async fn pgbench(postgres: &Postgres, clients: u32, seconds: u32) -> anyhow::Result<f64> {
    let name = "bench_pgbench";
    postgres.drop_database(name).await?;
    let url = postgres.create_database(name).await?;
    let bin = pgbench_binary()
        .context("pgbench not found (Debian: apt-get install postgresql-contrib or postgresql)")?;
    let init = Command::new(&bin)
        .args(["-i", "-q", "-s", "10", &url])
        .output()?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let out = Command::new(&bin)
        .args([
            "-n",
            "-b",
            "simple-update",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            &url,
        ])
        .output()?;
    postgres.drop_database(name).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| {
            l.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no tps in pgbench output: {text}"))
}

fn pgbench_binary() -> Option<String> {
    let on_path = Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return Some("pgbench".into());
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .collect();
    dirs.sort();
    dirs.pop().map(|p| p.display().to_string())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

/// The Markdown tables of the sweep: the saga beside its floor, then what a checkout
/// costs the databases.
pub fn table(results: &Results) -> String {
    let mut text = String::from(
        "| concurrency | checkouts/s | p50 ms | p90 ms | p99 ms | max ms | errors | floor/s | floor p50 ms | floor p99 ms | of floor | p50 over floor ms | of ceiling |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (r, floor) in results.runs.iter().zip(&results.bare_runs) {
        let (l, f) = (&r.latency_ms, &floor.latency_ms);
        text.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.0} % | {:.1} | {:.0} % |\n",
            r.concurrency,
            r.throughput,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            r.error_count() + floor.error_count(),
            floor.throughput,
            f.p50,
            f.p99,
            100.0 * r.throughput / floor.throughput.max(f64::MIN_POSITIVE),
            l.p50 - f.p50,
            100.0 * r.throughput / results.ceiling_checkouts_per_sec
        ));
    }
    let c = &results.costs;
    text.push_str(&format!(
        "\nPer checkout: {:.1} commits, {:.1} WAL flushes (whole server), {:.1} statements \
         (idle stack: {:.1} statements/s, taken off).\n\n\
         | database | commits | statements |\n|---|---:|---:|\n",
        c.commits_total, c.wal_flushes, c.statements_total, c.idle_statements_per_sec
    ));
    for (database, commits) in &c.commits {
        let statements = c.statements.get(database).copied().unwrap_or_default();
        text.push_str(&format!(
            "| {database} | {commits:.1} | {statements:.1} |\n"
        ));
    }
    if !results.hops.is_empty() {
        text.push_str(
            "\n| call (c=32) | orchestrator ms | service ms | the hop ms |\n|---|---:|---:|---:|\n",
        );
        for (call, hop) in &results.hops {
            text.push_str(&format!(
                "| {call} | {:.2} | {:.2} | {:.2} |\n",
                hop.caller_ms,
                hop.server_ms,
                hop.caller_ms - hop.server_ms
            ));
        }
    }
    text
}

/// An SVG chart of throughput (left axis) and p99 (right axis) against concurrency.
pub fn plot(results: &Results) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 70.0, 70.0, 30.0, 50.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let n = results.runs.len().max(1);
    let max_tp = results
        .runs
        .iter()
        .chain(&results.bare_runs)
        .map(|r| r.throughput)
        .fold(1.0, f64::max)
        * 1.15;
    let max_p99 = results
        .runs
        .iter()
        .map(|r| r.latency_ms.p99)
        .fold(1.0, f64::max)
        * 1.15;
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / n as f64;
    let y_tp = |v: f64| top + plot_h * (1.0 - v / max_tp);
    let y_p99 = |v: f64| top + plot_h * (1.0 - v / max_p99);
    let line = |points: Vec<(f64, f64)>| {
        points
            .iter()
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let tp: Vec<_> = results
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| (x(i), y_tp(r.throughput)))
        .collect();
    let floor: Vec<_> = results
        .bare_runs
        .iter()
        .enumerate()
        .map(|(i, r)| (x(i), y_tp(r.throughput)))
        .collect();
    let p99: Vec<_> = results
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| (x(i), y_p99(r.latency_ms.p99)))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Checkout throughput (saga, and its floor in green) and p99 latency by concurrency</text>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{}\" y1=\"{top}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        top + plot_h,
        w - right,
        w - right,
        top + plot_h,
        top + plot_h,
        w - right,
        top + plot_h
    );
    for k in 0..=4 {
        let f = f64::from(k) / 4.0;
        let yy = top + plot_h * (1.0 - f);
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{yy:.1}\" text-anchor=\"end\" fill=\"#1f77b4\">{:.0}</text>\n<text x=\"{}\" y=\"{yy:.1}\" fill=\"#d62728\">{:.0}</text>\n<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\n",
            left - 6.0, max_tp * f, w - right + 6.0, max_p99 * f, w - right
        ));
    }
    for (i, r) in results.runs.iter().enumerate() {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            top + plot_h + 18.0,
            r.concurrency
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">concurrency (in-flight PlaceOrder calls)</text>\n\
         <text x=\"16\" y=\"{}\" fill=\"#1f77b4\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">checkouts/s</text>\n\
         <text x=\"{}\" y=\"{}\" fill=\"#d62728\" transform=\"rotate(90 {} {})\" text-anchor=\"middle\">p99 ms</text>\n\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n",
        left + plot_w / 2.0, h - 12.0, top + plot_h / 2.0, top + plot_h / 2.0,
        w - 16.0, top + plot_h / 2.0, w - 16.0, top + plot_h / 2.0,
        line(tp.clone()), line(p99.clone())
    ));
    svg.push_str(&format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\"/>\n",
        line(floor)
    ));
    for ((tx, ty), (px, py)) in tp.iter().zip(&p99) {
        svg.push_str(&format!(
            "<circle cx=\"{tx:.1}\" cy=\"{ty:.1}\" r=\"4\" fill=\"#1f77b4\"/><circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"#d62728\"/>\n"
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
