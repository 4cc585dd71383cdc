//! End-to-end tests of the proxy against TCP and UDP servers inside a real
//! network namespace that each test creates (`unshare -n sleep`) and
//! removes (the helper is killed by pid when the test ends, also on
//! failure).
//!
//! They need root, `unshare`, `nsenter` and `ip`; without them they pass
//! without testing anything, saying so on stderr.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;
use crate::sys::netns;

/// A network namespace held open by a `sleep` process; killed on drop.
struct NetNs {
    child: Child,
    path: PathBuf,
}

impl NetNs {
    /// A new namespace with `lo` up, or `None` if this machine cannot make one.
    fn new() -> Option<NetNs> {
        if crate::sys::euid() != 0 {
            eprintln!("skipped: network namespace tests need root");
            return None;
        }
        let child = match Command::new("unshare").args(["-n", "sleep", "300"]).stdin(Stdio::null()).spawn() {
            Ok(child) => child,
            Err(e) => {
                eprintln!("skipped: cannot run unshare: {e}");
                return None;
            }
        };
        let path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let ns = NetNs { child, path };
        // Until unshare(2) has run, the child is still in our namespace.
        let ours = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_link(&ns.path).ok().is_none_or(|theirs| theirs == ours) {
            assert!(Instant::now() < deadline, "unshare -n did not create a namespace");
            thread::sleep(Duration::from_millis(5));
        }
        let status = Command::new("nsenter")
            .args(["-t", &ns.child.id().to_string(), "-n", "ip", "link", "set", "lo", "up"])
            .status()
            .expect("run nsenter ip link set lo up");
        assert!(status.success(), "ip link set lo up failed in the test namespace");
        Some(ns)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test server does with each connection.
#[derive(Clone, Copy)]
enum Behavior {
    /// Writes back what it reads as it reads it; ends when the client does.
    Echo,
    /// Reads everything until the client half-closes, then answers with
    /// `got N bytes:` and the bytes, then closes.
    ReplyAfterEof,
}

/// A TCP server on a thread inside a namespace; stopped on drop.
struct Server {
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl Server {
    fn start(ns: &Path, ip: &str, behavior: Behavior) -> io::Result<Server> {
        Server::start_on(ns, ip, 0, behavior)
    }

    fn start_on(ns: &Path, ip: &str, port: u16, behavior: Behavior) -> io::Result<Server> {
        let ns = File::open(ns)?;
        let ip: std::net::IpAddr = ip.parse().map_err(io::Error::other)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let bound =
                netns::enter_net_ns(&ns).and_then(|()| TcpListener::bind(SocketAddr::new(ip, port))).map(Arc::new);
            let listener = match bound {
                Ok(l) => l,
                Err(e) => return tx.send(Err(e)).unwrap_or(()),
            };
            let _ = tx.send(Ok(Arc::clone(&listener)));
            let mut handlers = Vec::new();
            while let Ok((conn, _)) = listener.accept() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                handlers.push(thread::spawn(move || serve(conn, behavior)));
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        let listener = rx.recv().map_err(io::Error::other)??;
        let port = listener.local_addr()?.port();
        Ok(Server { listener, stop, thread: Some(thread), port })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = netns::wake_listener(&self.listener);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, behavior: Behavior) {
    let mut buf = [0u8; 8192];
    match behavior {
        Behavior::Echo => loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        },
        Behavior::ReplyAfterEof => {
            let mut all = Vec::new();
            if conn.read_to_end(&mut all).is_ok() {
                let _ = conn.write_all(format!("got {} bytes:", all.len()).as_bytes());
                let _ = conn.write_all(&all);
            }
        }
    }
}

fn publish_any_port(container_port: u16) -> PortMapping {
    any_port(container_port, Protocol::Tcp)
}

/// 127.0.0.1:<any free port> to `container_port`.
fn any_port(container_port: u16, protocol: Protocol) -> PortMapping {
    PortMapping { host: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0), container_port, protocol }
}

/// A proxy on 127.0.0.1:<free port> to `container_port` in `ns`; its address.
fn proxy(ns: &NetNs, container_port: u16) -> (ProxySet, SocketAddr) {
    let set = ProxySet::start(&[publish_any_port(container_port)], &ns.path).expect("start proxy");
    let addr = set.published()[0].host;
    assert_ne!(addr.port(), 0);
    (set, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the proxy");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    stream
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

#[test]
fn forwards_into_the_namespace() {
    let Some(ns) = NetNs::new() else { return };
    let server = Server::start(&ns.path, "127.0.0.1", Behavior::Echo).expect("server");
    // The server is unreachable from the host's namespace...
    let direct = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port));
    assert!(direct.is_err(), "the test server is reachable from the host namespace");
    // ...and reachable through the proxy.
    let (set, addr) = proxy(&ns, server.port);
    let mut client = connect(addr);
    client.write_all(b"hello through the proxy").expect("write");
    let mut buf = [0u8; 23];
    client.read_exact(&mut buf).expect("read echo");
    assert_eq!(&buf, b"hello through the proxy");
    drop(client);
    set.stop(Duration::from_secs(5));
    assert!(TcpStream::connect(addr).is_err(), "the port must be closed after stop");
}

#[test]
fn a_half_closing_client_still_gets_the_whole_reply() {
    let Some(ns) = NetNs::new() else { return };
    let server = Server::start(&ns.path, "127.0.0.1", Behavior::ReplyAfterEof).expect("server");
    let (_set, addr) = proxy(&ns, server.port);
    let mut client = connect(addr);
    let body = pattern(300_000, 1);
    client.write_all(&body).expect("write");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).expect("read reply until the server closes");
    let header = b"got 300000 bytes:";
    assert_eq!(&reply[..header.len()], header);
    assert!(reply[header.len()..] == body[..], "the reply must hold every byte sent");
}

#[test]
fn a_port_in_use_names_the_address_and_binds_nothing() {
    let Some(ns) = NetNs::new() else { return };
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let free_addr = free.local_addr().expect("addr");
    drop(free);
    let publishes = [
        PortMapping { host: free_addr, container_port: 80, protocol: Protocol::Tcp },
        PortMapping { host: taken_addr, container_port: 81, protocol: Protocol::Tcp },
    ];
    let err = ProxySet::start(&publishes, &ns.path).err().expect("the second port is taken");
    assert!(matches!(err, PortError::InUse { .. }), "{err}");
    assert!(err.to_string().contains(&format!("{taken_addr} is already in use")), "{err}");
    // The first listener was closed again.
    TcpListener::bind(free_addr).expect("the first port must be free again");
}

#[test]
fn a_refused_connection_closes_the_client_promptly() {
    let Some(ns) = NetNs::new() else { return };
    // A port nobody listens on inside the namespace.
    let closed_port = Server::start(&ns.path, "127.0.0.1", Behavior::Echo).expect("server").port;
    let (set, addr) = proxy(&ns, closed_port);
    // Promptly: closed by the proxy, not left open until the client's read
    // times out (`connect`'s 20 s).
    let mut client = connect(addr);
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("read {n} bytes from a refused connection"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "the proxy kept it open: {e}"),
    }
    assert_eq!(set.stats().failed, 1);
}

#[test]
fn falls_back_to_ipv6_loopback() {
    let Some(ns) = NetNs::new() else { return };
    let server = match Server::start(&ns.path, "::1", Behavior::Echo) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback in the namespace: {e}");
            return;
        }
    };
    let (_set, addr) = proxy(&ns, server.port);
    let mut client = connect(addr);
    client.write_all(b"v6").expect("write");
    let mut buf = [0u8; 2];
    client.read_exact(&mut buf).expect("read echo");
    assert_eq!(&buf, b"v6");
}

#[test]
fn serves_twenty_connections_at_once() {
    let Some(ns) = NetNs::new() else { return };
    let server = Server::start(&ns.path, "127.0.0.1", Behavior::Echo).expect("server");
    let (set, addr) = proxy(&ns, server.port);
    let clients: Vec<_> = (0..20)
        .map(|i| {
            thread::spawn(move || {
                let mut client = connect(addr);
                let body = pattern(200_000 + i * 1000, i);
                let writer = {
                    let (mut w, body) = (client.try_clone().expect("clone"), body.clone());
                    thread::spawn(move || {
                        w.write_all(&body).expect("write");
                        w.shutdown(Shutdown::Write).expect("half-close");
                    })
                };
                let mut echoed = Vec::new();
                client.read_to_end(&mut echoed).expect("read echo");
                writer.join().expect("writer");
                echoed == body
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert!(c.join().expect("client thread"), "connection {i} got different bytes back");
    }
    let stats = set.stats();
    assert_eq!((stats.accepted, stats.failed), (20, 0));
    let deadline = Instant::now() + Duration::from_secs(60);
    while set.stats().active > 0 {
        assert!(Instant::now() < deadline, "connections stayed open: {:?}", set.stats());
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn stop_waits_for_the_grace_time_then_closes_connections() {
    let Some(ns) = NetNs::new() else { return };
    let server = Server::start(&ns.path, "127.0.0.1", Behavior::Echo).expect("server");
    let (set, addr) = proxy(&ns, server.port);
    let mut idle = connect(addr);
    idle.write_all(b"x").expect("write");
    let mut one = [0u8; 1];
    idle.read_exact(&mut one).expect("echo");
    let started = Instant::now();
    set.stop(Duration::from_millis(300));
    let took = started.elapsed();
    // The upper bound only tells a hang from waiting out the grace time.
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(60), "stop took {took:?}");
    assert_eq!(idle.read(&mut one).expect("read after stop"), 0, "the client must see the end");
}

#[test]
fn retargets_to_another_namespace() {
    let Some(first) = NetNs::new() else { return };
    let Some(second) = NetNs::new() else { return };
    let a = Server::start(&first.path, "127.0.0.1", Behavior::ReplyAfterEof).expect("server a");
    let (set, addr) = proxy(&first, a.port);
    // The same port in the second namespace, answering differently.
    let _b = Server::start_on(&second.path, "127.0.0.1", a.port, Behavior::Echo).expect("server b");
    set.retarget(&second.path).expect("retarget");
    let mut client = connect(addr);
    client.write_all(b"ping").expect("write");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).expect("read");
    // Echo from the second namespace, not "got 4 bytes:ping" from the first.
    assert_eq!(reply, b"ping");
}

#[test]
fn a_path_that_is_not_a_network_namespace_is_rejected() {
    let Some(ns) = NetNs::new() else { return };
    let missing = ProxySet::start(&[publish_any_port(80)], Path::new("/proc/0/ns/net")).err().expect("missing");
    assert!(matches!(missing, PortError::OpenNetns { .. }), "{missing}");
    let mnt = ns.path.with_file_name("mnt");
    let wrong = ProxySet::start(&[publish_any_port(80)], &mnt).err().expect("not a netns");
    assert!(matches!(wrong, PortError::EnterNetns { .. }), "{wrong}");
    assert!(wrong.to_string().contains("must be a network namespace"), "{wrong}");
}

/// A UDP server on a thread inside a namespace that answers each datagram
/// with `TAG DATA from PEER`; stopped on drop.
struct UdpServer {
    socket: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl UdpServer {
    fn start(ns: &Path, port: u16, tag: &'static str) -> UdpServer {
        let ns = File::open(ns).expect("open netns");
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            netns::enter_net_ns(&ns).expect("enter the test namespace");
            let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).expect("bind UDP in the namespace"));
            tx.send(Arc::clone(&socket)).expect("send the socket");
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let reply = format!("{tag} {} from {peer}", String::from_utf8_lossy(&buf[..n]));
                let _ = socket.send_to(reply.as_bytes(), peer);
            }
        });
        let socket = rx.recv().expect("the server socket");
        let port = socket.local_addr().expect("addr").port();
        UdpServer { socket, stop, thread: Some(thread), port }
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the server's recv_from with a datagram of its own.
        let addr = self.socket.local_addr().expect("addr");
        let _ = self.socket.send_to(b"", addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP proxy on 127.0.0.1:<free port> to `container_port` in `ns`.
fn udp_proxy(ns: &NetNs, container_port: u16, limits: UdpLimits) -> (ProxySet, SocketAddr) {
    let set = ProxySet::start_with(&[any_port(container_port, Protocol::Udp)], &ns.path, limits).expect("start proxy");
    let addr = set.published()[0].host;
    assert_ne!(addr.port(), 0);
    (set, addr)
}

/// Sends `message` until its reply comes back from `to` (UDP may drop a
/// datagram); returns the reply.
fn ask(socket: &UdpSocket, to: SocketAddr, message: &str) -> String {
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
    let mut buf = [0u8; 2048];
    for _ in 0..50 {
        socket.send_to(message.as_bytes(), to).expect("send");
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!(from, to, "replies come from the published address");
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            if reply.contains(&format!(" {message} from ")) {
                return reply;
            }
        }
    }
    panic!("no reply to {message:?} from {to}");
}

fn client() -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a client socket")
}

fn peer(reply: &str) -> String {
    reply.rsplit_once(" from ").expect("a reply").1.to_owned()
}

/// Polls `done` for up to 10 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn udp_gives_each_client_its_own_flow() {
    let Some(ns) = NetNs::new() else { return };
    let server = UdpServer::start(&ns.path, 0, "echo");
    // Unreachable from the host's namespace: only the proxy gets there.
    let (set, addr) = udp_proxy(&ns, server.port, UdpLimits::default());
    let (a, b) = (client(), client());
    let first_a = ask(&a, addr, "a1");
    let first_b = ask(&b, addr, "b1");
    assert!(first_a.starts_with("echo a1 from 127.0.0.1:"), "{first_a}");
    assert_ne!(peer(&first_a), peer(&first_b), "two clients, two flows");
    assert_eq!(peer(&ask(&a, addr, "a2")), peer(&first_a), "a client keeps its flow");
    assert_eq!(set.stats().flows, 2);
    set.stop(Duration::ZERO);
    UdpSocket::bind(addr).expect("the UDP port is free after stop");
}

#[test]
fn an_idle_udp_flow_is_dropped_and_the_client_gets_a_new_one() {
    let Some(ns) = NetNs::new() else { return };
    let server = UdpServer::start(&ns.path, 0, "echo");
    let limits = UdpLimits { idle_timeout: Duration::from_millis(300), ..UdpLimits::default() };
    let (set, addr) = udp_proxy(&ns, server.port, limits);
    let a = client();
    let before = peer(&ask(&a, addr, "before"));
    assert_eq!(set.stats().flows, 1);
    wait_until("the idle flow to be dropped", || set.stats().flows == 0);
    let after = peer(&ask(&a, addr, "after"));
    assert_ne!(before, after, "a new flow, so a new source port inside");
    assert_eq!(set.stats().flows, 1);
}

#[test]
fn udp_flows_are_capped_and_the_least_recent_gives_way() {
    let Some(ns) = NetNs::new() else { return };
    let server = UdpServer::start(&ns.path, 0, "echo");
    let limits = UdpLimits { max_flows: 2, ..UdpLimits::default() };
    let (set, addr) = udp_proxy(&ns, server.port, limits);
    let clients: Vec<UdpSocket> = (0..3).map(|_| client()).collect();
    let peers: Vec<String> = clients.iter().enumerate().map(|(i, c)| peer(&ask(c, addr, &format!("c{i}")))).collect();
    assert_eq!(set.stats().flows, 2, "never more than the cap");
    // Client 0 was the least recently active: it was replaced, and comes
    // back with a new flow; client 2 still has its own.
    assert_ne!(peer(&ask(&clients[0], addr, "c0-again")), peers[0]);
    assert_eq!(peer(&ask(&clients[2], addr, "c2-again")), peers[2]);
    assert_eq!(set.stats().flows, 2);
}

#[test]
fn udp_follows_a_retarget_to_the_new_namespace() {
    let Some(first) = NetNs::new() else { return };
    let Some(second) = NetNs::new() else { return };
    let old = UdpServer::start(&first.path, 0, "old");
    let _new = UdpServer::start(&second.path, old.port, "new");
    let (set, addr) = udp_proxy(&first, old.port, UdpLimits::default());
    let a = client();
    assert!(ask(&a, addr, "x").starts_with("old x"));
    set.retarget(&second.path).expect("retarget");
    assert!(ask(&a, addr, "y").starts_with("new y"), "the same client reaches the new namespace");
}

#[test]
fn a_udp_port_in_use_is_refused_and_tcp_on_the_same_number_is_not() {
    let Some(ns) = NetNs::new() else { return };
    let taken = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    let udp = PortMapping { host: taken_addr, container_port: 53, protocol: Protocol::Udp };
    let err = ProxySet::start(&[udp], &ns.path).err().expect("the UDP port is taken");
    assert!(matches!(err, PortError::InUse { .. }), "{err}");
    assert!(err.to_string().contains(&format!("port 53/udp: {taken_addr} is already in use")), "{err}");
    // TCP and UDP ports are separate: the same number is free for TCP.
    if TcpListener::bind(taken_addr).is_ok() {
        let tcp = PortMapping { protocol: Protocol::Tcp, ..udp };
        ProxySet::start(&[tcp], &ns.path).expect("TCP on the number UDP holds");
    }
}
