//! Project networks as root, end to end: an env on the default network
//! reaches a listener on the host's side of its bridge and resolves names,
//! and `apt-get update` works in a Debian env; one project cannot reach
//! another's address, only its published port; `down` leaves no berth link,
//! address, route or nftables rule behind; berth killed mid-`up`, then
//! `fsck --repair` and `up`, gives one working network, and `fsck
//! --repair` removes a network whose namespace is gone; two `up`s of two
//! stores at once get two subnets; `berth run --network bridge` reaches out
//! and leaves nothing behind.
//!
//! Traffic goes only to the Debian archive (apt-get, and the name lookup
//! of its host through the host's resolver) and to addresses of the bridges
//! and namespaces these tests made. The tests take one lock: each compares
//! the host's berth links and rules, which another test's project changes.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use support::Berth;
use support::image::require_tool;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A project directory with the busybox tar and `manifest`.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    dir
}

fn sleeper(project: &str) -> String {
    format!("project = \"{project}\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"3000\"]\n")
}

/// The default gateway of `container`'s namespace: its bridge's address.
fn gateway(berth: &Berth, container: &str) -> Ipv4Addr {
    let route = berth.run(&["exec", container, "ip", "-4", "route", "show", "default"]).ok().to_owned();
    let via = route.split_whitespace().skip_while(|w| *w != "via").nth(1);
    via.and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("no default route in {container}: {route:?}"))
}

/// The address of `container` on its project network.
fn address(berth: &Berth, container: &str) -> Ipv4Addr {
    let out = berth.run(&["exec", container, "ip", "-4", "-o", "addr", "show", "eth0"]).ok().to_owned();
    let inet = out.split_whitespace().skip_while(|w| *w != "inet").nth(1);
    inet.and_then(|a| a.split('/').next()?.parse().ok()).unwrap_or_else(|| panic!("no eth0 address: {out:?}"))
}

/// What the host has of berth: links, addresses, routes and the nftables
/// table, as `ip` and `nft` print them.
fn berth_state() -> String {
    let ip = require_tool("ip", "iproute2");
    let run = |program: &Path, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let ours = |text: String| -> String {
        let mine = |l: &&str| l.contains("berth") || l.contains("10.123.") || l.contains("fd0b:e127:5a1c:");
        text.lines().filter(mine).map(|l| format!("{l}\n")).collect()
    };
    let nft = require_tool("nft", "nftables");
    format!(
        "links:\n{}addresses:\n{}routes:\n{}{}nft:\n{}",
        ours(run(&ip, &["-d", "link"])),
        ours(run(&ip, &["addr"])),
        ours(run(&ip, &["route"])),
        ours(run(&ip, &["-6", "route"])),
        run(&nft, &["list", "table", "inet", "berth"]).replace("Error: No such file or directory", "no table")
    )
}

#[test]
fn a_default_env_reaches_the_host_side_of_its_bridge_and_resolves_names() {
    let _one = serial();
    let berth = Berth::new();
    let dir = project(&sleeper("reach"));
    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("network project (outbound, IPv4"), "{plan}");
    berth.run_in(dir.path(), &["up", "-d"]).ok();

    // A listener of the test's own on the bridge's address.
    let gw = gateway(&berth, "reach-app");
    let listener = TcpListener::bind((gw, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        let mut line = [0u8; 5];
        conn.read_exact(&mut line).unwrap();
        conn.write_all(b"pong\n").unwrap();
        (line, peer)
    });
    let said = berth.run(&["exec", "reach-app", "sh", "-c", &format!("echo ping | nc {gw} {port}")]).ok().to_owned();
    assert_eq!(said, "pong\n");
    let (line, peer) = server.join().unwrap();
    assert_eq!(&line, b"ping\n");
    assert_eq!(peer.ip(), std::net::IpAddr::V4(address(&berth, "reach-app")), "from the env's own address");

    // The host's resolvers, none of them on loopback, and a name resolves.
    let conf = berth.run(&["exec", "reach-app", "cat", "/etc/resolv.conf"]).ok().to_owned();
    assert!(conf.contains("nameserver") && !conf.contains("nameserver 127."), "{conf}");
    let found = berth.run(&["exec", "reach-app", "nslookup", "deb.debian.org"]).ok().to_owned();
    assert!(found.contains("Name:") && found.contains("deb.debian.org"), "{found}");

    // `isolated` keeps today's loopback-only namespace.
    let iso = project(&sleeper("iso").replace("cmd =", "network = \"isolated\"\ncmd ="));
    assert!(berth.run_in(iso.path(), &["plan"]).ok().contains("network isolated"));
    berth.run_in(iso.path(), &["up", "-d"]).ok();
    let links = berth.run(&["exec", "iso-app", "ip", "-o", "link"]).ok().to_owned();
    assert_eq!(links.lines().count(), 1, "loopback only: {links}");
    berth.run_in(iso.path(), &["down"]).ok();
    berth.run_in(dir.path(), &["down"]).ok();
}

#[test]
fn apt_get_update_works_in_a_debian_env() {
    let _one = serial();
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = "project = \"apt\"\n[env.deb]\nbootstrap = { suite = \"bookworm\", variant = \"minbase\" }\n\
                    cmd = [\"sleep\", \"3000\"]\n";
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let update = berth.run(&["exec", "apt-deb", "apt-get", "update"]);
    let out = update.ok();
    assert!(out.contains("bookworm") && out.contains("Reading package lists"), "{out}");
    berth.run_in(dir.path(), &["down"]).ok();
}

#[test]
fn projects_are_walled_off_and_meet_through_published_ports() {
    let _one = serial();
    let berth = Berth::new();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let web = format!(
        "project = \"two\"\n[env.web]\nimage = \"rootfs:busybox.tar\"\nports = [\"0.0.0.0:{port}:8080\"]\n\
         cmd = [\"sh\", \"-c\", \"mkdir -p /www && echo two > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n"
    );
    let two = project(&web);
    let one = project(&sleeper("one"));
    berth.run_in(two.path(), &["up", "-d"]).ok();
    berth.run_in(one.path(), &["up", "-d"]).ok();
    support::wait_until("two's web server answers on the published port", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok() && {
                let mut body = String::new();
                s.read_to_string(&mut body).is_ok() && body.contains("two")
            }
        })
    });

    // two's address answers the host, but not project one.
    let addr = address(&berth, "two-web");
    assert!(TcpStream::connect((addr, 8080)).is_ok(), "the host reaches {addr}:8080");
    let direct = berth.run(&["exec", "one-app", "wget", "-q", "-T", "3", "-O", "-", &format!("http://{addr}:8080/")]);
    assert_ne!(direct.code, 0, "one reached two's address: {}", direct.stdout);
    // Through the published port, on the host's side of one's bridge.
    let gw = gateway(&berth, "one-app");
    let url = format!("http://{gw}:{port}/");
    assert_eq!(berth.run(&["exec", "one-app", "wget", "-q", "-O", "-", &url]).ok(), "two\n");
    berth.run_in(one.path(), &["down"]).ok();
    berth.run_in(two.path(), &["down"]).ok();
}

#[test]
fn down_leaves_no_link_address_route_or_rule_behind() {
    let _one = serial();
    let before = berth_state();
    let berth = Berth::new();
    let manifest = sleeper("tidy")
        + "[env.iso]\nimage = \"rootfs:busybox.tar\"\nnetwork = \"isolated\"\ncmd = [\"sleep\", \"3000\"]\n";
    let dir = project(&manifest);
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let during = berth_state();
    let (bridge, veth) = berth::runtime::network::names(&berth.store_root().join("projects/tidy.netns"));
    for name in [&bridge, &veth] {
        assert!(during.contains(name.as_str()), "{name} while up:\n{during}");
    }
    assert!(during.contains("masquerade"), "{during}");
    berth.run_in(dir.path(), &["down"]).ok();
    assert_eq!(berth_state(), before);

    // The same through the project's last `rm`.
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    berth.run(&["rm", "-f", "tidy-app", "tidy-iso"]).ok();
    assert_eq!(berth_state(), before);
}

#[test]
fn berth_killed_mid_up_then_fsck_repair_and_up_give_one_working_network() {
    let _one = serial();
    let berth = Berth::new();
    let dir = project(&sleeper("crash"));
    let owner = berth.store_root().join("projects/crash.netns");
    let (bridge, veth) = berth::runtime::network::names(&owner);
    let ip = require_tool("ip", "iproute2");
    let exists = |name: &str| Command::new(&ip).args(["link", "show", name]).output().unwrap().status.success();

    // Killed as soon as its bridge exists: the namespace and network are
    // made, the container is not yet (or only just).
    let mut up = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(berth.store_root())
        .args(["up", "-d"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Looked for without pause: the container comes some milliseconds after
    // the bridge, and a kill after its shim started tests the shim instead.
    let until = std::time::Instant::now() + support::PATIENCE;
    while !exists(&bridge) {
        assert!(up.try_wait().unwrap().is_none(), "berth up ended before the bridge was seen");
        assert!(std::time::Instant::now() < until, "no bridge {bridge} after {:?}", support::PATIENCE);
    }
    up.kill().unwrap();
    up.wait().unwrap();

    let repaired = berth.run(&["fsck", "--repair"]);
    eprintln!("fsck --repair: {}", repaired.stdout);
    assert!(repaired.code == 0, "{}{}", repaired.stdout, repaired.stderr);
    berth.run_in(dir.path(), &["up", "-d"]).ok();

    // One bridge, one veth, one record, one element in each set.
    let bridges = Command::new(&ip).args(["-o", "link", "show", "type", "bridge"]).output().unwrap();
    let bridges = String::from_utf8_lossy(&bridges.stdout).into_owned();
    assert_eq!(bridges.matches(&format!(": {bridge}:")).count(), 1, "{bridges}");
    assert!(exists(&veth));
    let state = berth_state();
    assert_eq!(state.matches(&format!("\"{bridge}\"")).count(), 1, "{state}");
    let records = std::fs::read_dir(berth::runtime::network::subnet::HOST_NETS_DIR).unwrap();
    let mine = records
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(&*owner.to_string_lossy())))
        .count();
    assert_eq!(mine, 1);
    // And it works: the env reaches its bridge's address.
    let gw = gateway(&berth, "crash-app");
    let listener = TcpListener::bind((gw, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || listener.accept().and_then(|(mut c, _)| c.write_all(b"up\n")));
    assert_eq!(berth.run(&["exec", "crash-app", "nc", &gw.to_string(), &port.to_string()]).ok(), "up\n");
    accept.join().unwrap().unwrap();
    berth.run_in(dir.path(), &["down"]).ok();
}

#[test]
fn fsck_repair_removes_a_network_whose_namespace_is_gone() {
    let _one = serial();
    let before = berth_state();
    let berth = Berth::new();
    let dir = project(&sleeper("lost"));
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    berth.run(&["rm", "-f", "lost-app"]).ok();
    assert_eq!(berth_state(), before, "the last rm takes the network");

    // What a crash between removing the namespace and its network leaves:
    // the namespace file gone, the bridge, veth, rules and record not.
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let ns = berth.store_root().join("projects/lost.netns");
    let (bridge, _) = berth::runtime::network::names(&ns);
    berth.run(&["stop", "lost-app"]).ok();
    nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_file(&ns).unwrap();
    let found = berth.run(&["fsck"]);
    assert!(
        found.stdout.contains(&format!("{}: orphan project network: ", ns.display())) && found.stdout.contains(&bridge),
        "{}",
        found.stdout
    );
    let repaired = berth.run(&["fsck", "--repair"]).ok().to_owned();
    assert!(repaired.contains(&format!("Removed: {}", ns.display())), "{repaired}");
    berth.run(&["rm", "-f", "lost-app"]).ok();
    assert_eq!(berth_state(), before);
}

#[test]
fn run_with_network_bridge_reaches_out_and_leaves_nothing() {
    let _one = serial();
    let before = berth_state();
    let berth = Berth::with_busybox();
    // The default stays loopback only.
    let links = berth.run(&["run", "--rm", "busybox", "ip", "-o", "link"]).ok().to_owned();
    assert_eq!(links.lines().count(), 1, "{links}");

    // --rm in the foreground: the network goes when the command ends.
    let said = berth
        .run(&[
            "run",
            "--rm",
            "--network",
            "bridge",
            "busybox",
            "sh",
            "-c",
            "ip -4 route show default; nslookup deb.debian.org",
        ])
        .ok()
        .to_owned();
    assert!(said.starts_with("default via 10.123.") && said.contains("Name:"), "{said}");
    assert_eq!(berth_state(), before);

    // Detached: it reaches a listener of the test's on its gateway, and
    // `rm -f` takes the network.
    let id = berth.detach(&["--network", "bridge", "busybox", "sleep", "3000"]);
    let route = berth.run(&["exec", &id, "ip", "-4", "route", "show", "default"]).ok().to_owned();
    let gw: Ipv4Addr = route.split_whitespace().nth(2).and_then(|a| a.parse().ok()).unwrap();
    let listener = TcpListener::bind((gw, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || listener.accept().and_then(|(mut c, _)| c.write_all(b"run\n")));
    assert_eq!(berth.run(&["exec", &id, "nc", &gw.to_string(), &port.to_string()]).ok(), "run\n");
    accept.join().unwrap().unwrap();
    berth.run(&["rm", "-f", &id]).ok();
    assert_eq!(berth_state(), before);
}

#[test]
fn two_concurrent_ups_of_two_stores_get_two_subnets() {
    let _one = serial();
    // Two stores: only the host-wide record keeps them apart.
    let (first, second) = (Berth::new(), Berth::new());
    let (a, b) = (project(&sleeper("left")), project(&sleeper("right")));
    let up = |berth: &Berth, dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(berth.store_root())
            .args(["up", "-d"])
            .current_dir(dir)
            .output()
            .unwrap()
    };
    let (left, right) = std::thread::scope(|s| {
        let left = s.spawn(|| up(&first, a.path()));
        let right = s.spawn(|| up(&second, b.path()));
        (left.join().unwrap(), right.join().unwrap())
    });
    for out in [&left, &right] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (one, two) = (gateway(&first, "left-app"), gateway(&second, "right-app"));
    assert_ne!(one.octets()[..3], two.octets()[..3], "{one} and {two} share a subnet");
    first.run_in(a.path(), &["down"]).ok();
    second.run_in(b.path(), &["down"]).ok();
}
