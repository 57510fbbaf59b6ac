//! Every call to the four services, and the tower stack it goes through.
//!
//! - `classify`: which failures are transient, refusals or fail-fast (shared by the retry
//!   policy, the breaker and the steps).
//! - `call`: what one call is (its lane and idempotency key), as every layer sees it.
//! - `retry`, `breaker`: the retry policy and circuit breaker (pure, unit-tested).
//! - `resilience`: the stack (deadline, timeout, retry, breaker, concurrency), in one place.
//! - `clients`: the four services' RPCs, each wrapped in that stack.

pub mod breaker;
pub mod call;
pub mod classify;
pub mod clients;
pub mod resilience;
pub mod retry;
pub use clients::Clients;
