//! The benchmark: the saga's throughput and latency at several concurrencies on the
//! local stack, the machine's ceiling for this work, and where a checkout's time goes.
//!
//! Ceiling: pgbench `simple-update` TPS on the same Postgres, divided by the commits one
//! checkout makes across all five databases (counted from `pg_stat_database`), next to
//! the raw tonic unary round-trip rate (health checks) on the same loopback.

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
use sqlx::{Connection, PgConnection};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    interrupt::Stop,
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
    pub runs: Vec<Report>,
    pub commits_per_checkout: f64,
    pub pgbench_tps: f64,
    pub ceiling_checkouts_per_sec: f64,
    pub tonic_unary_per_sec: f64,
    pub tonic_unary_p50_ms: f64,
    /// Mean milliseconds per saga step at concurrency 32 (or the last level).
    pub step_ms: BTreeMap<String, f64>,
    pub machine: String,
}

fn config(
    run_id: &str,
    modes: load::Modes,
    concurrency: usize,
    duration: Option<Duration>,
    count: Option<u64>,
) -> LoadConfig {
    LoadConfig {
        run_id: run_id.into(),
        concurrency,
        rate: None,
        duration,
        count,
        mix: Mix {
            modes,
            ..Mix::default()
        },
        deadline: Duration::from_secs(10),
        retry_unavailable: false,
        progress: true,
        live: Default::default(),
        stop: Stop::default(),
    }
}

/// Runs the whole benchmark against a fresh stack of the binaries in `SHOP_BIN_DIR`.
pub async fn run(bench: &BenchConfig) -> anyhow::Result<Results> {
    let postgres = Arc::new(Postgres::find_or_start().await?);
    let stack = Stack::start_on(postgres.clone(), StackOptions::default()).await?;
    let mut clients = Clients::of(&stack);
    let mut state = load::setup(&mut clients, "bench").await?;

    eprintln!("warming up...");
    load::run(
        &clients,
        &config("bench", bench.modes, 8, Some(Duration::from_secs(3)), None),
        &mut state,
    )
    .await?;

    eprintln!("counting commits per checkout...");
    let commits_per_checkout =
        commits_per_checkout(&postgres, &stack, &clients, &mut state, bench.modes).await?;
    eprintln!("  {commits_per_checkout:.1} commits per checkout");

    let mut runs = Vec::new();
    let mut step_ms = BTreeMap::new();
    for &level in &bench.levels {
        eprintln!("concurrency {level}...");
        let run_id = format!("bench-c{level}");
        let mut level_state = RunState {
            run_id: run_id.clone(),
            ..state.clone()
        };
        let report = load::run(
            &clients,
            &config(
                &run_id,
                bench.modes,
                level,
                Some(Duration::from_secs(bench.seconds)),
                None,
            ),
            &mut level_state,
        )
        .await?;
        eprint!("{}", report.render());
        if level == 32 || (step_ms.is_empty() && Some(&level) == bench.levels.last()) {
            step_ms = step_breakdown(&mut clients, &run_id).await?;
        }
        runs.push(report);
    }

    eprintln!("measuring the raw tonic unary rate...");
    let (tonic_unary_per_sec, tonic_unary_p50_ms) =
        tonic_unary(&stack, 32, Duration::from_secs(5)).await?;
    drop(stack);
    eprintln!("measuring pgbench simple-update...");
    let pgbench_tps = pgbench(&postgres, 32, 10).await?;
    Ok(Results {
        runs,
        commits_per_checkout,
        pgbench_tps,
        ceiling_checkouts_per_sec: pgbench_tps / commits_per_checkout,
        tonic_unary_per_sec,
        tonic_unary_p50_ms,
        step_ms,
        machine: machine(),
    })
}

/// Sum of `xact_commit` over the five databases.
async fn commits(postgres: &Postgres, stack: &Stack) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect(&postgres.admin_url).await?;
    let mut total = 0;
    for svc in Svc::ALL {
        let url = stack.database_url(svc);
        let name = url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default();
        let n: i64 =
            sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
        total += n;
    }
    Ok(total)
}

/// Commits one checkout makes: the counter's growth over 200 checkouts. Postgres
/// publishes idle backends' counters after up to ~10 s, hence the waits.
async fn commits_per_checkout(
    postgres: &Postgres,
    stack: &Stack,
    clients: &Clients,
    state: &mut RunState,
    modes: load::Modes,
) -> anyhow::Result<f64> {
    const CHECKOUTS: u64 = 200;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = commits(postgres, stack).await?;
    let mut counted = RunState {
        run_id: "bench-commits".into(),
        ..state.clone()
    };
    let report = load::run(
        clients,
        &config("bench-commits", modes, 8, None, Some(CHECKOUTS)),
        &mut counted,
    )
    .await?;
    if report.error_count() > 0 {
        bail!("errors while counting commits: {:?}", report.errors);
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = commits(postgres, stack).await?;
    Ok((after - before) as f64 / CHECKOUTS as f64)
}

/// Mean duration of each step over a run's checkouts, from the saga's own records.
async fn step_breakdown(
    clients: &mut Clients,
    run_id: &str,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let page = clients
        .checkout
        .list_checkouts(pb::ListCheckoutsRequest {
            mode: pb::CoordinationMode::Unspecified.into(),
            page_size: 500,
            page_token: String::new(),
            status: pb::CheckoutStatus::Completed.into(),
            customer_id: run_id.into(),
        })
        .await?
        .into_inner();
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    let ms = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .map(|t| t.seconds as f64 * 1000.0 + f64::from(t.nanos) / 1e6)
    };
    for checkout in &page.checkouts {
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

/// The Markdown table of the sweep.
pub fn table(results: &Results) -> String {
    let mut text = String::from(
        "| concurrency | checkouts/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | of ceiling |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &results.runs {
        let l = &r.latency_ms;
        text.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} % |\n",
            r.concurrency,
            r.throughput,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            r.error_count(),
            100.0 * r.throughput / results.ceiling_checkouts_per_sec
        ));
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
    let p99: Vec<_> = results
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| (x(i), y_p99(r.latency_ms.p99)))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Checkout throughput and p99 latency by concurrency</text>\n\
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
    for ((tx, ty), (px, py)) in tp.iter().zip(&p99) {
        svg.push_str(&format!(
            "<circle cx=\"{tx:.1}\" cy=\"{ty:.1}\" r=\"4\" fill=\"#1f77b4\"/><circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"#d62728\"/>\n"
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
