//! Published ports: the shim (or the foreground supervisor) listens on the
//! host and forwards into the container's own network namespace.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

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
