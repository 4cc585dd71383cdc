//! What `berth plan` accepts, `berth up` does.
//!
//! [`every_key_plan_accepts_up_does`] walks every key of docs/manifest.md
//! through the values it documents, in one project of many envs (values
//! that do not conflict share an env), then `plan`, `up -d`, and checks
//! that each env with a command runs and, where that is cheap, that the
//! value shows: env vars, workdir, user, files copied and built, labels,
//! restart policies, health, limits in the cgroup, volumes, networks
//! (project, isolated, host, none),
//! published TCP and UDP ports, every kind of local base and a registry
//! base (a `docker-registry` on 127.0.0.1). [`plan_refuses_what_up_cannot_do`]
//! is the other side: values `up` could never carry out are refused by
//! `plan`, saying what would be right.
//!
//! Not walked: `bootstrap` and `packages`, which need a Debian mirror (tests
//! talk to loopback only; tests/bootstrap.rs and tests/build.rs cover them).
//! Addresses other than loopback are not bound either (`127.0.0.2` stands
//! for "an address of this host").

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Berth;
use support::registry::{Registry, User};

/// A port of 127.0.0.1 free for both TCP and UDP.
fn free_port() -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// Polls `berth logs ENV` in `dir` until a line starts with `prefix`;
/// returns that line.
fn log_line(user: &User, berth: &Berth, dir: &Path, env: &str, prefix: &str) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = user.run_in(berth, dir, &["logs", env], None);
        if let Some(line) = logs.stdout.lines().find(|l| l.starts_with(prefix)) {
            return line.to_owned();
        }
        assert!(Instant::now() < until, "{env} never logged {prefix:?}:\n{}{}", logs.stdout, logs.stderr);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `berth exec ENV sh -c SCRIPT` in `dir`; its output.
fn exec(user: &User, berth: &Berth, dir: &Path, env: &str, script: &str) -> String {
    user.run_in(berth, dir, &["exec", env, "sh", "-c", script], None).ok().to_owned()
}

/// An HTTP GET of `/` on `addr`, retried until something answers.
fn http_get(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            write!(s, "GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
                return out;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answered HTTP on {addr}");
}

/// Sends `message` over UDP to `to` until the echo server's reply comes.
fn udp_echo(to: SocketAddr, message: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..80 {
        socket.send_to(message.as_bytes(), to).unwrap();
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            if reply.starts_with(&format!("udp {message} ")) {
                return reply;
            }
        }
    }
    panic!("no UDP reply from {to}");
}

fn tar(args: &[&str]) {
    let tar = support::image::require_tool("tar", "tar");
    let status = std::process::Command::new(tar).args(args).status().unwrap();
    assert!(status.success(), "tar {args:?}: {status}");
}

/// The project: files, archives of busybox, and the manifest.
fn project(berth: &Berth, registry_image: &str, registry_digest: &str, ports: [u16; 4], v6: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::copy(support::image::busybox_tar(), p.join("busybox.tar")).unwrap();
    std::fs::copy(support::image::echo_server(), p.join("echo-server")).unwrap();
    std::fs::create_dir_all(p.join("www")).unwrap();
    std::fs::write(p.join("www/index.html"), "hello-walk\n").unwrap();
    std::fs::write(p.join("app.ini"), "conf\n").unwrap();
    std::fs::create_dir(p.join("hostdir")).unwrap();
    std::fs::create_dir(p.join("abs")).unwrap();
    // `whole` copies the project directory: not what the containers write,
    // nor the lock `up` writes (it records the registry bases' digests).
    std::fs::write(p.join(".berthignore"), "/hostdir/\n/abs/\n/made-by-up/\n/berth.lock\n").unwrap();
    // The busybox image saved both ways, and as an OCI layout directory
    // (and a tar of it) whose image is tagged `1.0`.
    berth.run(&["save", "busybox", "-o", &p.join("bb-oci.tar").to_string_lossy()]).ok();
    berth
        .run(&["save", "busybox", "--format", "docker-archive", "-o", &p.join("bb-docker.tar").to_string_lossy()])
        .ok();
    std::fs::create_dir(p.join("bb.oci")).unwrap();
    tar(&["-C", &p.join("bb.oci").to_string_lossy(), "-xf", &p.join("bb-oci.tar").to_string_lossy()]);
    let index_path = p.join("bb.oci/index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "1.0".into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    tar(&["-C", &p.join("bb.oci").to_string_lossy(), "-cf", &p.join("bb-1.0.tar").to_string_lossy(), "."]);

    let [http, addr, udp, v6_port] = ports;
    let v6_mapping = if v6 { format!(r#", "[::1]:{v6_port}:7004""#) } else { String::new() };
    let abs = p.join("abs").display().to_string();
    let facts = "echo facts S=$S I=$I F=$F B=$B pwd=$(pwd) id=$(id -u):$(id -g); exec sleep 1000";
    let manifest = format!(
        r#"
project = "walk"

[env.base]
image = "rootfs:busybox.tar"
env = {{ S = "text", I = 4, F = 0.5, B = true }}
workdir = "/tmp"
labels = {{ team = "qa", "org.example.dotted" = "yes" }}
copy = [
  {{ src = "www", dest = "/www" }},
  {{ src = "www/index.html", dest = "/srv/" }},
  {{ src = "app.ini", dest = "/etc/app.ini", mode = 0o600, owner = "user:user" }},
  {{ src = "app.ini", dest = "/etc/app2.ini", mode = "0640", owner = "1000:1000" }},
  {{ src = "echo-server", dest = "/usr/local/bin/echo-server", mode = "0o755", owner = "root" }},
]
run = ["echo built > /built", "mkdir -p /made"]
cmd = ["sh", "-c", "{facts}"]
restart = "no"
health = {{ cmd = ["test", "-f", "/built"], interval = "100ms", timeout = "1s", retries = 3, start_period = "0s" }}

[env.child]
from = "base"
env = {{ S = "child" }}
user = "1000:1000"
cmd = "echo facts S=$S I=$I pwd=$(pwd) id=$(id -u):$(id -g); exec sleep 1000"
depends_on = ["base"]
restart = "on-failure"
health = {{ cmd = "test -f /built", interval = "200ms", start_period = "1m30s" }}

[env.named]
from = "base"
user = "user"
workdir = "/does/not/exist"
restart = "on-failure:3"

[env.nobody]
from = "base"
user = "nobody:nogroup"
restart = "always"

[env.uid]
from = "base"
user = "1000"
restart = "unless-stopped"

[env.entry]
from = "base"
entrypoint = ["sh", "-c"]
cmd = ["echo facts entry-list; exec sleep 1000"]

[env.entry-str]
from = "base"
entrypoint = "echo facts entry-string; exec sleep 1000"

[env.ports]
from = "base"
cmd = ["sh", "-c", "httpd -p 7001 -h /www; httpd -p 7002 -h /www; httpd -p 7004 -h /www; echo facts ports; exec echo-server 7003"]
ports = ["{http}:7001", "127.0.0.2:{addr}:7002/tcp", "127.0.0.1:{udp}:7003/udp"{v6_mapping}]

[env.limits]
from = "base"
limits = {{ memory = "64MiB", cpus = 0.5, pids = 64 }}

[env.limits-int]
from = "base"
limits = {{ memory = 134217728, cpus = 2, pids = 2 }}
cmd = ["sleep", "1000"]

[env.volumes]
from = "base"
volumes = ["data:/data", "./hostdir:/host:ro", "{abs}:/abs:rw", "./made-by-up:/missing", "./app.ini:/deep/new/app.ini", "vol.with.dots:/deep/dir"]

[env.hostnet]
from = "base"
network = "host"

[env.nonet]
from = "base"
network = "none"

[env.projnet]
from = "base"
network = "project"

[env.isonet]
from = "base"
network = "isolated"

[env.scratch-only]
image = "scratch"

[env.scratch-static]
image = "scratch"
copy = [{{ src = "echo-server", dest = "/echo-server", mode = 0o755 }}]
cmd = ["/echo-server", "7100"]

[env.whole]
image = "rootfs:busybox.tar"
copy = [{{ src = ".", dest = "/proj" }}]
cmd = ["sh", "-c", "echo facts $(ls /proj/www); exec sleep 1000"]

[env.oci-dir]
image = "oci:bb.oci"
cmd = ["sh", "-c", "echo facts oci-dir; exec sleep 1000"]

[env.oci-dir-tag]
image = "oci:bb.oci:1.0"
cmd = ["sh", "-c", "echo facts oci-dir-tag; exec sleep 1000"]

[env.oci-tar]
image = "oci-archive:bb-oci.tar"
cmd = ["sh", "-c", "echo facts oci-tar; exec sleep 1000"]

[env.oci-tar-tag]
image = "oci-archive:bb-1.0.tar:1.0"
cmd = ["sh", "-c", "echo facts oci-tar-tag; exec sleep 1000"]

[env.docker-tar]
image = "docker-archive:bb-docker.tar"
cmd = ["sh", "-c", "echo facts docker-tar; exec sleep 1000"]

[env.registry]
image = "{registry_image}"
cmd = ["sh", "-c", "echo facts registry; exec sleep 1000"]

[env.registry-digest]
image = "{registry_image}@{registry_digest}"
cmd = ["sh", "-c", "echo facts registry-digest; exec sleep 1000"]
"#
    );
    std::fs::write(p.join("berth.toml"), manifest).unwrap();
    dir
}

#[test]
fn every_key_plan_accepts_up_does() {
    let registry = Registry::start();
    let user = User::new();
    let registry_image = format!("{}/walk/busybox:1", registry.addr());
    let digest = user.run(&Berth::with_busybox(), &["push", "busybox", &registry_image]).ok().trim().to_owned();
    let berth = Berth::with_busybox();
    let v6 = TcpListener::bind("[::1]:0").is_ok();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let dir = project(&berth, &registry_image, &digest, ports, v6);
    let d = dir.path();
    let run = |args: &[&str]| user.run_in(&berth, d, args, None);

    let plan = run(&["plan"]);
    assert!(plan.ok().contains("= scratch-only: image only"), "{}", plan.stdout);
    run(&["up", "-d"]).ok();

    // Every env with a command runs, and says so once it has started.
    let facts = |env: &str| log_line(&user, &berth, d, env, "facts");
    assert_eq!(facts("base"), "facts S=text I=4 F=0.5 B=true pwd=/tmp id=0:0");
    assert_eq!(facts("child"), "facts S=child I=4 pwd=/tmp id=1000:1000");
    assert_eq!(facts("named"), "facts S=text I=4 F=0.5 B=true pwd=/does/not/exist id=1000:1000");
    assert!(facts("nobody").ends_with("id=65534:65534"));
    assert!(facts("uid").ends_with("id=1000:1000"));
    assert_eq!(facts("entry"), "facts entry-list");
    assert_eq!(facts("entry-str"), "facts entry-string");
    assert_eq!(facts("whole"), "facts index.html");
    let bases = ["oci-dir", "oci-dir-tag", "oci-tar", "oci-tar-tag", "docker-tar", "registry", "registry-digest"];
    for env in ["ports", "limits", "volumes", "hostnet", "nonet", "projnet", "isonet"].iter().chain(&bases) {
        let line = facts(env);
        assert!(!bases.contains(env) || line == format!("facts {env}"), "{line}");
    }
    log_line(&user, &berth, d, "scratch-static", "ready 7100");
    let ps = run(&["ps", "--json"]).json();
    let mut running: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "running")
        .map(|r| r["env"].as_str().unwrap())
        .collect();
    running.sort();
    let manifest = std::fs::read_to_string(d.join("berth.toml")).unwrap();
    let mut declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("[env.")?.strip_suffix(']'))
        .filter(|e| *e != "scratch-only")
        .collect();
    declared.sort();
    assert_eq!(running, declared, "every env with a command runs: {ps}");

    // Copies and run steps.
    let stats = exec(
        &user,
        &berth,
        d,
        "base",
        "stat -c '%n %a %u:%g' /www/index.html /srv/index.html /etc/app.ini /etc/app2.ini /usr/local/bin/echo-server; cat /built; ls -d /made",
    );
    assert_eq!(
        stats,
        "/www/index.html 644 0:0\n/srv/index.html 644 0:0\n/etc/app.ini 600 1000:1000\n/etc/app2.ini 640 1000:1000\n\
         /usr/local/bin/echo-server 755 0:0\nbuilt\n/made\n"
    );

    // Labels and restart policies.
    let inspect = run(&["inspect", "walk-base", "walk-child", "walk-named", "walk-nobody", "walk-uid"]).json();
    let policies: Vec<&str> =
        inspect.as_array().unwrap().iter().map(|c| c["RestartPolicy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["no", "on-failure", "on-failure:3", "always", "unless-stopped"]);
    assert_eq!(inspect[0]["Labels"]["team"], "qa");
    assert_eq!(inspect[0]["Labels"]["org.example.dotted"], "yes");

    // Health, both forms.
    for env in ["base", "child"] {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ps = run(&["ps", "--json"]).json();
            let row = ps.as_array().unwrap().iter().find(|r| r["env"] == env).cloned().unwrap_or(Value::Null);
            if row["health"]["status"] == "healthy" {
                break;
            }
            assert!(Instant::now() < until, "{env} never became healthy: {row}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Limits, in the container's cgroup (v2 file, else v1).
    let cgroup = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                  cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
                  cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us";
    let limits = exec(&user, &berth, d, "limits", cgroup);
    let lines: Vec<&str> = limits.lines().collect();
    assert_eq!(lines[..2], ["67108864", "64"], "{limits}");
    assert!(lines[2].starts_with("50000"), "{limits}");
    // pids = 2 leaves no room for `exec`: read that env's cgroup from the host.
    let ps = run(&["ps", "--json"]).json();
    let id =
        ps.as_array().unwrap().iter().find(|r| r["env"] == "limits-int").unwrap()["id"].as_str().unwrap().to_owned();
    let host_file = |v2: &str, v1: &str| {
        let v2 = format!("/sys/fs/cgroup/berth/{id}/{v2}");
        let v1 = format!("/sys/fs/cgroup/{v1}").replace("ID", &id);
        std::fs::read_to_string(&v2).or_else(|_| std::fs::read_to_string(&v1)).unwrap_or_else(|e| panic!("{v1}: {e}"))
    };
    assert_eq!(host_file("memory.max", "memory/berth/ID/memory.limit_in_bytes").trim(), "134217728");
    assert_eq!(host_file("pids.max", "pids/berth/ID/pids.max").trim(), "2");
    assert!(host_file("cpu.max", "cpu/berth/ID/cpu.cfs_quota_us").starts_with("200000"));

    // Volumes: named, read-only and read-write binds, a missing host path
    // made by up, a file, and targets missing in the image.
    let volumes = exec(
        &user,
        &berth,
        d,
        "volumes",
        "echo x > /data/f && echo data; echo x > /host/f 2>/dev/null || echo host-ro; echo x > /abs/f && echo abs; \
         echo x > /missing/f && echo missing; cat /deep/new/app.ini; ls -d /deep/dir",
    );
    assert_eq!(volumes, "data\nhost-ro\nabs\nmissing\nconf\n/deep/dir\n");
    assert!(d.join("made-by-up").is_dir() && d.join("abs/f").is_file());

    // Networks: the project's shared namespace, the host's, and none.
    let netns = |env: &str| exec(&user, &berth, d, env, "readlink /proc/self/ns/net; ls /sys/class/net | tr '\\n' ' '");
    let (project_ns, host_ns, none_ns) = (netns("projnet"), netns("hostnet"), netns("nonet"));
    assert_eq!(netns("base"), project_ns);
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap().display().to_string();
    assert!(host_ns.starts_with(&ours), "{host_ns} / {ours}");
    assert!(none_ns.ends_with("\nlo ") && none_ns != project_ns, "{none_ns}");
    // As root the project's namespace reaches out through its bridge; the
    // isolated envs share another, with loopback only.
    assert!(project_ns.contains(" eth0 ") || project_ns.contains("\neth0 "), "{project_ns}");
    let isolated_ns = netns("isonet");
    assert!(isolated_ns.ends_with("\nlo ") && isolated_ns != project_ns && isolated_ns != none_ns, "{isolated_ns}");

    // Published ports: TCP on the default address and on a named one, UDP,
    // and IPv6 loopback when this host has it.
    let [http, addr, udp, v6_port] = ports;
    assert!(http_get(([127, 0, 0, 1], http).into()).ends_with("hello-walk\n"));
    assert!(http_get(([127, 0, 0, 2], addr).into()).ends_with("hello-walk\n"));
    // The peer is 127.0.0.1 through the shim's proxy, the project's gateway
    // (10.123.N.1) through the kernel's DNAT.
    let reply = udp_echo(([127, 0, 0, 1], udp).into(), "walk");
    assert!(reply.starts_with("udp walk from 127.0.0.1:") || reply.starts_with("udp walk from 10.123."), "{reply}");
    if v6 {
        assert!(http_get(SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), v6_port)).ends_with("hello-walk\n"));
    }

    // Nothing left to do: what was planned is what runs.
    let again = run(&["plan", "--exit-code"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    run(&["down", "-v"]).ok();
}

#[test]
fn the_project_name_defaults_to_the_directory() {
    let berth = Berth::new();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("My Shop");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.join("busybox.tar")).unwrap();
    std::fs::write(dir.join("berth.toml"), "[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"1000\"]\n")
        .unwrap();
    berth.run_in(&dir, &["plan"]).ok();
    berth.run_in(&dir, &["up", "-d"]).ok();
    let ps = berth.run(&["ps", "--json"]).json();
    assert_eq!(ps[0]["name"], "my-shop-app", "{ps}");
    assert_eq!(ps[0]["status"], "running", "{ps}");
    berth.run_in(&dir, &["down"]).ok();
}

#[test]
fn plan_refuses_what_up_cannot_do() {
    let berth = Berth::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(support::image::busybox_tar(), d.join("busybox.tar")).unwrap();
    // Limits below what a container can run with.
    let limits = "[env.a]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"1\"]\n\
                  limits = { memory = \"1k\", cpus = 0.001, pids = 1 }\n";
    std::fs::write(d.join("berth.toml"), limits).unwrap();
    let err = berth.run_in(d, &["plan"]).fails_with(1).to_owned();
    for want in [
        "berth.toml:4:21: memory limit 1KiB is too small: a container needs at least 1MiB",
        "berth.toml:4:34: bad cpus limit: expected a number of CPUs of at least 0.01",
        "berth.toml:4:48: bad pids limit: expected a number of processes of at least 2",
    ] {
        assert!(err.contains(want), "{want}\nnot in:\n{err}");
    }
    // An archive base whose tag names no image of the archive.
    berth.run(&["save", "busybox", "-o", &d.join("bb.tar").to_string_lossy()]).ok();
    let archive = "[env.a]\nimage = \"oci-archive:bb.tar:latest\"\ncmd = [\"sleep\", \"1\"]\n";
    std::fs::write(d.join("berth.toml"), archive).unwrap();
    let err = berth.run_in(d, &["plan"]).fails_with(1).to_owned();
    assert!(err.contains("no image tagged \"latest\"; tags in it: busybox:latest"), "{err}");
    // A legacy `docker save` archive named as an OCI archive.
    berth.run(&["save", "busybox", "--format", "docker-archive", "-o", &d.join("legacy.tar").to_string_lossy()]).ok();
    let legacy = "[env.a]\nimage = \"oci-archive:legacy.tar\"\ncmd = [\"sleep\", \"1\"]\n";
    std::fs::write(d.join("berth.toml"), legacy).unwrap();
    let err = berth.run_in(d, &["plan"]).fails_with(1).to_owned();
    assert!(err.contains("name it as docker-archive:FILE"), "{err}");
}
