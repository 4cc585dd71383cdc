//! [`ProxySet`]: the published ports of one container, their listening
//! sockets and threads, what they share, and how they stop.

use std::collections::HashMap;
use std::io::{self, PipeWriter};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::dialer::{Dialer, Kind};
use super::{MAX_UDP_FLOWS, PortError, PortMapping, Protocol, UDP_IDLE_TIMEOUT, tcp, udp};
use crate::sys::netns;

/// How long a connection into the container may take before the client's
/// connection is closed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP connections open at once per [`ProxySet`]; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 1024;
/// The stack of each proxy thread; they only copy bytes.
pub(super) const STACK: usize = 256 * 1024;

/// The limits of UDP flows; [`Default`] gives [`UDP_IDLE_TIMEOUT`] and
/// [`MAX_UDP_FLOWS`], which the shim uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpLimits {
    /// A flow with no datagram either way for this long is dropped.
    pub idle_timeout: Duration,
    /// Flows open at once per published UDP port.
    pub max_flows: usize,
}

impl Default for UdpLimits {
    fn default() -> UdpLimits {
        UdpLimits { idle_timeout: UDP_IDLE_TIMEOUT, max_flows: MAX_UDP_FLOWS }
    }
}

/// The published ports of one container, served until [`stop`](Self::stop)
/// (or drop, which stops without a grace time).
pub struct ProxySet {
    listeners: Vec<Listening>,
    shared: Arc<Shared>,
    stopped: bool,
}

struct Listening {
    mapping: PortMapping,
    socket: Listener,
    thread: Option<JoinHandle<()>>,
}

enum Listener {
    /// Shut down to wake the accept loop.
    Tcp(Arc<TcpListener>),
    /// The relay thread owns the socket; dropping the writer wakes it.
    Udp(Option<PipeWriter>),
}

/// Counters of a [`ProxySet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// TCP connections open now.
    pub active: usize,
    /// TCP connections accepted so far.
    pub accepted: u64,
    /// TCP connections closed because the container refused them (or did
    /// not answer, or too many were open), and UDP flows that could not be
    /// opened.
    pub failed: u64,
    /// UDP flows open now, over all UDP ports.
    pub flows: usize,
}

/// What the threads of a [`ProxySet`] share.
pub(super) struct Shared {
    dialer: Mutex<Option<Dialer>>,
    /// Bumped by each retarget: UDP flows of an older generation were made
    /// in the old namespace.
    pub(super) generation: AtomicU64,
    pub(super) conns: Mutex<Conns>,
    /// Notified whenever a connection ends.
    pub(super) ended: Condvar,
    /// Listeners are closing: accept no more.
    pub(super) stopping: AtomicBool,
    pub(super) accepted: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) flows: AtomicUsize,
    pub(super) udp: UdpLimits,
}

#[derive(Default)]
pub(super) struct Conns {
    pub(super) next_id: u64,
    /// Per open connection, clones of its sockets, to shut them down when
    /// the grace time is over.
    pub(super) open: HashMap<u64, Vec<TcpStream>>,
    /// The grace time is over: connections still being set up are closed.
    pub(super) forced: bool,
}

impl Shared {
    /// A socket of `addr`'s family and `kind` in the container's namespace.
    pub(super) fn socket(&self, addr: SocketAddr, kind: Kind) -> io::Result<OwnedFd> {
        let requests = match &*lock(&self.dialer) {
            Some(dialer) => dialer.requests(),
            None => return Err(io::Error::other("the proxy is stopping")),
        };
        requests.socket(addr, kind)
    }
}

impl ProxySet {
    /// Listens on every `mappings[i].host` (TCP or UDP), then forwards into
    /// the network namespace `netns` (`/proc/PID/ns/net`), with the default
    /// [`UdpLimits`]. All sockets are bound before anything is served; if
    /// one cannot be, none stays open.
    pub fn start(mappings: &[PortMapping], netns: &Path) -> Result<ProxySet, PortError> {
        ProxySet::start_with(mappings, netns, UdpLimits::default())
    }

    /// [`start`](Self::start) with other limits for UDP flows.
    pub fn start_with(mappings: &[PortMapping], netns: &Path, udp: UdpLimits) -> Result<ProxySet, PortError> {
        let mut bound = Vec::with_capacity(mappings.len());
        for mapping in mappings {
            let fail = |e| bind_error(mapping, e);
            let socket = match mapping.protocol {
                Protocol::Tcp => Bound::Tcp(TcpListener::bind(mapping.host).map_err(fail)?),
                Protocol::Udp => Bound::Udp(UdpSocket::bind(mapping.host).map_err(fail)?),
            };
            let host = socket.local_addr().map_err(fail)?;
            bound.push((PortMapping { host, ..*mapping }, socket));
        }
        let shared = Arc::new(Shared {
            dialer: Mutex::new(Some(Dialer::start(netns)?)),
            generation: AtomicU64::new(0),
            conns: Mutex::new(Conns::default()),
            ended: Condvar::new(),
            stopping: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            flows: AtomicUsize::new(0),
            udp,
        });
        let mut set = ProxySet { listeners: Vec::new(), shared, stopped: false };
        for (mapping, socket) in bound {
            // On failure `set` is dropped, which stops what already runs.
            let listening = set.serve(mapping, socket)?;
            set.listeners.push(listening);
        }
        Ok(set)
    }

    fn serve(&self, mapping: PortMapping, socket: Bound) -> Result<Listening, PortError> {
        let shared = Arc::clone(&self.shared);
        let port = mapping.container_port;
        let builder = thread::Builder::new().name(format!("port-{}", mapping.host.port())).stack_size(STACK);
        let spawned = |e| PortError::Spawn { what: "listener", source: e };
        Ok(match socket {
            Bound::Tcp(listener) => {
                let listener = Arc::new(listener);
                let l = Arc::clone(&listener);
                let thread = builder.spawn(move || tcp::accept_loop(&l, &shared, port)).map_err(spawned)?;
                Listening { mapping, socket: Listener::Tcp(listener), thread: Some(thread) }
            }
            Bound::Udp(socket) => {
                let (woken, wake) = io::pipe().map_err(spawned)?;
                let thread = builder.spawn(move || udp::relay(&socket, &woken, &shared, port)).map_err(spawned)?;
                Listening { mapping, socket: Listener::Udp(Some(wake)), thread: Some(thread) }
            }
        })
    }

    /// The published ports as bound: a host port 0 is replaced by the port
    /// the kernel chose.
    pub fn published(&self) -> Vec<PortMapping> {
        self.listeners.iter().map(|l| l.mapping).collect()
    }

    /// Forwards new TCP connections and UDP flows into another network
    /// namespace (the container was restarted with a new one). Open TCP
    /// connections continue; each UDP client's next datagram opens a new
    /// flow.
    pub fn retarget(&self, netns: &Path) -> Result<(), PortError> {
        let new = Dialer::start(netns)?;
        let old = lock(&self.shared.dialer).replace(new);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = old {
            old.close();
        }
        Ok(())
    }

    /// The proxy's counters.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            active: lock(&self.shared.conns).open.len(),
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            flows: self.shared.flows.load(Ordering::Relaxed),
        }
    }

    /// Closes the listening sockets (their ports are free when this
    /// returns) and the UDP flows, lets open TCP connections finish for up
    /// to `grace`, then closes the rest.
    pub fn stop(mut self, grace: Duration) {
        self.shutdown(grace);
    }

    fn shutdown(&mut self, grace: Duration) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let shared = &*self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        for l in &mut self.listeners {
            match &mut l.socket {
                // Fails only if the socket is already shut down, which is the aim.
                Listener::Tcp(listener) => drop(netns::wake_listener(listener)),
                Listener::Udp(wake) => drop(wake.take()),
            }
        }
        for l in &mut self.listeners {
            if let Some(thread) = l.thread.take() {
                let _ = thread.join();
            }
        }
        self.listeners.clear();

        let mut conns = wait_for_connections(shared, lock(&shared.conns), Instant::now() + grace);
        conns.forced = true;
        for stream in conns.open.values().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // A thread still connecting gives up within CONNECT_TIMEOUT.
        let conns = wait_for_connections(shared, conns, Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(1));
        drop(conns);
        let dialer = lock(&shared.dialer).take();
        if let Some(dialer) = dialer {
            dialer.close();
        }
    }
}

impl Drop for ProxySet {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

/// A socket bound for one mapping, not yet served.
enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Bound {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Bound::Tcp(s) => s.local_addr(),
            Bound::Udp(s) => s.local_addr(),
        }
    }
}

fn wait_for_connections<'a>(
    shared: &'a Shared,
    mut conns: MutexGuard<'a, Conns>,
    deadline: Instant,
) -> MutexGuard<'a, Conns> {
    while !conns.open.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        conns = shared.ended.wait_timeout(conns, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
    }
    conns
}

fn bind_error(mapping: &PortMapping, source: io::Error) -> PortError {
    let (host, container_port, protocol) = (mapping.host, mapping.container_port, mapping.protocol);
    match source.kind() {
        io::ErrorKind::AddrInUse => PortError::InUse { host, container_port, protocol },
        io::ErrorKind::AddrNotAvailable => PortError::AddrNotAvailable { host, container_port, protocol, source },
        _ => PortError::Bind { host, container_port, protocol, source },
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent; a panic elsewhere
    // must not stop the proxy from shutting down.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
