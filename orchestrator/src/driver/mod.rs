//! What drives an orchestrated saga forward, and what keeps exactly one driver on it.
//!
//! - `engine`: the driver: asks the rules, makes the step's call, writes the outcome;
//!   `loaded`: a saga as its driver holds it.
//! - `lease`: a driver's lease and its renewal (a driver that cannot renew fences itself);
//!   `recovery`: takeover of sagas whose driver died.
//! - `stalls`: counts and logs checkouts that stopped making progress.

pub mod engine;
pub mod lease;
pub mod loaded;
pub mod recovery;
pub mod stalls;
