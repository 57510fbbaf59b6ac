//! The stack harness: finds or starts Postgres, creates one fresh database per service,
//! starts a NATS server (JetStream) of its own, starts the five real binaries on free ports with the settings of docs/CONTRACT.md, waits
//! for SERVING, and tears it all down (no orphan process, even when a test panics). It
//! backs the local runner (`shop-local`), the end-to-end suite and the load generator.
//!
//! # Layout
//! - [`net`]: free loopback ports.
//! - [`postgres`]: find or start a Postgres server, create and drop databases.
//! - [`nats`]: find the nats-server binary, start a broker (kill -9 and restart it), or
//!   find the one on 127.0.0.1:4222 for the local runner.
//! - [`hosts`]: test hosts (a network namespace each, on a private bridge) to run a
//!   stack across, and the network faults between them (partitions, isolation, loss,
//!   delay through a proxy).
//! - [`svc`]: the five services by name (binary, principal, default port).
//! - [`stack`]: the five processes: start, kill -9, SIGSTOP/SIGCONT, restart; extra
//!   orchestrator replicas.
//! - [`pki`]: a development CA, a certificate per principal and the token secret.
//! - [`nats_auth`]: the broker's TLS and per-principal authorization, written from the
//!   same principals.
//! - [`console`]: the saga viewer (the `console` binary) next to a stack.
//! - [`clients`]: gRPC clients of every service of a running stack.
//! - [`invariants`]: the invariants of docs/CONTRACT.md, checked through the read RPCs.
//! - [`metrics`]: a service's Prometheus metrics, scraped and read.
//! - [`demo`]: the demo catalog the runner seeds.
//! - [`scenario`]: what the end-to-end suites share (requests, waits, the invariant check).

pub mod clients;
pub mod console;
pub mod demo;
pub mod hosts;
pub mod invariants;
pub mod metrics;
pub mod nats;
pub mod nats_auth;
pub mod net;
pub mod pki;
pub mod postgres;
pub mod scenario;
pub mod stack;
pub mod svc;

pub use stack::{Replica, Stack, StackOptions, Svc};
