//! How fast is a checkout, and does the system stay correct under load and faults?
//! Benchmarks, not tests: numbers go to docs/BENCHMARKS.md, never into assertions.
//!
//! # Layout
//! - [`load`]: drives `PlaceOrder` at a fixed concurrency or rate, with a mix of outcomes
//!   and optional faults; reports throughput, latency percentiles, outcomes and errors.
//! - [`check`]: reads every service back and checks the invariants for one run.
//! - [`chaos`]: the same load with faults, a killed orchestrator and a restarted Postgres,
//!   then the check.
//! - [`bare`]: the floor: a checkout's six calls straight to the services, no saga.
//! - [`bench`]: the benchmark sweep, the saga beside its floor, the machine's ceiling and
//!   the report.
//! - [`costs`]: what a checkout costs the databases (commits, WAL flushes, statements).
//! - [`hops`]: each call's time as the orchestrator and as the service saw it.
//! - [`progress`]: the live progress line of the long commands.
//! - [`interrupt`]: SIGINT/SIGTERM stop a long run, which then reports what it has.

pub mod bare;
pub mod bench;
pub mod chaos;
pub mod check;
pub mod costs;
pub mod hops;
pub mod interrupt;
pub mod load;
pub mod progress;
pub mod readers;
