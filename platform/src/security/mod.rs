//! Who may talk to whom, and how that is proven (docs/SECURITY.md).
//!
//! - [`settings`]: `TLS_CERT_FILE`/`TLS_KEY_FILE`/`TLS_CA_FILE`, or `--dev-insecure`; a
//!   binary with neither refuses to start.
//! - [`tls`]: the rustls configs built from those files, rebuilt when a file changes.
//! - [`incoming`]: accepted connections: TCP_NODELAY, the TLS handshake off the accept
//!   loop, the peer's identity attached to every request.
//! - [`connect`]: client channels that present this binary's certificate and check the
//!   server's certificate against the name of the service they meant to reach.
//! - [`principal`]: the names certificates are issued to, and how a peer's is read.
//! - [`gate`]: the one layer that checks a call before its request is read.
//! - [`access`]: which principal may call which RPC; `grants` (tests) argues each grant.
//! - [`token`]: the front door's bearer tokens (signed JWT): claims, signing, checking.
//! - [`caller`]: who a token proves a front-door caller to be, and what they may see.

pub mod access;
pub mod caller;
pub mod connect;
pub mod gate;
#[cfg(test)]
mod grants;
pub mod incoming;
pub mod principal;
pub mod settings;
pub mod tls;
pub mod token;

pub use principal::{Peer, Principal};
pub use settings::{Security, SecurityArgs, SecurityError};
pub use tls::{Tls, TlsFiles};
