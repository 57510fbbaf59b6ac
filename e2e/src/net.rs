//! Ports on the loopback interface, shared by the Postgres finder and the stack (kept
//! apart so neither has to import the other for it).

use std::net::TcpListener;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
