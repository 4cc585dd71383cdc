//! The UDP side of the proxy: one relay thread per published UDP port,
//! waiting on the host socket and on every flow at once (the rules are on
//! the module page).

use std::collections::HashMap;
use std::io::{self, PipeReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::dialer::Kind;
use super::proxy::Shared;
use crate::sys::netns;

/// A flow with no datagram either way for this long is dropped (the
/// timeout of Docker's userland proxy).
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// UDP flows (client addresses) open at once per published UDP port; a new
/// client beyond that replaces the least recently active one.
pub const MAX_UDP_FLOWS: usize = 256;
/// The receive buffer: the largest UDP payload fits.
const DATAGRAM: usize = 64 * 1024;
/// Datagrams read from one socket per wake-up, so that one busy client
/// cannot starve the others.
const BURST: usize = 64;

/// One client's flow: a socket in the container's namespace, connected to
/// the container's port.
struct Flow {
    upstream: UdpSocket,
    /// The last datagram either way.
    last: Instant,
    /// [`Shared::generation`] when the flow was opened.
    generation: u64,
}

/// Relays datagrams between `host` and `container_port` inside the
/// container until `woken` hangs up (its writer is dropped by
/// [`ProxySet::stop`](super::ProxySet::stop)).
pub(super) fn relay(host: &UdpSocket, woken: &PipeReader, shared: &Shared, container_port: u16) {
    if host.set_nonblocking(true).is_err() {
        return; // cannot happen on a socket std has just bound
    }
    let mut relay = Relay { host, shared, container_port, flows: HashMap::new(), buf: vec![0u8; DATAGRAM] };
    relay.run(woken);
    shared.flows.fetch_sub(relay.flows.len(), Ordering::Relaxed);
}

struct Relay<'a> {
    host: &'a UdpSocket,
    shared: &'a Shared,
    container_port: u16,
    flows: HashMap<SocketAddr, Flow>,
    buf: Vec<u8>,
}

impl Relay<'_> {
    fn run(&mut self, woken: &PipeReader) {
        while !self.shared.stopping.load(Ordering::SeqCst) {
            let next_expiry = self.expire(Instant::now());
            let clients: Vec<SocketAddr> = self.flows.keys().copied().collect();
            let waited = {
                let mut fds = vec![woken.as_fd(), self.host.as_fd()];
                fds.extend(clients.iter().map(|c| self.flows[c].upstream.as_fd()));
                netns::wait_readable(&fds, next_expiry)
            };
            let ready = match waited {
                Ok(ready) => ready,
                Err(_) => {
                    // Out of memory: let the moment pass.
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if ready[0] {
                return; // the proxy is stopping
            }
            for (client, _) in clients.iter().zip(&ready[2..]).filter(|(_, ready)| **ready) {
                self.forward_replies(*client);
            }
            if ready[1] {
                self.forward_requests();
            }
        }
    }

    /// Drops the flows idle for the timeout; the time until the next one is.
    fn expire(&mut self, now: Instant) -> Option<Duration> {
        let idle = self.shared.udp.idle_timeout;
        let before = self.flows.len();
        self.flows.retain(|_, flow| now.duration_since(flow.last) < idle);
        self.shared.flows.fetch_sub(before - self.flows.len(), Ordering::Relaxed);
        self.flows.values().map(|flow| (flow.last + idle).saturating_duration_since(now)).min()
    }

    /// Forwards what clients sent, each through its own flow.
    fn forward_requests(&mut self) {
        for _ in 0..BURST {
            let (n, client) = match self.host.recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // nothing more to read now
            };
            let Some(flow) = flow_for(&mut self.flows, self.shared, self.container_port, client) else { continue };
            flow.last = Instant::now();
            let datagram = &self.buf[..n];
            // ECONNREFUSED reports an earlier datagram that nothing in the
            // container received; this one is then sent by a second try.
            if let Err(e) = flow.upstream.send(datagram)
                && e.kind() == io::ErrorKind::ConnectionRefused
            {
                let _ = flow.upstream.send(datagram);
            }
        }
    }

    /// Sends what came back on `client`'s flow to the client, from the host
    /// socket.
    fn forward_replies(&mut self, client: SocketAddr) {
        let Some(flow) = self.flows.get_mut(&client) else { return };
        for _ in 0..BURST {
            match flow.upstream.recv(&mut self.buf) {
                Ok(n) => {
                    flow.last = Instant::now();
                    let _ = self.host.send_to(&self.buf[..n], client);
                }
                // A refusal only reports a datagram lost earlier.
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused) => {}
                Err(_) => return, // nothing more to read now
            }
        }
    }
}

/// `client`'s flow, opened (in the current namespace) if it has none.
fn flow_for<'f>(
    flows: &'f mut HashMap<SocketAddr, Flow>,
    shared: &Shared,
    container_port: u16,
    client: SocketAddr,
) -> Option<&'f mut Flow> {
    let generation = shared.generation.load(Ordering::SeqCst);
    let current = flows.get(&client).is_some_and(|flow| flow.generation == generation);
    if !current {
        if flows.remove(&client).is_some() {
            shared.flows.fetch_sub(1, Ordering::Relaxed);
        }
        if flows.len() >= shared.udp.max_flows.max(1) {
            let oldest = flows.iter().min_by_key(|(_, flow)| flow.last).map(|(c, _)| *c);
            if let Some(oldest) = oldest {
                flows.remove(&oldest);
                shared.flows.fetch_sub(1, Ordering::Relaxed);
            }
        }
        match open(shared, container_port) {
            Ok(upstream) => {
                flows.insert(client, Flow { upstream, last: Instant::now(), generation });
                shared.flows.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
    }
    flows.get_mut(&client)
}

/// A UDP socket in the container's namespace, connected to its port on
/// 127.0.0.1.
fn open(shared: &Shared, container_port: u16) -> io::Result<UdpSocket> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, container_port));
    let socket = UdpSocket::from(shared.socket(addr, Kind::Datagram)?);
    socket.connect(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}
