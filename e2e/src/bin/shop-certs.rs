//! Writes a development PKI for the shop (`scripts/certs`, and the compose `certs` job):
//! a CA, a certificate and key for every principal, the front door's token secret, the
//! load generator's token and the `env` file the walkthrough sources (its `OPERATOR`
//! token is also what a developer pastes into the console's sign-in page). Keeps an
//! existing PKI in the folder unless told to replace it; tokens and `env` are written
//! afresh each time.

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let written = (|| {
        let pki = if args.force {
            Pki::generate(&args.dir)?
        } else {
            Pki::open_or_generate(&args.dir)?
        };
        let shown = args.shown_as.clone().unwrap_or_else(|| args.dir.clone());
        let env = pki.write_client_files(&shown)?;
        anyhow::Ok((pki, env))
    })();
    match written {
        Ok((pki, env)) => {
            println!(
                "shop-certs: CA {}, a certificate and key per principal, token secret {}, \
                 the load generator's token in {}, grpcurl settings and tokens (ALICE, \
                 OPERATOR: paste one into the console's sign-in page) in {}",
                pki.ca().display(),
                pki.secret().display(),
                args.dir.display(),
                env.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shop-certs: {error:#}");
            ExitCode::FAILURE
        }
    }
}
