//! The TCP proxy behind published ports: listeners, the dialer thread inside
//! the container's network namespace, and the per-connection copy threads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{PortError, Publish};
use crate::sys::netns;

/// How long a connection into the container may take before the client's
/// connection is closed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once per [`ProxySet`]; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 1024;
/// The copy buffer of each direction of a connection.
const BUFFER: usize = 16 * 1024;
/// The stack of each proxy thread; they only copy bytes.
const STACK: usize = 256 * 1024;

/// The published ports of one container, served until [`stop`](Self::stop)
/// (or drop, which stops without a grace time).
pub struct ProxySet {
    listeners: Vec<Listening>,
    shared: Arc<Shared>,
    stopped: bool,
}

struct Listening {
    publish: Publish,
    listener: Arc<TcpListener>,
    thread: Option<JoinHandle<()>>,
}

/// Counters of a [`ProxySet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections open now.
    pub active: usize,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections closed because the container refused them (or did not
    /// answer, or too many were open).
    pub failed: u64,
}

struct Shared {
    dialer: Mutex<Option<Dialer>>,
    conns: Mutex<Conns>,
    /// Notified whenever a connection ends.
    ended: Condvar,
    /// Listeners are closing: accept no more.
    stopping: AtomicBool,
    accepted: AtomicU64,
    failed: AtomicU64,
}

#[derive(Default)]
struct Conns {
    next_id: u64,
    /// Per open connection, clones of its sockets, to shut them down when
    /// the grace time is over.
    open: HashMap<u64, Vec<TcpStream>>,
    /// The grace time is over: connections still being set up are closed.
    forced: bool,
}

impl ProxySet {
    /// Listens on every `publishes[i].host`, then forwards each connection to
    /// `container_port` inside the network namespace `netns`
    /// (`/proc/PID/ns/net`). All listeners are bound before anything is
    /// served; if one cannot be, none stays open.
    pub fn start(publishes: &[Publish], netns: &Path) -> Result<ProxySet, PortError> {
        let mut bound = Vec::with_capacity(publishes.len());
        for publish in publishes {
            let listener = TcpListener::bind(publish.host).map_err(|e| bind_error(publish, e))?;
            let host = listener.local_addr().map_err(|e| bind_error(publish, e))?;
            bound.push((Publish { host, ..*publish }, listener));
        }
        let shared = Arc::new(Shared {
            dialer: Mutex::new(Some(Dialer::start(netns)?)),
            conns: Mutex::new(Conns::default()),
            ended: Condvar::new(),
            stopping: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let mut set = ProxySet { listeners: Vec::new(), shared, stopped: false };
        for (publish, listener) in bound {
            let listener = Arc::new(listener);
            let (l, s) = (Arc::clone(&listener), Arc::clone(&set.shared));
            // On failure `set` is dropped, which stops what already runs.
            let thread = thread::Builder::new()
                .name(format!("port-{}", publish.host.port()))
                .stack_size(STACK)
                .spawn(move || accept_loop(&l, &s, publish.container_port))
                .map_err(|source| PortError::Spawn { what: "listener", source })?;
            set.listeners.push(Listening { publish, listener, thread: Some(thread) });
        }
        Ok(set)
    }

    /// The published ports as bound: a host port 0 is replaced by the port
    /// the kernel chose.
    pub fn published(&self) -> Vec<Publish> {
        self.listeners.iter().map(|l| l.publish).collect()
    }

    /// Forwards new connections into another network namespace (the
    /// container was restarted with a new one). Open connections continue.
    pub fn retarget(&self, netns: &Path) -> Result<(), PortError> {
        let new = Dialer::start(netns)?;
        let old = lock(&self.shared.dialer).replace(new);
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
        }
    }

    /// Closes the listeners (their ports are free when this returns), lets
    /// open connections finish for up to `grace`, then closes the rest.
    pub fn stop(mut self, grace: Duration) {
        self.shutdown(grace);
    }

    fn shutdown(&mut self, grace: Duration) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let shared = &*self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        for l in &self.listeners {
            // Fails only if the socket is already shut down, which is the aim.
            let _ = netns::wake_listener(&l.listener);
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

fn bind_error(publish: &Publish, source: io::Error) -> PortError {
    let (host, container_port) = (publish.host, publish.container_port);
    match source.kind() {
        io::ErrorKind::AddrInUse => PortError::InUse { host, container_port },
        io::ErrorKind::AddrNotAvailable => PortError::AddrNotAvailable { host, container_port, source },
        _ => PortError::Bind { host, container_port, source },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent; a panic elsewhere
    // must not stop the proxy from shutting down.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves one listener until it is woken by [`ProxySet::stop`].
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, container_port: u16) {
    loop {
        let client = match listener.accept() {
            Ok((client, _peer)) => client,
            Err(_) if shared.stopping.load(Ordering::SeqCst) => return,
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted) => continue,
            Err(_) => {
                // Out of file descriptors or memory: let connections end.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let Some(conn) = Connection::register(shared, &client) else {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let spawned = thread::Builder::new()
            .name("port-conn".into())
            .stack_size(STACK)
            .spawn(move || conn.serve(client, container_port));
        if spawned.is_err() {
            shared.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One accepted connection; unregisters itself when dropped.
struct Connection {
    shared: Arc<Shared>,
    id: u64,
}

impl Connection {
    fn register(shared: &Arc<Shared>, client: &TcpStream) -> Option<Connection> {
        let clone = client.try_clone().ok()?;
        let mut conns = lock(&shared.conns);
        if conns.open.len() >= MAX_CONNECTIONS || conns.forced {
            return None;
        }
        let id = conns.next_id;
        conns.next_id += 1;
        conns.open.insert(id, vec![clone]);
        Some(Connection { shared: Arc::clone(shared), id })
    }

    /// Registers the upstream socket; false if the proxy is being forced shut.
    fn add(&self, upstream: &TcpStream) -> bool {
        let Ok(clone) = upstream.try_clone() else { return false };
        let mut conns = lock(&self.shared.conns);
        if conns.forced {
            return false;
        }
        match conns.open.get_mut(&self.id) {
            Some(streams) => {
                streams.push(clone);
                true
            }
            None => false,
        }
    }

    fn serve(self, client: TcpStream, container_port: u16) {
        let upstream = match self.dial(container_port) {
            Ok(upstream) if self.add(&upstream) => upstream,
            _ => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                return; // dropping `client` closes it
            }
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else { return };
        let back =
            thread::Builder::new().name("port-conn".into()).stack_size(STACK).spawn(move || pipe(&upstream2, &client2));
        match back {
            Ok(back) => {
                pipe(&client, &upstream);
                let _ = back.join();
            }
            Err(_) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Connects to the container's port on 127.0.0.1, then on ::1.
    fn dial(&self, port: u16) -> io::Result<TcpStream> {
        let mut last = io::Error::other("no address to try");
        for ip in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)] {
            let addr = SocketAddr::new(ip, port);
            let socket = self.socket(addr)?;
            match netns::connect(socket, addr, CONNECT_TIMEOUT) {
                Ok(stream) => return Ok(stream),
                // Nothing answered: ::1 would only make the client wait twice.
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A socket of `addr`'s family in the container's network namespace.
    fn socket(&self, addr: SocketAddr) -> io::Result<OwnedFd> {
        let requests = match &*lock(&self.shared.dialer) {
            Some(dialer) => dialer.requests.clone(),
            None => return Err(io::Error::other("the proxy is stopping")),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        requests.send(DialRequest { addr, reply }).map_err(|_| io::Error::other("the dialer thread has ended"))?;
        answer.recv().map_err(|_| io::Error::other("the dialer thread has ended"))?
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        lock(&self.shared.conns).open.remove(&self.id);
        self.shared.ended.notify_all();
    }
}

/// Copies `from` to `to` until `from` ends, then shuts down writing on `to`
/// so that the other side sees the end too. On an error, shuts both
/// sockets down completely, which also ends the other direction.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    let mut reader = from;
    let mut writer = to;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if writer.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The thread that lives in the container's network namespace and creates
/// sockets there on request.
struct Dialer {
    requests: mpsc::Sender<DialRequest>,
    thread: JoinHandle<()>,
}

struct DialRequest {
    addr: SocketAddr,
    reply: mpsc::SyncSender<io::Result<OwnedFd>>,
}

impl Dialer {
    fn start(netns: &Path) -> Result<Dialer, PortError> {
        let path = netns.to_owned();
        let ns = File::open(netns).map_err(|source| PortError::OpenNetns { path: path.clone(), source })?;
        let (requests, incoming) = mpsc::channel::<DialRequest>();
        let (ready_tx, ready) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name("port-dialer".into())
            .stack_size(STACK)
            .spawn(move || {
                // This thread never leaves the namespace; it ends with the proxy.
                let entered = netns::enter_net_ns(&ns);
                drop(ns);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    for request in incoming {
                        let _ = request.reply.send(netns::stream_socket(&request.addr));
                    }
                }
            })
            .map_err(|source| PortError::Spawn { what: "dialer", source })?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Dialer { requests, thread }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(PortError::EnterNetns { path, source })
            }
            Err(_) => {
                let _ = thread.join();
                Err(PortError::EnterNetns { path, source: io::Error::other("the dialer thread ended early") })
            }
        }
    }

    /// Ends the thread once no request is pending.
    fn close(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}
