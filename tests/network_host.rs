//! Project networks and the host they run on, as root, end to end: an env
//! gets IPv6 (address, default route, masquerading) where the host has it,
//! and reaches a listener on its bridge's IPv6 address; on a host whose
//! firewall drops forwarded traffic (a network namespace set up here as
//! Docker sets up a host, so the real host's tables are never touched),
//! berth adds accept rules for its bridges and an env reaches a namespace
//! outside through the forward path, over IPv4 and IPv6 (masqueraded);
//! `down` leaves the host as it was.
//!
//! Traffic goes only to addresses of the bridges and namespaces these tests
//! made. The tests take one lock: each compares the host's berth links and
//! rules, which another test's project changes.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use support::Berth;
use support::image::{require_tool, succeeded};

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

/// Runs its closure when dropped: `berth down` also when a test fails.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
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
    let _down = OnDrop(|| drop(berth.run_in(dir.path(), &["down"])));
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

/// A network namespace made by the test to stand for a host with Docker's
/// firewall, so that its tables touch nothing of the real host's: berth
/// runs in it (`nsenter --net`), and its forward chains drop by default,
/// one made with nft, one with iptables-nft exactly as Docker makes it
/// (`FORWARD` policy `DROP`, jumping to `DOCKER-USER` first). A second
/// namespace behind a veth pair is the outside, with a listener. Both are
/// removed on drop (with every link, route and table in them), also when
/// the test fails.
struct DockerHost {
    ip: PathBuf,
    nsenter: PathBuf,
}

const HOST_NS: &str = "berthtest-host";
const OUTSIDE_NS: &str = "berthtest-out";
const OUTSIDE_HOST: &str = "198.18.249.1";
const OUTSIDE_PEER: &str = "198.18.249.2";
const OUTSIDE_HOST6: &str = "fdbe:7e57:0:1::1";
const OUTSIDE_PEER6: &str = "fdbe:7e57:0:1::2";
const PLAIN: &str = "berthtest_plain";

impl DockerHost {
    fn make() -> DockerHost {
        let host = DockerHost { ip: require_tool("ip", "iproute2"), nsenter: require_tool("nsenter", "util-linux") };
        let nft = require_tool("nft", "nftables");
        let iptables = require_tool("iptables-nft", "iptables");
        let ip6tables = require_tool("ip6tables-nft", "iptables");
        host.remove();
        let ip = |args: &[&str]| {
            succeeded(&format!("ip {}", args.join(" ")), &Command::new(&host.ip).args(args).output().unwrap())
        };
        ip(&["netns", "add", HOST_NS]);
        ip(&["netns", "add", OUTSIDE_NS]);
        let ends = [(HOST_NS, "o0", OUTSIDE_HOST, OUTSIDE_HOST6), (OUTSIDE_NS, "eth0", OUTSIDE_PEER, OUTSIDE_PEER6)];
        for (ns, dev, addr, addr6) in ends {
            if ns == HOST_NS {
                ip(&["-n", ns, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE_NS]);
            }
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            ip(&["-n", ns, "addr", "add", &format!("{addr6}/64"), "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // An IPv6 default route: the stand-in host has IPv6 for projects.
        ip(&["-n", HOST_NS, "-6", "route", "add", "default", "via", OUTSIDE_PEER6]);
        let drop_policy = "{ type filter hook forward priority filter; policy drop; }";
        host.run(&nft, &["add", "table", "ip", PLAIN]);
        host.run(&nft, &["add", "chain", "ip", PLAIN, "FORWARD", drop_policy]);
        for args in [&["-P", "FORWARD", "DROP"][..], &["-N", "DOCKER-USER"], &["-I", "FORWARD", "-j", "DOCKER-USER"]] {
            host.run(&iptables, args);
            host.run(&ip6tables, args);
        }
        host
    }

    /// `program ARGS` in the stand-in host's network namespace; its output.
    fn run(&self, program: &Path, args: &[&str]) -> String {
        let out = self.command(program, args).output().unwrap();
        succeeded(&format!("{} {}", program.display(), args.join(" ")), &out)
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.nsenter);
        cmd.arg(format!("--net=/run/netns/{HOST_NS}")).arg(program).args(args);
        cmd
    }

    /// `berth --root STORE ARGS` in the stand-in host, run in `cwd`.
    fn berth(&self, berth: &Berth, cwd: &Path, args: &[&str]) -> support::Run {
        let mut cmd = self.command(Path::new(env!("CARGO_BIN_EXE_berth")), &["--root"]);
        cmd.arg(berth.store_root()).args(args).current_dir(cwd).env("NO_COLOR", "1");
        support::Run::from(cmd.output().unwrap())
    }

    /// The stand-in host's links (by name), addresses and routes, and its
    /// whole ruleset without counters.
    fn state(&self) -> String {
        let nft = require_tool("nft", "nftables");
        let links = self.run(&self.ip, &["-o", "link"]);
        let names: String = links.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| format!("{n}\n")).collect();
        let addrs = self.run(&self.ip, &["-br", "addr"]);
        let addrs: String = addrs
            .lines()
            .map(|l| l.split_whitespace().filter(|w| *w != "UP" && *w != "UNKNOWN"))
            .map(|w| w.collect::<Vec<_>>().join(" ") + "\n")
            .collect();
        let routes = self.run(&self.ip, &["route"]) + &self.run(&self.ip, &["-6", "route"]);
        names + &addrs + &routes + &self.run(&nft, &["-s", "list", "ruleset"])
    }

    fn remove(&self) {
        for ns in [HOST_NS, OUTSIDE_NS] {
            let _ = Command::new(&self.ip).args(["netns", "del", ns]).output();
        }
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn on_a_host_whose_firewall_drops_forwarded_traffic_envs_still_reach_out() {
    let _one = serial();
    let real_host = berth_state();
    let host = DockerHost::make();
    let before = host.state();
    assert!(before.contains("policy drop") && before.contains("DOCKER-USER"), "{before}");

    // Listeners of the test's own in the outside namespace.
    let ns = Path::new("/run/netns").join(OUTSIDE_NS);
    let listen = |addr: &str| {
        let addr: IpAddr = addr.parse().unwrap();
        let listener = berth::sys::netns::in_net_ns(&ns, || TcpListener::bind((addr, 0))).unwrap();
        (listener.local_addr().unwrap().port(), pong(listener))
    };
    let (port, server) = listen(OUTSIDE_PEER);
    let (port6, server6) = listen(OUTSIDE_PEER6);

    let berth = Berth::new();
    let dir = project("fw");
    let down = host.command(Path::new(env!("CARGO_BIN_EXE_berth")), &["--root"]);
    let (store, cwd) = (berth.store_root(), dir.path().to_owned());
    let mut down = Some(down);
    let _down = OnDrop(move || {
        if let Some(mut cmd) = down.take() {
            let _ = cmd.arg(&store).arg("down").current_dir(&cwd).output();
        }
    });
    let plan = host.berth(&berth, dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("network project (outbound, IPv4 and IPv6)"), "{plan}");
    host.berth(&berth, dir.path(), &["up", "-d"]).ok();
    for (peer, port, server, masqueraded) in
        [(OUTSIDE_PEER, port, server, OUTSIDE_HOST), (OUTSIDE_PEER6, port6, server6, OUTSIDE_HOST6)]
    {
        let ping = format!("echo ping | nc {peer} {port}");
        let said = host.berth(&berth, dir.path(), &["exec", "fw-app", "sh", "-c", &ping]);
        let during = host.state();
        assert_eq!(said.ok(), "pong\n", "{peer} through the forward path; the stand-in host:\n{during}");
        assert_eq!(server.join().unwrap().to_string(), masqueraded, "masqueraded to the host's address");
    }
    let during = host.state();

    // berth's two rules in the plain table's chain, as nft rules, and in
    // DOCKER-USER as iptables rules (iptables can still read its table);
    // none in the FORWARD chain that jumps there.
    let nft = require_tool("nft", "nftables");
    let plain = host.run(&nft, &["list", "chain", "ip", PLAIN, "FORWARD"]);
    assert!(plain.contains("iifname \"berth-*\" accept comment \"berth\""), "{plain}");
    assert!(plain.contains("oifname \"berth-*\" ct state established,related accept comment \"berth\""), "{plain}");
    for program in [require_tool("iptables-nft", "iptables"), require_tool("ip6tables-nft", "iptables")] {
        let docker = host.run(&program, &["-S"]);
        let user: Vec<&str> = docker.lines().filter(|l| l.starts_with("-A DOCKER-USER")).collect();
        assert_eq!(
            user,
            [
                "-A DOCKER-USER -i berth-+ -m comment --comment berth -j ACCEPT",
                "-A DOCKER-USER -o berth-+ -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment berth -j ACCEPT"
            ],
            "{}: {docker}",
            program.display()
        );
        assert!(!docker.lines().any(|l| l.starts_with("-A FORWARD") && l.contains("berth")), "{docker}");
    }

    // A second `up` adds nothing; `down` takes exactly what berth added.
    host.berth(&berth, dir.path(), &["up", "-d"]).ok();
    assert_eq!(host.state(), during);
    host.berth(&berth, dir.path(), &["down"]).ok();
    assert_eq!(host.state(), before);
    drop(host);
    assert_eq!(berth_state(), real_host, "nothing of this on the real host");
}
