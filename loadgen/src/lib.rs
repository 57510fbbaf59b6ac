//! How fast is a checkout, and does the system stay correct under load and faults?
//! Benchmarks, not tests: numbers go to docs/BENCHMARKS.md, never into assertions.
//!
//! # Layout
//! - [`load`]: drives `PlaceOrder` at a fixed concurrency or rate, with a mix of outcomes
//!   and optional faults; reports throughput, latency percentiles, outcomes and errors.
//! - [`check`]: reads every service back and checks the invariants for one run.
//! - [`chaos`]: the same load with faults, a killed orchestrator and a restarted Postgres,
//!   then the check.
//! - [`bench`]: the benchmark sweep, the machine's ceiling and the report.
//! - [`progress`]: the live progress line of the long commands.
//! - [`interrupt`]: SIGINT/SIGTERM stop a long run, which then reports what it has.

pub mod bench;
pub mod chaos;
pub mod check;
pub mod interrupt;
pub mod load;
pub mod progress;
