//! Published ports: the shim (or the foreground supervisor) listens on the
//! host and forwards into the container's own network namespace, for TCP
//! and UDP, from `berth run -p` and from `ports` in berth.toml.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Berth, poll};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends `request` to 127.0.0.1:`port`, half-closes, and returns the
/// reply; `None` if anything failed or nothing came back. The proxy
/// accepts as soon as the container runs, and closes the connection while
/// the server inside does not listen yet: that is `None`, not an answer.
fn exchange(port: u16, request: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request).ok()?;
    s.shutdown(Shutdown::Write).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    (!reply.is_empty()).then_some(reply)
}

/// Waits until the server behind `port` answers `request`; returns the reply.
#[track_caller]
fn first_answer(port: u16, request: &[u8]) -> String {
    poll(&format!("an answer on 127.0.0.1:{port}"), || exchange(port, request))
}

fn get(port: u16, path: &str) -> String {
    first_answer(port, format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
}

#[test]
fn http_served_in_a_container_is_fetched_from_the_host() {
    let berth = Berth::with_busybox();
    let port = free_port();
    let publish = format!("{port}:8000");
    berth.detach(&[
        "--name",
        "www",
        "-p",
        &publish,
        "busybox",
        "sh",
        "-c",
        "mkdir /www; echo hello-from-berth > /www/index.html; exec httpd -f -p 8000 -h /www",
    ]);
    let reply = get(port, "/index.html");
    assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("hello-from-berth\n"), "{reply}");
    let ps = berth.run(&["ps"]).ok().to_owned();
    assert!(ps.contains(&format!("127.0.0.1:{port}->8000/tcp")), "{ps}");
    // The container's server is not on the host's network.
    assert!(TcpStream::connect(("127.0.0.1", 8000)).is_err() || std::net::TcpListener::bind("127.0.0.1:8000").is_err());
}

#[test]
fn connections_close_cleanly_both_ways() {
    let berth = Berth::with_busybox();
    let port = free_port();
    let publish = format!("{port}:9000");
    // A server that answers only after the client has finished sending.
    berth.detach(&["--name", "echo", "-p", &publish, "busybox", "nc", "-ll", "-p", "9000", "-e", "sh", "-c", "wc -c"]);
    // Ready once an empty request gets its count back (nc -ll keeps listening).
    assert_eq!(first_answer(port, b"").trim(), "0");
    let reply = exchange(port, &[b'x'; 100_000]).expect("a reply to the whole request");
    assert_eq!(reply.trim(), "100000", "half-close carried the whole request and the reply came back");
}

#[test]
fn a_port_in_use_is_refused_by_name() {
    let berth = Berth::with_busybox();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let publish = format!("{port}:80");
    let run = berth.run(&["run", "-d", "-p", &publish, "busybox", "sleep", "30"]);
    let err = run.fails_with(125).to_owned();
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("in use"), "{err}");
}

/// A port of 127.0.0.1 that is free for TCP and for UDP.
fn free_port_both() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port of 127.0.0.1 is free for both TCP and UDP");
}

/// Waits until `berth logs NAME` (run in `dir`) holds `line`.
fn wait_for_log(berth: &Berth, dir: &Path, name: &str, line: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = berth.run_in(dir, &["logs", name]);
        if logs.stdout.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < until, "{name} never logged {line:?}:\n{}{}", logs.stdout, logs.stderr);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `message` from `socket` to `to` until the reply to it comes back
/// (UDP may lose a datagram, so each try waits a little); the reply must
/// come from `to` itself. Replies to other messages are skipped.
fn ask_udp(socket: &UdpSocket, to: SocketAddr, message: &str) -> String {
    socket.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..80 {
        socket.send_to(message.as_bytes(), to).unwrap();
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!(from, to, "the reply must come from the published address");
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            if reply.starts_with(&format!("udp {message} from ")) {
                return reply;
            }
        }
    }
    panic!("no UDP reply to {message:?} from {to}");
}

/// The container-side peer address the echo server saw in `reply`.
fn peer(reply: &str) -> &str {
    reply.rsplit_once(" from ").map(|(_, p)| p).unwrap_or_else(|| panic!("not an echo reply: {reply}"))
}

#[test]
fn udp_is_published_and_each_client_gets_its_own_reply() {
    let berth = Berth::with_busybox();
    let port = free_port_both();
    let echo = support::image::echo_server();
    let bind = format!("{}:/echo-server:ro", echo.display());
    let publish = format!("{port}:5353/udp");
    berth.detach(&["--name", "dns", "-v", &bind, "-p", &publish, "busybox", "/echo-server", "5353"]);
    wait_for_log(&berth, &support::repo(), "dns", "ready 5353");

    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    let from_a = ask_udp(&a, to, "one-from-a");
    let from_b = ask_udp(&b, to, "one-from-b");
    // One flow per client: the server sees two different peers, and a
    // client's next datagram goes through its own flow again.
    assert_ne!(peer(&from_a), peer(&from_b), "{from_a} / {from_b}");
    let again = ask_udp(&a, to, "two-from-a");
    assert_eq!(peer(&again), peer(&from_a), "{again} / {from_a}");

    let ps = berth.run(&["ps"]).ok().to_owned();
    assert!(ps.contains(&format!("127.0.0.1:{port}->5353/udp")), "{ps}");
}

#[test]
fn berth_toml_publishes_tcp_and_udp_on_one_port_number() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::copy(support::image::echo_server(), dir.path().join("echo-server")).unwrap();
    let port = free_port_both();
    let manifest = format!(
        r#"
project = "udp"

[env.dns]
image = "rootfs:busybox.tar"
copy = [{{ src = "echo-server", dest = "/usr/local/bin/echo-server", mode = "0755" }}]
cmd = ["/usr/local/bin/echo-server", "53"]
ports = ["{port}:53/udp", "127.0.0.1:{port}:53/tcp"]
"#
    );
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains(&format!("127.0.0.1:{port}->53/udp")), "{plan}");
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    wait_for_log(&berth, dir.path(), "dns", "ready 53");

    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Through the shim's proxy the server sees 127.0.0.1; through the kernel's
    // DNAT (a project env as root), the project's gateway 10.123.N.1.
    let via_host = |peer: &str| peer.starts_with("127.0.0.1:") || peer.starts_with("10.123.");
    let reply = ask_udp(&udp, to, "over-udp");
    assert!(reply.starts_with("udp over-udp from ") && via_host(peer(&reply)), "{reply}");
    let mut tcp = TcpStream::connect(to).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"over-tcp\n").unwrap();
    let mut line = String::new();
    BufReader::new(&tcp).read_line(&mut line).unwrap();
    assert!(line.starts_with("tcp over-tcp from ") && via_host(peer(line.trim())), "{line}");

    let ps = berth.run_in(dir.path(), &["ps"]).ok().to_owned();
    assert!(
        ps.contains(&format!("127.0.0.1:{port}->53/udp")) && ps.contains(&format!("127.0.0.1:{port}->53/tcp")),
        "{ps}"
    );
    berth.run_in(dir.path(), &["down"]).ok();
}
