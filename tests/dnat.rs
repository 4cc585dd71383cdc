//! Published ports through the kernel (DNAT in `inet berth`) for
//! containers with a bridge address, the proxy where DNAT does not apply,
//! the elements' lifecycle (stop, start, rm, a killed shim and `fsck
//! --repair`), envs' DNS forwarded to a resolver on the host's loopback,
//! and the guard that keeps envs away from the host's other loopback
//! services.
//!
//! Traffic goes only to loopback and to the bridges and namespaces these
//! tests made. The tests take one lock: each compares the host's berth
//! links and rules, which another test's containers change.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::image::require_tool;
use support::{Berth, poll};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What the host has of berth: links, addresses, routes and the nftables
/// table.
fn berth_state() -> String {
    let ip = require_tool("ip", "iproute2");
    let nft = require_tool("nft", "nftables");
    let run = |program: &Path, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let ours = |text: String| -> String {
        text.lines().filter(|l| l.contains("berth") || l.contains("10.123.")).map(|l| format!("{l}\n")).collect()
    };
    format!(
        "links:\n{}addresses:\n{}routes:\n{}nft:\n{}",
        ours(run(&ip, &["-d", "link"])),
        ours(run(&ip, &["addr"])),
        ours(run(&ip, &["route"])),
        run(&nft, &["list", "table", "inet", "berth"]).replace("Error: No such file or directory", "no table")
    )
}

/// Waits until berth's table holds `text` (the shim adds a container's
/// elements once it has opened its ports, after `run -d` returned).
#[track_caller]
fn wait_for_element(text: &str) {
    support::wait_until(&format!("{text:?} in table inet berth"), || table().contains(text));
}

fn table() -> String {
    let out = Command::new(require_tool("nft", "nftables")).args(["list", "table", "inet", "berth"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The default gateway of `container`: its bridge's address.
fn gateway(berth: &Berth, container: &str) -> Ipv4Addr {
    let route = berth.run(&["exec", container, "ip", "-4", "route", "show", "default"]).ok().to_owned();
    let via = route.split_whitespace().skip_while(|w| *w != "via").nth(1);
    via.and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("no default route in {container}: {route:?}"))
}

/// A server on port 9000 (all addresses) that answers each connection
/// with the peer address it sees. The client may have shut down its side
/// by the time netstat runs, or not yet: its connection is CLOSE_WAIT or
/// ESTABLISHED here.
const PEER_SERVER: &str = "printf '#!/bin/sh\\nnetstat -tn | awk '\"'\"'$4 ~ /:9000$/ && ($6 == \"ESTABLISHED\" || $6 == \"CLOSE_WAIT\") {print $5}'\"'\"'\\n' > /peer \
     && chmod +x /peer && exec nc -ll -p 9000 -e /peer";

/// The peer the server behind `addr` saw; `None` until it answers.
fn seen_from(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.shutdown(Shutdown::Write).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    unmapped(&reply)
}

/// `text` trimmed, an IPv4-mapped address (`::ffff:10.123.0.1:40000`,
/// from busybox's dual-stack listener) shown as IPv4; `None` when empty.
fn unmapped(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.strip_prefix("::ffff:").unwrap_or(text).to_owned())
}

#[test]
fn a_bridge_containers_published_ports_go_through_the_kernel_while_it_runs() {
    let _one = serial();
    let before = berth_state();
    let berth = Berth::with_busybox();
    let (lo, any) = (free_port(), free_port());
    let (lo_map, any_map) = (format!("127.0.0.1:{lo}:9000"), format!("0.0.0.0:{any}:9000"));
    berth.detach(&[
        "--name",
        "peer",
        "--network",
        "bridge",
        "-p",
        &lo_map,
        "-p",
        &any_map,
        "busybox",
        "sh",
        "-c",
        PEER_SERVER,
    ]);
    let gw = gateway(&berth, "peer");
    let subnet = format!("{}.", gw.to_string().rsplit_once('.').unwrap().0);
    wait_for_element(&format!("127.0.0.1 . tcp . {lo} : {subnet}2"));
    wait_for_element(&format!("tcp . {any} : {subnet}2"));

    // From the host's loopback: DNAT (masqueraded to the gateway), where the
    // proxy would have connected from the container's own 127.0.0.1.
    let peer = poll("the server behind the loopback port", || seen_from(SocketAddr::from(([127, 0, 0, 1], lo))));
    assert!(peer.starts_with(&subnet), "seen from {peer}, not through DNAT from {subnet}x");
    // Another local address (the bridge's) for the 0.0.0.0 mapping.
    let peer = poll("the server behind the wildcard port", || seen_from(SocketAddr::from((gw, any))));
    assert!(peer.starts_with(&subnet), "seen from {peer}");
    let listed = table();
    assert!(listed.contains(&format!("tcp . {any} : 9000")), "{listed}");

    // Envs reach a published port through their own gateway: the proxy
    // serves them, another project's and this container itself (hairpin).
    berth.detach(&["--name", "other", "--network", "bridge", "busybox", "sleep", "3000"]);
    let other_gw = gateway(&berth, "other");
    assert_ne!(other_gw, gw);
    let via = |container: &str, to: Ipv4Addr| {
        let cmd = format!("nc {to} {any} </dev/null");
        poll(&format!("{container} reaching {to}:{any}"), || {
            let out = berth.run(&["exec", container, "sh", "-c", &cmd]);
            if out.code == 0 { unmapped(&out.stdout) } else { None }
        })
    };
    // The server lists every connection established on its port when it
    // answers: under load an earlier one may still be there beside ours.
    let through_proxy =
        |seen: &str| seen.lines().any(|l| l.trim().trim_start_matches("::ffff:").starts_with("127.0.0.1:"));
    let seen = via("other", other_gw);
    assert!(through_proxy(&seen), "the proxy connects from the namespace's loopback, but the server saw {seen}");
    let seen = via("peer", gw);
    assert!(through_proxy(&seen), "hairpin: the server saw {seen}");

    // The elements go with the run and come back with the next.
    berth.run(&["stop", "peer"]).ok();
    let listed = table();
    assert!(!listed.contains(&format!(". {lo} :")) && !listed.contains(&format!(". {any} :")), "{listed}");
    berth.run(&["start", "peer"]).ok();
    wait_for_element(&format!("127.0.0.1 . tcp . {lo} : {subnet}2"));
    let peer = poll("the server after start", || seen_from(SocketAddr::from(([127, 0, 0, 1], lo))));
    assert!(peer.starts_with(&subnet), "seen from {peer}");
    berth.run(&["rm", "-f", "peer", "other"]).ok();
    assert_eq!(berth_state(), before);
}

#[test]
fn a_server_on_the_containers_loopback_is_published_through_the_kernel_too() {
    let _one = serial();
    let berth = Berth::with_busybox();
    let port = free_port();
    let map = format!("127.0.0.1:{port}:8000");
    let web = "mkdir -p /www && echo local > /www/i && exec httpd -f -p 127.0.0.1:8000 -h /www";
    berth.detach(&["--name", "lo", "--network", "bridge", "-p", &map, "busybox", "sh", "-c", web]);
    wait_for_element(&format!("127.0.0.1 . tcp . {port} :"));
    let answer = poll("httpd on the container's 127.0.0.1", || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /i HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.ends_with("local\n").then_some(body)
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_killed_shim_leaves_elements_that_fsck_repair_removes() {
    let _one = serial();
    let before = berth_state();
    let berth = Berth::with_busybox();
    let port = free_port();
    let map = format!("127.0.0.1:{port}:9000/udp");
    berth.detach(&["--name", "orphan", "--network", "bridge", "-p", &map, "busybox", "sleep", "3000"]);
    let key = format!("127.0.0.1 . udp . {port} :");
    wait_for_element(&key);
    let shim = berth.run(&["inspect", "orphan"]).json()[0]["State"]["shim_pid"].as_i64().expect("a shim pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    support::wait_until("the killed shim's port to be free", || UdpSocket::bind(("127.0.0.1", port)).is_ok());
    assert!(table().contains(&key), "the element stays with no shim to withdraw it");

    let found = berth.run(&["fsck"]);
    assert!(
        found.stdout.contains(&format!("stale published port: published port 127.0.0.1:{port}/udp")),
        "{}",
        found.stdout
    );
    let repaired = berth.run(&["fsck", "--repair"]);
    assert_eq!(repaired.code, 0, "{}{}", repaired.stdout, repaired.stderr);
    assert!(!table().contains(&key), "{}", table());
    berth.run(&["rm", "-f", "orphan"]).ok();
    assert_eq!(berth_state(), before);
}

/// A DNS responder on the host's loopback that answers `name` with
/// 192.0.2.7 (a documentation address, never contacted), to loopback
/// senders only, as systemd-resolved's stub does; records who asked.
struct Responder {
    stop: &'static AtomicBool,
    thread: Option<std::thread::JoinHandle<Vec<SocketAddr>>>,
}

impl Responder {
    fn start(socket: UdpSocket, name: &'static str) -> Responder {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let thread = std::thread::spawn(move || {
            let mut asked = Vec::new();
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                asked.push(peer);
                if peer.ip().is_loopback()
                    && let Some(reply) = answer(&buf[..n], name)
                {
                    let _ = socket.send_to(&reply, peer);
                }
            }
            asked
        });
        Responder { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> Vec<SocketAddr> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The reply to the query `q`: an A record for `name`, no answer for its
/// other types, NXDOMAIN for other names.
fn answer(q: &[u8], name: &str) -> Option<Vec<u8>> {
    let (mut i, mut labels) = (12, Vec::new());
    while *q.get(i)? != 0 {
        let len = usize::from(q[i]);
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len)?).to_lowercase());
        i += len + 1;
    }
    let question = q.get(12..i + 5)?;
    let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
    let ours = labels.join(".") == name;
    let a = ours && qtype == 1;
    let mut out = q[..2].to_vec();
    out.extend(if ours { [0x81, 0x80] } else { [0x81, 0x83] });
    out.extend([0, 1, 0, u8::from(a), 0, 0, 0, 0]);
    out.extend(question);
    if a {
        out.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    }
    Some(out)
}

#[test]
fn envs_resolve_through_a_loopback_stub_and_reach_no_other_loopback_service() {
    let _one = serial();
    let stub = Ipv4Addr::new(127, 0, 0, 53);
    let Ok(socket) = UdpSocket::bind((stub, 53)) else {
        eprintln!("skipped: {stub}:53 is taken on this host (a resolver of its own)");
        return;
    };
    let before = berth_state();
    let responder = Responder::start(socket, "stub.berth.test");
    let berth = Berth::with_busybox();
    let conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(conf.path(), format!("nameserver {stub}\n")).unwrap();

    // berth in a mount namespace of its own where that is /etc/resolv.conf:
    // the host's only resolver is a loopback stub.
    let unshare = require_tool("unshare", "util-linux");
    let script = "mount --bind \"$1\" /etc/resolv.conf && shift && exec \"$@\"";
    let out = Command::new(unshare)
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(conf.path())
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(berth.store_root())
        .args(["run", "--rm", "--network", "bridge", "busybox", "sh", "-c"])
        .arg("cat /etc/resolv.conf; nslookup stub.berth.test")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let asked = responder.finish();
    assert!(out.status.success(), "{said}");
    assert!(
        said.starts_with("nameserver 10.123.") && said.lines().filter(|l| l.starts_with("nameserver")).count() == 1,
        "{said}"
    );
    assert!(said.contains("Name:\tstub.berth.test") && said.contains("Address: 192.0.2.7"), "{said}");
    assert!(!asked.is_empty() && asked.iter().all(|p| p.ip().is_loopback()), "the stub saw {asked:?}");
    assert_eq!(berth_state(), before);

    // The guard: a listener of the test's on another loopback address, and
    // an env whose namespace routes that address through its gateway (what
    // a hostile env with CAP_NET_ADMIN could do). route_localnet on the
    // bridge would let it in; the guard drops it.
    let secret = TcpListener::bind("127.0.0.77:0").unwrap();
    let port = secret.local_addr().unwrap().port();
    secret.set_nonblocking(true).unwrap();
    berth.detach(&["--name", "env", "--network", "bridge", "busybox", "sleep", "3000"]);
    let gw = gateway(&berth, "env");
    let inspect = berth.run(&["inspect", "env"]).json();
    let netns = inspect[0]["Labels"]["org.berth.netns"].as_str().expect("the namespace label").to_owned();
    let nsenter = require_tool("nsenter", "util-linux");
    let ip = require_tool("ip", "iproute2");
    let route = Command::new(nsenter)
        .arg(format!("--net={netns}"))
        .arg(ip)
        .args(["route", "add", "127.0.0.77/32", "via", &gw.to_string(), "dev", "eth0", "table", "local"])
        .output()
        .unwrap();
    assert!(route.status.success(), "{}", String::from_utf8_lossy(&route.stderr));
    let tried = berth.run(&["exec", "env", "sh", "-c", &format!("nc -w 3 127.0.0.77 {port} </dev/null")]);
    assert_ne!(tried.code, 0, "the env reached 127.0.0.77:{port}: {}", tried.stdout);
    let tried = berth.run(&["exec", "env", "sh", "-c", &format!("nc -w 3 {gw} {port} </dev/null")]);
    assert_ne!(tried.code, 0, "the env reached {gw}:{port}");
    assert!(secret.accept().is_err(), "nothing came through");
    berth.run(&["rm", "-f", "env"]).ok();
    assert_eq!(berth_state(), before);
}
