//! `loadgen`: drive PlaceOrder, check the invariants, run chaos, run the benchmark.
//!
//! Over 400 lines: the command line of every subcommand, with each flag's help, is its
//! manual.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand};
use e2e::clients::{Clients, Urls};
use loadgen::{
    bare, bench, chaos, check,
    interrupt::Stop,
    load::{self, LoadConfig, Mix, Modes, RunState},
    progress::{self, Live, Planned},
    readers,
};
use platform::{
    config::parse_duration,
    security::{SecurityArgs, token::TokenFileArgs},
};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator, invariant checker and benchmark of the shop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive PlaceOrder against a running stack and report; writes the run's state for `check`.
    Run(RunArgs),
    /// Check the invariants for every checkout of a run (exit 1 on any violation, 130 when
    /// interrupted).
    Check(CheckArgs),
    /// Start a stack with faults, run load while killing the orchestrator and restarting
    /// Postgres, then check (exit 1 on any violation, 130 when interrupted).
    Chaos(ChaosArgs),
    /// Sweep concurrencies on a fresh stack of the binaries in SHOP_BIN_DIR and report,
    /// each beside its floor (`bare`).
    Bench(BenchArgs),
    /// The floor: each checkout's six calls straight to the services, no orchestrator,
    /// on the skus of an earlier `run` (its --state). The services take these calls only
    /// from the orchestrator: run it with the orchestrator's TLS files.
    Bare(BareArgs),
}

#[derive(Debug, Args)]
struct Targets {
    #[arg(
        long,
        env = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:50050"
    )]
    orchestrator_url: String,
    #[arg(long, env = "ORDER_SVC_URL", default_value = "http://127.0.0.1:50051")]
    order_svc_url: String,
    #[arg(
        long,
        env = "PAYMENT_SVC_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    payment_svc_url: String,
    #[arg(
        long,
        env = "INVENTORY_SVC_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    inventory_svc_url: String,
    #[arg(
        long,
        env = "SHIPPING_SVC_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    shipping_svc_url: String,
    /// TLS files or --dev-insecure: for `run`, which sets up its own products (a
    /// catalogue write), the operator's certificate; for `check`, the `loadgen` one.
    #[command(flatten)]
    security: SecurityArgs,
    /// An operator token: the load places checkouts for many customers.
    #[command(flatten)]
    token: TokenFileArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    targets: Targets,
    /// Requests in flight (closed loop), or the cap in flight with --rate.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Target requests per second (open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// How long to run (default 30s unless --count is given).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How many requests to make.
    #[arg(long)]
    count: Option<u64>,
    /// Share of declined cards.
    #[arg(long, default_value_t = 0.0)]
    declined: f64,
    /// Share of orders for an sku with no stock.
    #[arg(long, default_value_t = 0.0)]
    out_of_stock: f64,
    /// Share of orders shipped to AQ.
    #[arg(long, default_value_t = 0.0)]
    undeliverable: f64,
    /// PlaceOrder deadline.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    deadline: Duration,
    /// How the checkouts are coordinated.
    #[arg(long, value_enum, default_value_t = Modes::Orchestrated)]
    mode: Modes,
    /// Live watchers beside the run: each follows the newest checkout with WatchCheckout
    /// until it ends, then the next (what open console pages cost).
    #[arg(long, default_value_t = 0)]
    watchers: usize,
    /// Listers beside the run: each reads the newest page of 100 checkouts, again and again.
    #[arg(long, default_value_t = 0)]
    listers: usize,
    /// Name of this run: the customer id of its orders and the prefix of its keys.
    #[arg(long)]
    run_id: Option<String>,
    /// Where to write the run's state for `check`.
    #[arg(long, default_value = "loadgen-run.json")]
    state: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    targets: Targets,
    #[arg(long, default_value = "loadgen-run.json")]
    state: PathBuf,
    /// How long to wait for unfinished checkouts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    wait: Duration,
    /// Checkouts checked at once.
    #[arg(long, default_value_t = check::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ChaosArgs {
    /// How long to run the load (default 20s unless --count is given; with both, whichever
    /// ends first).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How many checkouts to make.
    #[arg(long)]
    count: Option<u64>,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Share of requests with a transient charge failure.
    #[arg(long, default_value_t = 0.2)]
    transient: f64,
    /// Share of requests with a late (past the timeout) successful reservation.
    #[arg(long, default_value_t = 0.1)]
    late: f64,
    /// Orchestrator kills during the run.
    #[arg(long, default_value_t = 2)]
    kills: u32,
    /// Restarts of Postgres during the run (pg_ctl restart -m fast); the stack then runs
    /// on a Postgres cluster of its own, not a shared server.
    #[arg(long, default_value_t = 0)]
    postgres_restarts: u32,
    /// Kills of the broker (SIGKILL, restarted 2 s later on its store) during the run:
    /// choreographed checkouts wait in the outboxes and the broker meanwhile.
    #[arg(long, default_value_t = 0)]
    broker_kills: u32,
    /// Partitions of two random hosts (both ways, 3 s each) during the run. The stack
    /// then runs across network namespaces of its own, one host per process: needs root,
    /// `ip` and `iptables` (scripts/deps.sh netns).
    #[arg(long, default_value_t = 0)]
    partitions: u32,
    /// How long the checker waits for unfinished checkouts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    wait: Duration,
    /// Checkouts the checker checks at once.
    #[arg(long, default_value_t = check::DEFAULT_CONCURRENCY)]
    check_concurrency: usize,
    /// How the checkouts are coordinated (faults apply to orchestrated calls only).
    #[arg(long, value_enum, default_value_t = Modes::Both)]
    mode: Modes,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BareArgs {
    #[command(flatten)]
    targets: Targets,
    /// Checkouts in flight (closed loop).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to run (default 30s unless --count is given).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How many checkouts to make.
    #[arg(long)]
    count: Option<u64>,
    /// The state an earlier `loadgen run` wrote: the skus to buy.
    #[arg(long, default_value = "loadgen-run.json")]
    state: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Concurrency levels, comma-separated.
    #[arg(long, default_value = "1,8,32,128", value_delimiter = ',')]
    levels: Vec<usize>,
    /// Seconds per level.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Folder for results.json, table.md and throughput.svg.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// How the checkouts are coordinated.
    #[arg(long, value_enum, default_value_t = Modes::Orchestrated)]
    mode: Modes,
}

impl Targets {
    fn urls(&self) -> Urls {
        Urls {
            orchestrator: self.orchestrator_url.clone(),
            order: self.order_svc_url.clone(),
            payment: self.payment_svc_url.clone(),
            inventory: self.inventory_svc_url.clone(),
            shipping: self.shipping_svc_url.clone(),
        }
    }

    fn clients(&self) -> anyhow::Result<Clients> {
        let security = self.security.security()?;
        let token = self.token.attach(&security)?;
        Ok(Clients::at(&self.urls(), &security, token)?)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => {
            let mut clients = args.targets.clients()?;
            let run_id = args
                .run_id
                .unwrap_or_else(|| format!("lg{}", std::process::id()));
            let mut state = load::setup(&mut clients, &run_id).await?;
            let mix = Mix {
                declined: args.declined,
                out_of_stock: args.out_of_stock,
                undeliverable: args.undeliverable,
                modes: args.mode,
                ..Mix::default()
            };
            let config = LoadConfig {
                rate: args.rate,
                deadline: args.deadline,
                progress: !args.json,
                ..LoadConfig::closed_loop(
                    &run_id,
                    args.concurrency,
                    length(args.duration, args.count),
                    args.count,
                    mix,
                )
            };
            let readers = (args.watchers + args.listers > 0)
                .then(|| readers::spawn(&clients, args.watchers, args.listers));
            let report = load::run(&clients, &config, &mut state).await?;
            std::fs::write(&args.state, serde_json::to_string_pretty(&state)?)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
                if let Some(readers) = &readers {
                    print!("{}", readers.render());
                }
                eprintln!(
                    "state written to {}; check it with: loadgen check --state {}",
                    args.state.display(),
                    args.state.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let mut clients = args.targets.clients()?;
            let state: RunState = serde_json::from_str(&std::fs::read_to_string(&args.state)?)?;
            let stop = Stop::on_signals()?;
            let live = Arc::new(Live::default());
            let ticker = progress::show(live.clone(), Planned::default(), Instant::now());
            let config = check::CheckConfig {
                wait: args.wait,
                concurrency: args.concurrency,
            };
            let verdict = check::check(&mut clients, &state, &config, &live, &stop).await?;
            drop(ticker);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&verdict)?);
            } else {
                print!("{}", verdict.render());
            }
            Ok(exit_code(&verdict))
        }
        Command::Chaos(args) => {
            let config = chaos::ChaosConfig {
                duration: args.duration,
                count: args.count,
                concurrency: args.concurrency,
                transient: args.transient,
                late: args.late,
                kills: args.kills,
                postgres_restarts: args.postgres_restarts,
                broker_kills: args.broker_kills,
                partitions: args.partitions,
                modes: args.mode,
                wait: args.wait,
                check_concurrency: args.check_concurrency,
                progress: true,
            };
            let report = chaos::run(&config, &Stop::on_signals()?).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(exit_code(&report.verdict))
        }
        Command::Bare(args) => {
            let services =
                bare::Services::at(&args.targets.urls(), &args.targets.security.security()?)?;
            let earlier: RunState = serde_json::from_str(&std::fs::read_to_string(&args.state)?)?;
            let mut state = RunState {
                run_id: format!("bare{}", std::process::id()),
                ..earlier
            };
            let config = LoadConfig {
                progress: !args.json,
                ..LoadConfig::closed_loop(
                    &state.run_id,
                    args.concurrency,
                    length(args.duration, args.count),
                    args.count,
                    Mix::default(),
                )
            };
            let report = load::run_bare(&services, &config, &mut state).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            let results = bench::run(&bench::BenchConfig {
                levels: args.levels,
                seconds: args.seconds,
                modes: args.mode,
            })
            .await?;
            std::fs::create_dir_all(&args.out)?;
            std::fs::write(
                args.out.join("results.json"),
                serde_json::to_string_pretty(&results)?,
            )?;
            std::fs::write(args.out.join("table.md"), bench::table(&results))?;
            std::fs::write(args.out.join("throughput.svg"), bench::plot(&results))?;
            println!("{}", bench::table(&results));
            println!(
                "commits per checkout {:.1}; pgbench simple-update {:.0} tps; ceiling {:.1} checkouts/s; tonic unary {:.0}/s (p50 {:.2} ms)",
                results.costs.commits_total,
                results.pgbench_tps,
                results.ceiling_checkouts_per_sec,
                results.tonic_unary_per_sec,
                results.tonic_unary_p50_ms
            );
            println!("mean step ms: {:?}", results.step_ms);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How long a run lasts: `--duration`, or 30 s when neither it nor `--count` is given.
fn length(duration: Option<Duration>, count: Option<u64>) -> Option<Duration> {
    duration.or(count.is_none().then_some(Duration::from_secs(30)))
}

/// 1 when the checker found any violation, else 130 (as for SIGINT) when it was
/// interrupted before the end, else 0.
fn exit_code(verdict: &check::Verdict) -> ExitCode {
    if !verdict.violations.is_empty() {
        ExitCode::FAILURE
    } else if verdict.partial {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}
