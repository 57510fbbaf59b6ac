//! Ports on the loopback interface for the stack, its Postgres and its NATS server:
//! platform's [`platform::ports`], which `platform::testing` shares.

pub use platform::ports::free_port;
