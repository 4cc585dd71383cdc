//! Published ports: `-p [ADDR:]HOST:CONTAINER[/tcp|/udp]` and the
//! manifest's `ports` are one type, [`PortMapping`], with one parser (its
//! `FromStr`), which the container record keeps as it is.
//!
//! The container has its own network namespace, so nothing on the host can
//! reach its ports directly. The shim publishes them with a userspace proxy
//! ([`ProxySet`]) that listens on the host side (127.0.0.1 unless an address
//! is given) and forwards to `CONTAINER` *inside* the container's namespace.
//!
//! How the proxy gets into the namespace: a socket belongs to the network
//! namespace of the thread that created it. One dialer thread per
//! [`ProxySet`] enters the container's namespace (`setns`) and does nothing
//! but create sockets on request; the other threads connect and use them.
//! No process is spawned and no other thread changes namespace.
//!
//! **TCP.** For each connection the proxy connects to `127.0.0.1:CONTAINER`
//! (then `[::1]:CONTAINER`) in the namespace and copies bytes both ways, with
//! two threads and a 16 KiB buffer per direction. When one side ends its
//! output (EOF), the proxy shuts down writing on the other side and keeps
//! copying the other direction, so a client that half-closes still gets the
//! whole reply; the connection is closed once both directions have ended.
//! An error in either direction closes both. A refused connection inside the
//! container closes the client's connection at once.
//!
//! **UDP**, as Docker's userland proxy does it. One thread per published UDP
//! port waits (`poll`) on the host socket and on one *flow* per client
//! address: a UDP socket made in the namespace and connected to
//! `127.0.0.1:CONTAINER`, so the server sees each client as its own peer.
//! A client's datagrams go out through its flow; what comes back on the flow
//! is sent to that client from the host socket, so the reply comes from the
//! address the client sent to. A flow with no datagram either way for
//! [`UDP_IDLE_TIMEOUT`] is dropped; at most [`MAX_UDP_FLOWS`] are open per
//! port, and a new client beyond that replaces the least recently active.
//! After [`ProxySet::retarget`] a client's next datagram opens a new flow in
//! the new namespace. Datagrams are never queued: one that cannot be sent
//! is lost, as UDP allows.

mod dialer;
mod mapping;
mod proxy;
mod tcp;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use mapping::{PortMapping, Protocol};
pub use proxy::{CONNECT_TIMEOUT, MAX_CONNECTIONS, ProxySet, ProxyStats, UdpLimits};
pub use udp::{MAX_UDP_FLOWS, UDP_IDLE_TIMEOUT};

/// What every port-mapping parse error ends with.
const EXPECTED_MAPPING: &str = "expected \"[ADDR:]HOST:CONTAINER[/tcp|/udp]\", as in \"8080:80\", \"0.0.0.0:8080:80/tcp\" or \"[::1]:5353:53/udp\"";

/// Everything that can go wrong publishing ports.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("bad port mapping {input:?}: {reason}; {EXPECTED_MAPPING}")]
    Parse { input: String, reason: String },

    #[error(
        "cannot publish port {container_port}/{protocol}: {host} is already in use; stop what listens there or choose another host port"
    )]
    InUse { host: SocketAddr, container_port: u16, protocol: Protocol },

    #[error(
        "cannot publish port {container_port}/{protocol} on {host}: {source}; use an address of this host, such as 127.0.0.1 or 0.0.0.0"
    )]
    AddrNotAvailable { host: SocketAddr, container_port: u16, protocol: Protocol, source: io::Error },

    #[error("cannot publish port {container_port}/{protocol} on {host}: {source}")]
    Bind { host: SocketAddr, container_port: u16, protocol: Protocol, source: io::Error },

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
