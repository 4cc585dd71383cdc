//! Published ports: `-p [ADDR:]HOST:CONTAINER[/tcp]`.
//!
//! The container has its own network namespace, so nothing on the host can
//! reach its ports directly. The shim publishes a port with a userspace TCP
//! proxy ([`ProxySet`]): it listens on the host side (127.0.0.1 unless an
//! address is given) and, for each connection, connects to
//! `127.0.0.1:CONTAINER` (then `[::1]:CONTAINER`) *inside* the container's
//! namespace and copies bytes both ways.
//!
//! How a connection gets into the namespace: a socket belongs to the network
//! namespace of the thread that created it. One dialer thread per
//! [`ProxySet`] enters the container's namespace (`setns`) and does nothing
//! but create sockets on request; connection threads connect and use them.
//! No process is spawned and no other thread changes namespace.
//!
//! Each connection has two threads, one per direction, with a 16 KiB buffer
//! each. When one side ends its output (EOF), the proxy shuts down writing
//! on the other side and keeps copying the other direction, so a client
//! that half-closes still gets the whole reply; the connection is closed
//! once both directions have ended. An error in either direction closes
//! both. A refused connection inside the container closes the client's
//! connection at once.
//!
//! UDP is not published (yet): `/udp` is rejected when parsed.

mod proxy;
mod publish;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use proxy::{CONNECT_TIMEOUT, MAX_CONNECTIONS, ProxySet, ProxyStats};
pub use publish::{Protocol, Publish};

/// Everything that can go wrong publishing ports.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(
        "invalid port mapping {input:?}: {reason}; expected [ADDR:]HOST:CONTAINER[/tcp], such as 8080:80, 0.0.0.0:8443:443 or [::1]:5432:5432"
    )]
    Parse { input: String, reason: String },

    #[error(
        "cannot publish port {container_port}: {host} is already in use; stop what listens there or choose another host port"
    )]
    InUse { host: SocketAddr, container_port: u16 },

    #[error(
        "cannot publish port {container_port} on {host}: {source}; use an address of this host, such as 127.0.0.1 or 0.0.0.0"
    )]
    AddrNotAvailable { host: SocketAddr, container_port: u16, source: io::Error },

    #[error("cannot publish port {container_port} on {host}: {source}")]
    Bind { host: SocketAddr, container_port: u16, source: io::Error },

    #[error("cannot open network namespace {}: {source}; is the container's process still running?", path.display())]
    OpenNetns { path: PathBuf, source: io::Error },

    #[error(
        "cannot enter network namespace {}: {source}; it must be a network namespace (such as /proc/PID/ns/net) and the shim needs CAP_SYS_ADMIN",
        path.display()
    )]
    EnterNetns { path: PathBuf, source: io::Error },

    #[error("cannot start the port proxy's {what} thread: {source}")]
    Spawn { what: &'static str, source: io::Error },
}

#[cfg(test)]
mod tests;
