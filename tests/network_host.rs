//! Project networks and the host they run on, as root, end to end. Each
//! test runs berth in a network namespace of its own that stands for the
//! host (`nsenter --net`), set up as the case needs, so that the real
//! host's routes, firewall and sysctls are never touched, and other tests'
//! projects on this machine do not meet these:
//!
//! - an env gets IPv6 (address, default route, masquerading) where the host
//!   has it, reaches a listener on its bridge's IPv6 address, and not
//!   another project's IPv6 address;
//! - on a host whose firewall drops forwarded traffic (iptables-nft set up
//!   as Docker sets it up, and a plain nftables table), berth adds accept
//!   rules for its bridges, and an env reaches a namespace outside through
//!   the forward path over IPv4 and IPv6;
//! - on a host whose IPv6 default route comes from router advertisements,
//!   projects stay IPv4 only and the host keeps taking advertisements;
//! - `down` leaves the stand-in host as it was.
//!
//! Traffic goes only to addresses of the bridges and namespaces these tests
//! made. The tests take one lock, as the namespaces' names are fixed.

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

/// Fails if a bridge of a project of `berth`'s store is on the real host
/// (the tests' projects live in the stand-in host's namespace).
fn not_on_the_real_host(berth: &Berth) {
    let ip = require_tool("ip", "iproute2");
    let links = run(&ip, &["-o", "link"]);
    for project in ["six", "sixweb", "fw", "ra"] {
        let (bridge, veth) =
            berth::runtime::network::names(&berth.store_root().join(format!("projects/{project}.netns")));
        assert!(!links.contains(&bridge) && !links.contains(&veth), "{bridge} on the real host: {links}");
    }
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

/// A network namespace made by the test to stand for a host, so that what
/// is done to its firewall and settings touches nothing of the real
/// host's: berth runs in it (`nsenter --net`). A second namespace behind a
/// veth pair is the outside, where the test's listeners are (IPv4 and
/// IPv6 addresses on both ends). Both are removed on drop (with every
/// link, route and table in them), also when the test fails.
struct StandIn {
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

impl StandIn {
    fn make() -> StandIn {
        let host = StandIn { ip: require_tool("ip", "iproute2"), nsenter: require_tool("nsenter", "util-linux") };
        host.remove();
        host.ip(&["netns", "add", HOST_NS]);
        host.ip(&["netns", "add", OUTSIDE_NS]);
        // The outside's addresses usable at once (it sends advertisements).
        host.ip(&["netns", "exec", OUTSIDE_NS, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"]);
        let ends = [(HOST_NS, "o0", OUTSIDE_HOST, OUTSIDE_HOST6), (OUTSIDE_NS, "eth0", OUTSIDE_PEER, OUTSIDE_PEER6)];
        for (ns, dev, addr, addr6) in ends {
            if ns == HOST_NS {
                host.ip(&["-n", ns, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE_NS]);
            }
            host.ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            host.ip(&["-n", ns, "addr", "add", &format!("{addr6}/64"), "dev", dev, "nodad"]);
            host.ip(&["-n", ns, "link", "set", dev, "up"]);
            host.ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        host
    }

    fn ip(&self, args: &[&str]) -> String {
        succeeded(&format!("ip {}", args.join(" ")), &Command::new(&self.ip).args(args).output().unwrap())
    }

    /// Docker's firewall, as Docker makes it with iptables-nft (`FORWARD`
    /// policy `DROP`, jumping to `DOCKER-USER` first; for IPv4 and IPv6),
    /// and a plain nftables table whose forward chain drops by default.
    fn docker_firewall(&self) {
        let nft = require_tool("nft", "nftables");
        let iptables = require_tool("iptables-nft", "iptables");
        let ip6tables = require_tool("ip6tables-nft", "iptables");
        let drop_policy = "{ type filter hook forward priority filter; policy drop; }";
        self.run(&nft, &["add", "table", "ip", PLAIN]);
        self.run(&nft, &["add", "chain", "ip", PLAIN, "FORWARD", drop_policy]);
        for args in [&["-P", "FORWARD", "DROP"][..], &["-N", "DOCKER-USER"], &["-I", "FORWARD", "-j", "DOCKER-USER"]] {
            self.run(&iptables, args);
            self.run(&ip6tables, args);
        }
    }

    /// An IPv6 default route of the stand-in host's own (static).
    fn static_ipv6_default(&self) {
        self.ip(&["-n", HOST_NS, "-6", "route", "add", "default", "via", OUTSIDE_PEER6]);
    }

    /// The outside sends a router advertisement (a default router, for 30
    /// minutes) to all nodes on the link, as a home or office router does;
    /// returns once the stand-in host has its default route from it.
    fn advertise_router(&self) {
        let python = require_tool("python3", "python3");
        let send = "import socket\n\
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)\n\
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)\n\
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex('eth0'))\n\
            ra = bytes([134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0])\n\
            s.sendto(ra, ('ff02::1', 0, 0, socket.if_nametoindex('eth0')))\n";
        support::poll("the stand-in host's default route from the advertisement", || {
            // Fails until the outside's link-local address is there.
            let _ = Command::new(&self.ip).args(["netns", "exec", OUTSIDE_NS]).arg(&python).args(["-c", send]).output();
            let route = self.ip(&["-n", HOST_NS, "-6", "route", "show", "default"]);
            route.contains("proto ra").then_some(())
        });
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

    /// `berth down` of the project in `dir` in the stand-in host when
    /// dropped: nothing left running when a test fails.
    fn down_on_drop(&self, berth: &Berth, dir: &Path) -> OnDrop<impl FnMut() + use<>> {
        let mut down = Some(self.command(Path::new(env!("CARGO_BIN_EXE_berth")), &["--root"]));
        let (store, cwd) = (berth.store_root(), dir.to_owned());
        OnDrop(move || {
            if let Some(mut cmd) = down.take() {
                let _ = cmd.arg(&store).arg("down").current_dir(&cwd).output();
            }
        })
    }

    fn remove(&self) {
        for ns in [HOST_NS, OUTSIDE_NS] {
            let _ = Command::new(&self.ip).args(["netns", "del", ns]).output();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn on_a_host_whose_firewall_drops_forwarded_traffic_envs_still_reach_out() {
    let _one = serial();
    let host = StandIn::make();
    host.static_ipv6_default();
    host.docker_firewall();
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
    let _down = host.down_on_drop(&berth, dir.path());
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
    not_on_the_real_host(&berth);
}

#[test]
fn a_host_that_takes_its_ipv6_route_from_router_advertisements_keeps_it() {
    let _one = serial();
    let host = StandIn::make();
    host.advertise_router();
    let forwarding = || host.ip(&["netns", "exec", HOST_NS, "sysctl", "-n", "net.ipv6.conf.all.forwarding"]);
    assert_eq!(forwarding().trim(), "0");

    // IPv4 only, and the plan says why.
    let berth = Berth::new();
    let dir = project("ra");
    let plan = host.berth(&berth, dir.path(), &["plan"]).ok().to_owned();
    assert!(
        plan.contains("network project (outbound, IPv4 only: o0 takes IPv6 routes from router advertisements"),
        "{plan}"
    );
    let _down = host.down_on_drop(&berth, dir.path());
    host.berth(&berth, dir.path(), &["up", "-d"]).ok();
    let addrs =
        host.berth(&berth, dir.path(), &["exec", "ra-app", "ip", "-6", "-o", "addr", "show", "scope", "global"]);
    assert_eq!(addrs.ok(), "", "no IPv6 address in the env");
    assert_eq!(forwarding().trim(), "0", "IPv6 forwarding left off");
    let v4 = host.berth(&berth, dir.path(), &["exec", "ra-app", "ip", "-4", "route", "show", "default"]);
    assert!(v4.ok().contains("via 10.123."), "IPv4 as ever: {}", v4.stdout);
    // Advertisements still count: the route, gone, comes back with the next.
    host.ip(&["-n", HOST_NS, "-6", "route", "del", "default", "dev", "o0"]);
    host.advertise_router();
    host.berth(&berth, dir.path(), &["down"]).ok();
    drop(host);
    not_on_the_real_host(&berth);
}

#[test]
fn an_env_has_ipv6_where_the_host_has_it_and_down_leaves_nothing() {
    let _one = serial();
    let host = StandIn::make();
    host.static_ipv6_default();
    let before = host.state();
    let berth = Berth::new();
    let dir = project("six");
    let plan = host.berth(&berth, dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("network project (outbound, IPv4 and IPv6)"), "{plan}");
    let _down = host.down_on_drop(&berth, dir.path());
    host.berth(&berth, dir.path(), &["up", "-d"]).ok();
    let exec = |dir: &Path, args: &[&str]| host.berth(&berth, dir, &[&["exec"][..], args].concat());
    let global6 = |dir: &Path, container: &str| -> Ipv6Addr {
        let out = exec(dir, &[container, "ip", "-6", "-o", "addr", "show", "eth0", "scope", "global"]);
        let addr = after(out.ok(), "inet6").and_then(|a| a.strip_suffix("/64")?.parse().ok());
        addr.unwrap_or_else(|| panic!("no global IPv6 address on eth0 of {container}: {}", out.stdout))
    };

    // The env's own address and default route, the bridge's address.
    let member = global6(dir.path(), "six-app");
    assert!(member.to_string().starts_with("fd0b:e127:5a1c:") && member.segments()[7] == 2, "{member}");
    let route = exec(dir.path(), &["six-app", "ip", "-6", "route", "show", "default"]).ok().to_owned();
    let gw: Ipv6Addr = after(&route, "via").and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("{route}"));
    let (bridge, _) = berth::runtime::network::names(&berth.store_root().join("projects/six.netns"));
    let on_bridge = host.run(&host.ip, &["-6", "addr", "show", "dev", &bridge]);
    assert!(on_bridge.contains(&format!("inet6 {gw}/64")), "{gw} is {bridge}'s: {on_bridge}");

    // A listener of the test's own on the bridge's IPv6 address.
    let stand_in = Path::new("/run/netns").join(HOST_NS);
    let listener = berth::sys::netns::in_net_ns(&stand_in, || TcpListener::bind((gw, 0))).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = pong(listener);
    let said = exec(dir.path(), &["six-app", "sh", "-c", &format!("echo ping | nc {gw} {port}")]).ok().to_owned();
    assert_eq!(said, "pong\n");
    assert_eq!(server.join().unwrap(), IpAddr::V6(member), "from the env's own address");

    // Masqueraded when it leaves, forwarded by the host.
    let nft = require_tool("nft", "nftables");
    let table = host.run(&nft, &["list", "table", "inet", "berth"]);
    let mut net = member.segments();
    net[7] = 0;
    let net = Ipv6Addr::from(net);
    assert!(table.contains("ip6 saddr @subnets6") && table.contains(&format!("{net}/64")), "{table}");
    let forwarding = host.ip(&["netns", "exec", HOST_NS, "sysctl", "-n", "net.ipv6.conf.all.forwarding"]);
    assert_eq!(forwarding.trim(), "1");

    // The wall holds for IPv6: another project's web server answers the
    // host on its IPv6 address, but not this project's env.
    let web = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), web.path().join("busybox.tar")).unwrap();
    let manifest = "project = \"sixweb\"\n[env.web]\nimage = \"rootfs:busybox.tar\"\n\
        cmd = [\"sh\", \"-c\", \"mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n";
    std::fs::write(web.path().join("berth.toml"), manifest).unwrap();
    let _web_down = host.down_on_drop(&berth, web.path());
    host.berth(&berth, web.path(), &["up", "-d"]).ok();
    let web6 = global6(web.path(), "sixweb-web");
    assert_ne!(web6, member);
    support::wait_until("sixweb's server answers the host on its IPv6 address", || {
        berth::sys::netns::in_net_ns(&stand_in, || std::net::TcpStream::connect((web6, 8080))).is_ok()
    });
    let url = format!("http://[{web6}]:8080/");
    let direct = exec(dir.path(), &["six-app", "wget", "-q", "-T", "3", "-O", "-", &url]);
    assert_ne!(direct.code, 0, "six reached sixweb's IPv6 address: {}", direct.stdout);
    host.berth(&berth, web.path(), &["down"]).ok();

    host.berth(&berth, dir.path(), &["down"]).ok();
    assert_eq!(host.state(), before);
    drop(host);
    not_on_the_real_host(&berth);
}
