//! Rootless outbound access (issue 14, point 3), end to end as the ordinary
//! user of `support::rootless`: a project env reaches a listener the test
//! opened on the host and resolves names through the helper's DNS
//! forwarder, with pasta and with slirp4netns; a published port still
//! answers; `down` ends the helper (by its recorded pid) and leaves nothing
//! in the store; berth killed mid-`up`, then `fsck --repair` and `up`, gives
//! one helper; `run --network bridge` works rootless; `apt-get update`
//! works in a Debian env.
//!
//! Traffic goes only to the Debian archive (apt-get, and the lookup of its
//! name through the host's resolver) and to an address on a bridge the
//! test makes on the host. The test support installs `passt` and
//! `slirp4netns`, and opens `/dev/net/tun` to users (mode 0666, what
//! Debian's udev rules give it; some container hosts leave it 0600), which
//! it leaves so: another test binary may be using it.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::image::require_tool;
use support::rootless::Rootless;
use support::{Run, poll};

/// The debugging knob that forces the helper (docs/network.md).
const FORCE: &str = "BERTH_ROOTLESS_NET";

/// Both helpers installed and the tun device open to users.
fn helpers_ready() {
    require_tool("pasta", "passt");
    require_tool("slirp4netns", "slirp4netns");
    let tun = Path::new("/dev/net/tun");
    let mode = std::fs::metadata(tun).expect("/dev/net/tun exists").permissions().mode();
    if mode & 0o666 != 0o666 {
        std::fs::set_permissions(tun, std::fs::Permissions::from_mode(0o666)).expect("chmod 0666 /dev/net/tun");
    }
}

/// An ordinary user's store, and the helpers of its namespaces, which are
/// ended (by pid, after checking they are ours) when the test ends even if
/// it failed before `down`.
struct Env {
    r: Rootless,
    tool: &'static str,
    /// Dropped after `r` (fields drop in order): its containers go first.
    _helpers: HelperGuard,
}

impl Env {
    fn new(tool: &'static str) -> Env {
        helpers_ready();
        let r = Rootless::new();
        let guard = HelperGuard { store: r.store_root() };
        Env { r, tool, _helpers: guard }
    }

    /// `berth ARGS…` as the user in `cwd`, with the helper forced to `tool`.
    fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        Run::from(self.r.command(cwd, args).env(FORCE, self.tool).output().expect("run berth"))
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_in(&support::repo(), args)
    }

    /// The helper records in the store: (tool, pid, start time).
    fn records(&self) -> Vec<(String, i32, u64)> {
        let Ok(dir) = std::fs::read_dir(self.r.store_root().join("usermode")) else { return Vec::new() };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| {
                let v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
                (
                    v["tool"].as_str().unwrap().to_owned(),
                    v["pid"].as_i64().unwrap() as i32,
                    v["start"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// What is left in the store of networks: helper files (record, log,
    /// pid file) and namespace files.
    fn leftovers(&self) -> Vec<PathBuf> {
        let in_dir = |d: &str| -> Vec<PathBuf> {
            let Ok(dir) = std::fs::read_dir(self.r.store_root().join(d)) else { return Vec::new() };
            dir.flatten().map(|e| e.path()).collect()
        };
        let is_ns = |p: &PathBuf| p.extension().is_some_and(|x| x.to_string_lossy().ends_with("netns"));
        let mut left = in_dir("usermode");
        left.extend(in_dir("projects").into_iter().chain(in_dir("netns")).filter(is_ns));
        left
    }
}

/// The pids of pasta and slirp4netns processes whose command line names a
/// path in `store`.
fn helpers_in(store: &Path) -> Vec<i32> {
    let store = store.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|b| *b == 0);
            let program = args.next().unwrap_or_default();
            let helper = program.ends_with(b"pasta") || program.ends_with(b"slirp4netns");
            helper && args.any(|a| a.starts_with(store))
        })
        .collect()
}

struct HelperGuard {
    store: PathBuf,
}

impl Drop for HelperGuard {
    fn drop(&mut self) {
        for pid in helpers_in(&self.store) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Whether process `pid`, started at `start` (`/proc/PID/stat` field 22), runs.
fn alive(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[0] != "Z" && fields[19].parse::<u64>().ok() == Some(start)
}

/// A bridge (with no ports) on the host with an address of the test's own, for a
/// listener the envs connect to; removed when dropped.
struct HostAddress {
    link: String,
    addr: Ipv4Addr,
}

impl HostAddress {
    fn new() -> HostAddress {
        let ip = require_tool("ip", "iproute2");
        // One per test of this process, apart from other processes' by pid.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let link = format!("rlhost{}x{n}", pid % 100_000);
        let addr = Ipv4Addr::new(198, 18, (pid % 250) as u8, (n % 250 + 1) as u8);
        let run = |args: &[&str]| {
            let out = Command::new(&ip).args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let guard = HostAddress { link: link.clone(), addr };
        run(&["link", "add", &link, "type", "bridge"]);
        run(&["addr", "add", &format!("{addr}/32"), "dev", &link]);
        run(&["link", "set", &link, "up"]);
        guard
    }

    /// A listener on the address that answers one HTTP request with the
    /// body `reply`; returns its port, and the request line it read.
    /// (HTTP, not `echo | nc`: bookworm's pasta did not pass the answer on
    /// after the env's side had shut down writing.)
    fn listen(&self, reply: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind((self.addr, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            conn.write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{reply}", reply.len()).as_bytes())
                .unwrap();
            String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_owned()
        });
        (port, server)
    }

    /// The URL of `port` on the address, at `path`.
    fn url(&self, port: u16, path: &str) -> String {
        format!("http://{}:{port}/{path}", self.addr)
    }
}

impl Drop for HostAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.link]).output();
    }
}

const WEB: &str = r#"
project = "out"

[env.web]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 8000 -h /www"]
ports = ["127.0.0.1:PORT:8000"]
"#;

/// What both helpers must give: outbound TCP to the host's listener, DNS
/// through the forwarder, the published port, and nothing left after `down`.
fn reaches_out_and_leaves_nothing(tool: &'static str) {
    let env = Env::new(tool);
    let host = HostAddress::new();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = env.r.project("out", &WEB.replace("PORT", &port.to_string()));
    let plan = env.run_in(&dir, &["plan"]).ok().to_owned();
    assert!(plan.contains(&format!("network project (outbound via {tool})")), "{plan}");
    env.run_in(&dir, &["up", "-d"]).ok();

    let records = env.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let (recorded_tool, pid, start) = records[0].clone();
    assert_eq!(recorded_tool, tool);
    assert!(alive(pid, start), "the recorded {tool} (pid {pid}) runs");
    assert_eq!(helpers_in(&env.r.store_root()), [pid], "one helper, the recorded one");

    let route = env.run(&["exec", "out-web", "ip", "-4", "route", "show", "default"]).ok().to_owned();
    assert!(route.starts_with("default via 10.0.2.2"), "{route}");
    let (listen_port, server) = host.listen("pong\n");
    let url = host.url(listen_port, "ping");
    assert_eq!(env.run(&["exec", "out-web", "wget", "-q", "-O", "-", &url]).ok(), "pong\n");
    assert_eq!(server.join().unwrap(), "GET /ping HTTP/1.1");

    let conf = env.run(&["exec", "out-web", "cat", "/etc/resolv.conf"]).ok().to_owned();
    assert!(conf.contains("nameserver 10.0.2.3\n") && conf.matches("nameserver").count() == 1, "{conf}");
    let found = env.run(&["exec", "out-web", "nslookup", "deb.debian.org"]).ok().to_owned();
    assert!(found.contains("Name:") && found.contains("deb.debian.org"), "{found}");

    let reply = poll("an answer from the published port", || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply.contains("200 OK").then_some(reply)
    });
    assert!(reply.ends_with("from-web\n"), "{reply}");

    env.run_in(&dir, &["down"]).ok();
    assert!(!alive(pid, start), "{tool} (pid {pid}) still runs after down");
    assert_eq!(helpers_in(&env.r.store_root()), Vec::<i32>::new());
    assert_eq!(env.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn a_rootless_project_reaches_out_through_pasta() {
    reaches_out_and_leaves_nothing("pasta");
}

#[test]
fn a_rootless_project_reaches_out_through_slirp4netns() {
    reaches_out_and_leaves_nothing("slirp4netns");
}

#[test]
fn without_a_helper_the_project_stays_loopback_only() {
    let env = Env::new("none");
    let dir = env
        .r
        .project("lo", "project = \"lo\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n");
    let plan = env.run_in(&dir, &["plan"]).ok().to_owned();
    assert!(plan.contains("network project (loopback only: BERTH_ROOTLESS_NET=none)"), "{plan}");
    env.run_in(&dir, &["up", "-d"]).ok();
    let links = env.run(&["exec", "lo-app", "ip", "-o", "link"]).ok().to_owned();
    assert_eq!(links.lines().count(), 1, "loopback only: {links}");
    assert!(env.records().is_empty());
    let refused = env.run(&["run", "--rm", "--network", "bridge", "busybox", "true"]);
    assert!(refused.fails_with(1).contains("--network bridge: no outbound access here"), "{}", refused.stderr);
    env.run_in(&dir, &["down"]).ok();
}

#[test]
fn berth_killed_mid_up_then_fsck_repair_and_up_give_one_helper() {
    // slirp4netns: unlike pasta, it never quits by itself, so only berth
    // can have ended it.
    let env = Env::new("slirp4netns");
    let host = HostAddress::new();
    let dir = env.r.project(
        "crash",
        "project = \"crash\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n",
    );
    // The image first, so that `up` gets to the network at once.
    env.run_in(&dir, &["build"]).ok();
    let mut up = env.r.command(&dir, &["up", "-d"]);
    let mut up =
        up.env(FORCE, "pasta").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Killed as soon as the helper is being started: its log exists just
    // before it runs, its record just after.
    let usermode = env.r.store_root().join("usermode");
    let until = std::time::Instant::now() + support::PATIENCE;
    while !std::fs::read_dir(&usermode).is_ok_and(|mut d| d.next().is_some()) {
        assert!(up.try_wait().unwrap().is_none(), "berth up ended before it started a helper");
        assert!(std::time::Instant::now() < until, "no helper after {:?}", support::PATIENCE);
    }
    up.kill().unwrap();
    up.wait().unwrap();

    let repaired = env.run(&["fsck", "--repair"]);
    assert!(repaired.code == 0, "{}{}", repaired.stdout, repaired.stderr);
    assert_eq!(helpers_in(&env.r.store_root()), Vec::<i32>::new(), "fsck --repair ended the helper");
    env.run_in(&dir, &["up", "-d"]).ok();
    let records = env.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(helpers_in(&env.r.store_root()), [records[0].1], "one helper, the recorded one");
    let (port, server) = host.listen("back\n");
    assert_eq!(env.run(&["exec", "crash-app", "wget", "-q", "-O", "-", &host.url(port, "")]).ok(), "back\n");
    server.join().unwrap();

    // A helper whose namespace went without it (a crash between the two):
    // fsck finds its record, and --repair ends it.
    let (pid, start) = (records[0].1, records[0].2);
    env.run(&["stop", "crash-app"]).ok();
    let ns = env.r.store_root().join("projects/crash.netns");
    let holder = env.r.holder_pid().expect("the store's holder");
    // The namespace's bind mount lives in the holder's mount namespace.
    let nsenter = require_tool("nsenter", "util-linux");
    let out = Command::new(nsenter)
        .args(["-t", &holder.to_string(), "-U", "-m", "--", "umount", "-l"])
        .arg(&ns)
        .output()
        .unwrap();
    assert!(out.status.success(), "umount: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&ns).unwrap();
    let found = env.run(&["fsck"]);
    assert!(found.stdout.contains("rootless network helper is recorded"), "{}{}", found.stdout, found.stderr);
    let repaired = env.run(&["fsck", "--repair"]).ok().to_owned();
    assert!(!alive(pid, start), "fsck --repair ended pid {pid}: {repaired}");
    assert!(env.records().is_empty());
    env.run(&["rm", "-f", "crash-app"]).ok();
}

/// What berth killed between starting a helper and recording it leaves,
/// made on purpose: the record removed while the helper runs. The next
/// `up` finds the helper by its command line, ends it and starts one.
#[test]
fn an_unrecorded_helper_is_ended_by_the_next_up() {
    let env = Env::new("pasta");
    let host = HostAddress::new();
    let dir = env
        .r
        .project("lost", "project = \"lost\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n");
    env.run_in(&dir, &["up", "-d"]).ok();
    let (_, old, old_start) = env.records().pop().expect("a helper record");
    for entry in std::fs::read_dir(env.r.store_root().join("usermode")).unwrap().flatten() {
        std::fs::remove_file(entry.path()).unwrap();
    }
    env.run_in(&dir, &["up", "-d"]).ok();
    assert!(!alive(old, old_start), "the unrecorded helper (pid {old}) still runs");
    let records = env.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(helpers_in(&env.r.store_root()), [records[0].1], "one helper, the recorded one");
    let (port, server) = host.listen("again\n");
    assert_eq!(env.run(&["exec", "lost-app", "wget", "-q", "-O", "-", &host.url(port, "")]).ok(), "again\n");
    server.join().unwrap();
    env.run_in(&dir, &["down"]).ok();
    assert_eq!(env.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn run_with_network_bridge_reaches_out_rootless() {
    let env = Env::new("slirp4netns");
    let host = HostAddress::new();
    env.run(&["import", support::image::busybox_tar().to_str().unwrap(), "busybox:latest"]).ok();
    let (port, server) = host.listen("lone\n");
    let url = host.url(port, "");
    let said =
        env.run(&["run", "--rm", "--network", "bridge", "busybox", "wget", "-q", "-O", "-", &url]).ok().to_owned();
    assert_eq!(said, "lone\n");
    server.join().unwrap();
    assert_eq!(helpers_in(&env.r.store_root()), Vec::<i32>::new(), "--rm ended the helper");
    assert_eq!(env.leftovers(), Vec::<PathBuf>::new());
}

const DEBIAN: &str = r#"
project = "apt"

[env.deb]
bootstrap = { suite = "bookworm", variant = "minbase" }
cmd = ["sleep", "3000"]
"#;

/// THE DOWNLOADING TEST of this file (a Debian bootstrap, about 40 MB, and
/// the archive's package lists).
#[test]
fn apt_get_update_works_in_a_rootless_debian_env() {
    require_tool("mmdebstrap", "mmdebstrap");
    let env = Env::new("pasta");
    let dir = env.r.project("apt", DEBIAN);
    env.run_in(&dir, &["up", "-d"]).ok();
    let out = env.run(&["exec", "apt-deb", "apt-get", "update"]).ok().to_owned();
    assert!(out.contains("bookworm") && out.contains("Reading package lists"), "{out}");
    env.run_in(&dir, &["down"]).ok();
    assert!(env.records().is_empty());
}
