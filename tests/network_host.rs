//! Project networks and the host they run on, as root, end to end: an env
//! gets IPv6 (address, default route, masquerading) where the host has it,
//! and reaches a listener on its bridge's IPv6 address; on a host whose
//! firewall drops forwarded traffic (a table made here as Docker makes
//! its), berth adds accept rules for its bridges and an env reaches a
//! namespace outside through the forward path; `down` leaves the host as
//! it was.
//!
//! Traffic goes only to addresses of the bridges and namespaces these tests
//! made. The tests take one lock: each compares the host's berth links and
//! rules, which another test's project changes.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use support::Berth;
use support::image::require_tool;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A project directory with the busybox tar and one sleeping env.
fn project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    let manifest =
        format!("project = \"{name}\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"3000\"]\n");
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    dir
}

fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// What the host has of berth: links, addresses, IPv4 and IPv6 routes and
/// berth's nftables table.
fn berth_state() -> String {
    let ip = require_tool("ip", "iproute2");
    let nft = require_tool("nft", "nftables");
    let ours = |text: String| -> String {
        let mine = |l: &&str| l.contains("berth") || l.contains("10.123.") || l.contains("fd0b:e127:5a1c:");
        text.lines().filter(mine).map(|l| format!("{l}\n")).collect()
    };
    format!(
        "links:\n{}addresses:\n{}routes:\n{}{}nft:\n{}",
        ours(run(&ip, &["-d", "link"])),
        ours(run(&ip, &["addr"])),
        ours(run(&ip, &["route"])),
        ours(run(&ip, &["-6", "route"])),
        run(&nft, &["list", "table", "inet", "berth"]).replace("Error: No such file or directory", "no table")
    )
}

/// Accepts one connection on `listener`, answers "pong" to "ping" and
/// returns the peer's address.
fn pong(listener: TcpListener) -> std::thread::JoinHandle<IpAddr> {
    std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        let mut line = [0u8; 5];
        conn.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ping\n");
        conn.write_all(b"pong\n").unwrap();
        peer.ip()
    })
}

/// The second word after `word` in `text` (as in `via ADDR`, `inet6 ADDR/64`).
fn after<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    text.split_whitespace().skip_while(|w| *w != word).nth(1)
}

#[test]
fn an_env_has_ipv6_where_the_host_has_it_and_down_leaves_nothing() {
    let _one = serial();
    let before = berth_state();
    let berth = Berth::new();
    let dir = project("six");
    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    if let Err(why) = berth::runtime::network::ipv6::host_support() {
        assert!(plan.contains(&format!("network project (outbound, IPv4 only: {why})")), "{plan}");
        eprintln!("no IPv6 for projects on this host ({why}): the plan says so; nothing more to test");
        return;
    }
    assert!(plan.contains("network project (outbound, IPv4 and IPv6)"), "{plan}");
    berth.run_in(dir.path(), &["up", "-d"]).ok();

    // The env's own address and default route, the bridge's address.
    let addr =
        berth.run(&["exec", "six-app", "ip", "-6", "-o", "addr", "show", "eth0", "scope", "global"]).ok().to_owned();
    let member: Ipv6Addr = after(&addr, "inet6")
        .and_then(|a| a.strip_suffix("/64")?.parse().ok())
        .unwrap_or_else(|| panic!("no global IPv6 address on eth0: {addr}"));
    assert!(member.to_string().starts_with("fd0b:e127:5a1c:") && member.segments()[7] == 2, "{member}");
    let route = berth.run(&["exec", "six-app", "ip", "-6", "route", "show", "default"]).ok().to_owned();
    let gw: Ipv6Addr = after(&route, "via").and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("{route}"));
    let (bridge, _) = berth::runtime::network::names(&berth.store_root().join("projects/six.netns"));
    let ip = require_tool("ip", "iproute2");
    let on_bridge = run(&ip, &["-6", "addr", "show", "dev", &bridge]);
    assert!(on_bridge.contains(&format!("inet6 {gw}/64")), "{gw} is {bridge}'s: {on_bridge}");

    // A listener of the test's own on the bridge's IPv6 address.
    let listener = TcpListener::bind((gw, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = pong(listener);
    let said = berth.run(&["exec", "six-app", "sh", "-c", &format!("echo ping | nc {gw} {port}")]).ok().to_owned();
    assert_eq!(said, "pong\n");
    assert_eq!(server.join().unwrap(), IpAddr::V6(member), "from the env's own address");

    // Masqueraded when it leaves, forwarded by the host.
    let during = berth_state();
    let mut net = member.segments();
    net[7] = 0;
    let net = Ipv6Addr::from(net);
    assert!(during.contains("ip6 saddr @subnets6") && during.contains(&format!("{net}/64")), "{during}");
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap();
    assert_eq!(forwarding.trim(), "1");
    berth.run_in(dir.path(), &["down"]).ok();
    assert_eq!(berth_state(), before);
}
