//! The console (the saga viewer) as a real process next to a [`Stack`]: the `console`
//! binary, pointed at the stack's orchestrator by `ORCHESTRATOR_URL`, its log next to
//! the services' logs. Kept apart from the stack's five services because it is a client
//! of the shop, not part of it: no database, no broker, HTTP rather than gRPC health.

use std::{
    net::{SocketAddr, TcpListener},
    process::Child,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use platform::security::Principal;

use crate::{
    net::free_port,
    stack::{Stack, Svc, bin_dir, logged_command},
};

/// The console's default port (docs/CONTRACT.md).
pub const DEFAULT_PORT: u16 = 8080;

/// A running console. Dropping it kills the process.
#[derive(Debug)]
pub struct Console {
    child: Child,
    addr: SocketAddr,
}

impl Console {
    /// Starts the console for `stack`, on [`DEFAULT_PORT`] or a free port, and waits
    /// (up to 30 s) until it answers `/healthz`.
    pub async fn start(stack: &Stack, default_port: bool) -> anyhow::Result<Self> {
        let binary = bin_dir()?.join("console");
        if !binary.exists() {
            bail!(
                "{} is missing: build the binaries first (cargo build --bins)",
                binary.display()
            );
        }
        let port = if default_port {
            TcpListener::bind(("127.0.0.1", DEFAULT_PORT))
                .with_context(|| format!("port {DEFAULT_PORT} for the console is taken"))?;
            DEFAULT_PORT
        } else {
            free_port()?
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_path = stack.log_dir.join("console.log");
        let mut command = logged_command(&binary, addr, &log_path)?;
        command.env("ORCHESTRATOR_URL", stack.url(Svc::Orchestrator));
        match stack.pki() {
            None => {
                command.env("DEV_INSECURE", "true");
            }
            Some(pki) => {
                // An operator's token: the console lists every customer's checkouts.
                command
                    .envs(pki.env(Principal::Console))
                    .env("AUTH_TOKEN_FILE", pki.write_token("console", true)?);
            }
        }
        let child = command.spawn().context("starting console")?;
        let mut console = Self { child, addr };
        for _ in 0..300 {
            if let Some(status) = console.child.try_wait()? {
                bail!("console exited with {status}; see {}", log_path.display());
            }
            if healthy(addr).await {
                return Ok(console);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "console never answered /healthz; see {}",
            log_path.display()
        )
    }

    /// `http://127.0.0.1:PORT`, the address to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Whether `GET /healthz` answers 200 within half a second.
async fn healthy(addr: SocketAddr) -> bool {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: console\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), ask).await,
        Ok(Ok(true))
    )
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
