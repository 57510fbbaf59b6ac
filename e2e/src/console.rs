//! The console (the saga viewer) as a real process next to a [`Stack`]: the `console`
//! binary, pointed at the stack's orchestrator by `ORCHESTRATOR_URL`, its log next to
//! the services' logs. Kept apart from the stack's five services because it is a client
//! of the shop, not part of it: no database, no broker, HTTP rather than gRPC health.
//! It holds no token: whoever uses it signs in with their own ([`sign_in_token`]).
//! [`http`] is a plain HTTP/1.1 client for tests that look at its answers byte by byte
//! (status, headers, cookies), with no browser in between.

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

use platform::security::{
    Principal,
    token::{DEFAULT_ISSUER, Signer},
};

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
                // Its certificate only: it calls the shop with the signed-in person's token.
                command.envs(pki.env(Principal::Console));
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

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A token to paste into the console's sign-in page as `subject` (an operator if asked),
/// valid a day: signed with the stack's secret, which the orchestrator checks. With
/// `dev_insecure` the orchestrator checks no token, but the console still wants a
/// well-formed one: it is signed with a throwaway secret in the stack's log folder.
pub fn sign_in_token(stack: &Stack, subject: &str, operator: bool) -> anyhow::Result<String> {
    if let Some(pki) = stack.pki() {
        return pki.token(subject, operator);
    }
    let secret = stack.log_dir.join("dev-insecure-token-secret");
    if !secret.exists() {
        let random = format!(
            "{}{}\n",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        std::fs::write(&secret, random)
            .with_context(|| format!("cannot write {}", secret.display()))?;
    }
    let signer = Signer::from_secret_file(&secret, DEFAULT_ISSUER)?;
    Ok(signer.sign(subject, operator, Duration::from_secs(24 * 3600))?)
}

/// An answer of [`http`].
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Every header, names lowercase, in the order sent (`set-cookie` may repeat).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    /// The first value of header `name` (lowercase), or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    }

    /// Every value of header `name` (lowercase).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request to `addr` on a fresh connection (`Connection: close`), with
/// `Host` set to `addr` and the given extra headers; a non-empty `body` is sent as a
/// form. Follows no redirect. Ten seconds at most.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpAnswer> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method != "GET" && method != "HEAD" {
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .with_context(|| format!("{method} {path}: no answer within 10 s"))?
        .with_context(|| format!("{method} {path}"))?;
    parse_answer(&raw).with_context(|| format!("{method} {path}: a malformed answer"))
}

fn parse_answer(raw: &[u8]) -> anyhow::Result<HttpAnswer> {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpAnswer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = rest
            .windows(2)
            .position(|window| window == b"\r\n")
            .context("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a chunk size that is not hex")?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).context("a chunk cut short")?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).unwrap_or_default();
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
