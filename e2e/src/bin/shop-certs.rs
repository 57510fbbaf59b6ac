//! Writes a development PKI for the shop (`scripts/certs`, and the compose `certs` job):
//! a CA, a certificate and key for every principal, the front door's token secret, the
//! load generator's token and the `env` file the walkthrough sources (its `OPERATOR`
//! token is also what a developer pastes into the console's sign-in page), and the
//! broker's configuration `nats.conf` (mutual TLS, each certificate allowed its
//! principal's subjects only; compose's broker runs with it). Keeps an existing PKI in
//! the folder unless told to replace it; tokens, `env` and `nats.conf` are written afresh
//! each time.
//!
//! `--nats-authorization PATH` writes the broker's authorization block alone and nothing
//! else: how `deploy/k8s/base/nats-authorization.conf` is made.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use e2e::pki::Pki;

#[derive(Debug, Parser)]
#[command(
    name = "shop-certs",
    about = "Write a development CA, certificates and token secret"
)]
struct Args {
    /// Where to write (created if missing).
    #[arg(long, default_value = ".shop")]
    dir: PathBuf,
    /// Where the user's shell will find these files, as `env` names them (the folder a
    /// container's volume is copied to); defaults to --dir.
    #[arg(long)]
    shown_as: Option<PathBuf>,
    /// Replace the CA and every certificate even if the folder holds a PKI already.
    #[arg(long)]
    force: bool,
    /// Write only the broker's authorization block (which principal may publish and
    /// subscribe to what) to this file, and nothing else.
    #[arg(long, value_name = "PATH")]
    nats_authorization: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.nats_authorization {
        return match std::fs::write(path, e2e::nats_auth::authorization()) {
            Ok(()) => {
                println!(
                    "shop-certs: the broker's authorization in {}",
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("shop-certs: writing {}: {error}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    let written = (|| {
        let pki = if args.force {
            Pki::generate(&args.dir)?
        } else {
            Pki::open_or_generate(&args.dir)?
        };
        let shown = args.shown_as.clone().unwrap_or_else(|| args.dir.clone());
        // Before `env`, which is written last: Kubernetes' development pods wait for it.
        let broker = pki.write_broker_config()?;
        let env = pki.write_client_files(&shown)?;
        anyhow::Ok((pki, env, broker))
    })();
    match written {
        Ok((pki, env, broker)) => {
            println!(
                "shop-certs: CA {}, a certificate and key per principal, token secret {}, \
                 the load generator's token in {}, grpcurl settings and tokens (ALICE, \
                 OPERATOR: paste one into the console's sign-in page) in {}, the broker's \
                 configuration in {}",
                pki.ca().display(),
                pki.secret().display(),
                args.dir.display(),
                env.display(),
                broker.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shop-certs: {error:#}");
            ExitCode::FAILURE
        }
    }
}
