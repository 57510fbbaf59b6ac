//! The local runner: starts the whole stack without Docker (Postgres found or started,
//! one fresh database per service, a NATS server of its own over mutual TLS (with
//! `--dev-insecure`: the one on 127.0.0.1:4222 used if it runs with JetStream, else
//! started there), the five real binaries on the docs/CONTRACT.md
//! ports), seeds the demo catalog, starts the console (the saga viewer) on
//! http://127.0.0.1:8080, prints how to call it and the development operator's token to
//! sign in to the console with, and runs until Ctrl-C or SIGTERM: either stops every
//! process it started.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use e2e::{
    Stack, StackOptions, Svc,
    clients::Clients,
    console::{Console, sign_in_token},
    demo,
};
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    name = "shop-local",
    about = "Run the whole shop locally, without Docker"
)]
struct Args {
    /// Obey x-fault metadata (docs/FAULTS.md) in every service.
    #[arg(long, env = "FAULT_INJECTION")]
    fault_injection: bool,
    /// Pick free ports instead of 50050-50054 and 8080 (the console), and start a NATS
    /// server of its own on a free port instead of using (or starting) the one on
    /// 127.0.0.1:4222.
    #[arg(long)]
    any_ports: bool,
    /// Plaintext, no certificates, no tokens (every binary logs a warning).
    #[arg(long, env = "DEV_INSECURE")]
    dev_insecure: bool,
    /// Where the development CA, certificates, token secret and `env` file live (made
    /// there on the first run, kept after).
    #[arg(long, default_value = ".shop")]
    pki_dir: PathBuf,
}

/// SIGINT (Ctrl-C) and SIGTERM (a supervisor, a script's `kill`), listened for from the
/// first line of `main`. Without a handler SIGTERM would end this process alone, at once:
/// the five binaries, the console and the broker it started would run on as orphans. With
/// one, either signal, while the stack starts or once it runs, drops the stack, which
/// kills them, drops the databases and removes the broker's store.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal, by name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("shop-local: cannot listen for SIGINT and SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    // A signal while starting drops what has started so far (the stack's parts stop
    // themselves when dropped).
    let (stack, console) = tokio::select! {
        started = start(&args) => match started {
            Ok(started) => started,
            Err(code) => return code,
        },
        name = signals.next() => {
            println!("\n{name}: stopping what has started...");
            return ExitCode::SUCCESS;
        }
    };
    if let Err(code) = announce(&args, &stack, &console) {
        return code;
    }
    let name = signals.next().await;
    println!("\n{name}: stopping...");
    drop(console);
    drop(stack);
    ExitCode::SUCCESS
}

/// Starts the stack, seeds the demo catalog and starts the console.
async fn start(args: &Args) -> Result<(Stack, Console), ExitCode> {
    let options = StackOptions {
        fault_injection: args.fault_injection,
        default_ports: !args.any_ports,
        dev_insecure: args.dev_insecure,
        pki_dir: Some(args.pki_dir.clone()),
        ..StackOptions::default()
    };
    println!("starting the stack...");
    let stack = match Stack::start(options).await {
        Ok(stack) => stack,
        Err(error) => {
            eprintln!("shop-local: {error:#}");
            return Err(ExitCode::FAILURE);
        }
    };
    let mut clients = Clients::of(&stack);
    if let Err(status) = demo::seed(&mut clients.inventory).await {
        eprintln!("shop-local: seeding the demo catalog failed: {status}");
        return Err(ExitCode::FAILURE);
    }
    match Console::start(&stack, !args.any_ports).await {
        Ok(console) => Ok((stack, console)),
        Err(error) => {
            eprintln!("shop-local: the console: {error:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Prints where everything is and how to call it.
fn announce(args: &Args, stack: &Stack, console: &Console) -> Result<(), ExitCode> {
    println!(
        "\nThe shop is running (logs in {}):",
        stack.log_dir.display()
    );
    for svc in Svc::ALL {
        println!("  {:<14} {}", svc.binary(), stack.addr(svc));
    }
    // Printed, not put in a URL: a token in a URL ends up in the browser's history and
    // in logs. The console keeps no token of its own, so without this nobody could use it.
    let operator_token = match sign_in_token(stack, "operator", true) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("shop-local: the operator's token: {error:#}");
            return Err(ExitCode::FAILURE);
        }
    };
    let where_else = if stack.pki().is_some() {
        format!(
            "; it is also OPERATOR in {}, after `Bearer ` (ALICE there is a customer's)",
            args.pki_dir.join("env").display()
        )
    } else {
        String::new()
    };
    println!(
        "\nThe console (every checkout, its steps live, and a demo form), open in a browser:\n  {}",
        console.url()
    );
    if !args.fault_injection {
        println!(
            "  (its slow motion, to watch each step run, needs scripts/run --fault-injection)"
        );
    }
    println!(
        "It asks who you are: paste this token into its sign-in page, the development \
         operator's (every customer's checkouts, valid 24 h){where_else}:\n  {operator_token}"
    );
    println!("\nEvents go through NATS (JetStream), NATS_URL of every service:");
    println!("  {}", stack.nats().describe());
    println!("\nDemo catalog (EUR):");
    for (sku, name, price, units) in demo::CATALOG {
        println!(
            "  {sku:<6} {name:<16} {:>6.2}  {units} in stock",
            *price as f64 / 100.0
        );
    }
    let orch = stack.addr(Svc::Orchestrator);
    let place = format!(
        "-d '{{\"idempotencyKey\":\"demo-1\",\"items\":[{{\"sku\":\"MUG-1\",\"quantity\":2}}],\"paymentToken\":\"tok_visa\",\"shippingAddress\":{{\"name\":\"Alice\",\"line1\":\"1 Main St\",\"city\":\"Lyon\",\"postalCode\":\"69001\",\"country\":\"FR\"}}}}' {orch} shop.checkout.v1.CheckoutService/PlaceOrder"
    );
    match stack.pki() {
        Some(pki) => {
            let env = match pki.write_client_files(&args.pki_dir) {
                Ok(env) => env,
                Err(error) => {
                    eprintln!("shop-local: writing the tools' files: {error:#}");
                    return Err(ExitCode::FAILURE);
                }
            };
            println!(
                "\nEvery hop is mutual TLS; the front door wants a bearer token. {} sets the \
                 grpcurl flags (SHOP_TLS) and ready-made tokens (ALICE, OPERATOR; \
                 `orchestrator token --subject NAME` with AUTH_JWT_SECRET_FILE={} makes more).\n\
                 Try it (see docs/WALKTHROUGH.md):\n  source {}\n  grpcurl $SHOP_TLS {orch} list\n  \
                 grpcurl $SHOP_TLS -H \"$ALICE\" {place}",
                env.display(),
                pki.secret().display(),
                env.display(),
            );
        }
        None => println!(
            "\nDEV_INSECURE: plaintext, no tokens. Try it:\n  grpcurl -plaintext {orch} list\n  \
             grpcurl -plaintext {}",
            place.replace("\"items\"", "\"customerId\":\"alice\",\"items\"")
        ),
    }
    println!(
        "\nCtrl-C (or SIGTERM) stops everything, drops the databases and, if it started the \
         NATS server, stops it and removes its store."
    );
    Ok(())
}
