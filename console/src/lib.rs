//! The saga viewer: a small web server that shows the shop's checkouts, each one's
//! steps, attempts, errors and compensations as a timeline (live while it runs), and a
//! form to place a demo checkout; for operators, the checkouts that need attention and
//! every service's dead letters, with their actions.
//!
//! It is a separate binary rather than a route of the orchestrator so the orchestrator
//! stays an API server, and so the console is what it shows: a client of the public
//! front door (`shop.checkout.v1.CheckoutService`, and `shop.operations.v1.
//! DeadLetterService` for operators) and nothing else (no database, no broker, no
//! internal service), which can be deployed, scaled and secured apart from the shop.
//!
//! # Layout
//! - [`config`]: the flags and environment variables.
//! - [`shop`]: the front door's clients and their deadlines.
//! - [`routes`]: the HTTP routes; [`live`]: the server-sent events of a running checkout.
//! - [`session`]: who is signed in (their token, in a cookie) and the forms' CSRF tokens.
//! - [`site`]: where the console is reached: the `Origin` check of every state-changing
//!   request and the security headers of every response.
//! - [`demo`]: the demo form's choices and its PlaceOrder request.
//! - [`views`]: the HTML of each page, as maud templates (escaped by default).
//! - [`healthcheck`]: the `healthcheck` subcommand.
//!
//! The pages are server-rendered and complete without JavaScript; one small script
//! (`assets/console.js`, embedded like the stylesheet, no build step) swaps in the live
//! timeline.
//!
//! The console acts as the person using it: they sign in with their own front-door
//! token, and every call it makes carries that token, so a customer sees only their own
//! checkouts and an operator all of them, as the orchestrator decides. It holds no token
//! of its own.

pub mod config;
pub mod demo;
pub mod healthcheck;
pub mod live;
pub mod routes;
pub mod session;
pub mod shop;
pub mod site;
pub mod views;

use std::{future::IntoFuture, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;

/// How long open pages (their event streams never end on their own) may hold the
/// console after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the console on `listener` until SIGTERM or Ctrl-C.
pub async fn serve(listener: TcpListener, console: routes::Console) -> std::io::Result<()> {
    let app = routes::router(console);
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            platform::server::shutdown_signal().await;
            let _ = stopping_tx.send(true);
        })
        .into_future();
    let mut stopping = stopping_rx;
    tokio::select! {
        served = server => served,
        () = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

/// Binds `addr`, saying which address could not be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|error| {
        std::io::Error::new(error.kind(), format!("cannot listen on {addr}: {error}"))
    })
}
