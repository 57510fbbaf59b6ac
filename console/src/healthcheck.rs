//! The `healthcheck` subcommand: `GET /healthz` over plain TCP, so container health
//! checks need no curl in the image. Like the services' own, it never hangs: the whole
//! exchange has two seconds.

use std::{process::ExitCode, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Checks the console at `addr` (`host:port`, or `http://host:port`).
pub async fn run(addr: &str) -> ExitCode {
    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
    match tokio::time::timeout(Duration::from_secs(2), status_line(addr)).await {
        Ok(Ok(line)) if line.split_whitespace().nth(1) == Some("200") => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(Ok(line)) => {
            println!("NOT_SERVING: {line}");
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("healthcheck {addr}: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck {addr}: no answer within 2 s");
            ExitCode::FAILURE
        }
    }
}

/// The first line of the answer to `GET /healthz`, such as `HTTP/1.1 200 OK`.
async fn status_line(addr: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
