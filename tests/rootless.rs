//! berth as an ordinary user (issue 12): every test runs berth as the
//! unprivileged user of `support::rootless`, with its own store in a
//! directory that user owns.

mod support;

use support::rootless::{Rootless, owner};

/// Import and a foreground run work without root: container root is uid 0
/// inside, and the store's files belong to the user (container root) and
/// to its subordinate range (other ids), as the image means them.
#[test]
fn import_and_run_as_an_ordinary_user() {
    let r = Rootless::with_busybox();
    let out = r.run(&["run", "--rm", "busybox:latest", "id"]);
    assert!(out.ok().contains("uid=0(root) gid=0(root)"), "{}", out.stdout);

    // The unpacked layer: /bin/busybox is container root's, /home/user is
    // container 1000:1000's.
    let layers: Vec<_> = std::fs::read_dir(r.store_root().join("layers")).unwrap().flatten().collect();
    assert_eq!(layers.len(), 1, "one layer");
    let layer = layers[0].path();
    assert_eq!(owner(&layer.join("bin/busybox")), (r.user.uid, r.user.gid));
    assert_eq!(owner(&layer.join("home/user")), (r.user.host_uid(1000), r.user.host_gid(1000)));

    // Inside, the same file shows the image's own ids.
    let out = r.run(&["run", "--rm", "busybox:latest", "stat", "-c", "%u:%g", "/home/user"]);
    assert_eq!(out.ok().trim(), "1000:1000");
}

/// A detached container as an ordinary user: later invocations reach it
/// (exec, logs, ps, stop, start, restart, kill, rm), and `-e` reaches it.
#[test]
fn detached_containers_are_reached_by_later_verbs() {
    let r = Rootless::with_busybox();
    let script = "trap 'exit 0' TERM; echo ready $GREETING; while true; do sleep 1 & wait; done";
    r.detach(&["--name", "web", "-e", "GREETING=hi", "busybox:latest", "sh", "-c", script]);
    r.wait_for_log("web", "ready hi");

    let exec = r.run(&["exec", "web", "sh", "-c", "id; echo $GREETING"]);
    assert!(exec.ok().contains("uid=0(root)") && exec.stdout.contains("hi"), "{}", exec.stdout);
    let ps = r.run(&["ps"]);
    assert!(ps.ok().contains("web") && ps.stdout.contains(" Up "), "{}", ps.stdout);

    r.run(&["stop", "web"]).ok();
    let ps = r.run(&["ps", "-a"]);
    assert!(ps.ok().contains("web") && ps.stdout.contains("Exited"), "{}", ps.stdout);

    r.run(&["start", "web"]).ok();
    support::wait_until("web ready twice", || r.wait_for_log("web", "ready hi").matches("ready hi").count() >= 2);
    r.run(&["restart", "web"]).ok();
    support::wait_until("web ready three times", || r.wait_for_log("web", "ready hi").matches("ready hi").count() >= 3);
    r.run(&["kill", "web"]).ok();
    support::wait_until("web stopped by kill", || !r.run(&["ps"]).ok().contains("web"));
    r.run(&["rm", "web"]).ok();
    assert!(!r.run(&["ps", "-a"]).ok().contains("web"));
}

/// Bind mounts: container root is the user on the host, so it cannot
/// change a root-owned file handed in, and what it creates belongs to the
/// user.
#[test]
fn bind_mounts_keep_the_hosts_owners() {
    let r = Rootless::with_busybox();
    let shared = r.home().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(r.user.uid), Some(r.user.gid)).unwrap();
    let root_file = r.home().join("root-owned");
    std::fs::write(&root_file, "root's\n").unwrap(); // written by the test, as root

    let rw = format!("{}:/etc/hostfile", root_file.display());
    let ro = format!("{}:/etc/hostfile-ro:ro", root_file.display());
    let vol = format!("{}:/shared", shared.display());
    let out = r.run(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "-v",
        &ro,
        "-v",
        &vol,
        "busybox:latest",
        "sh",
        "-c",
        "cat /etc/hostfile; echo x >> /etc/hostfile && echo WROTE; echo x >> /etc/hostfile-ro && echo WROTE-RO; \
         echo new > /shared/made; echo done",
    ]);
    let text = format!("{}{}", out.ok(), out.stderr);
    assert!(text.contains("root's") && text.contains("done"), "{text}");
    assert!(!text.contains("WROTE"), "container root changed a root-owned host file: {text}");
    assert!(text.contains("Permission denied") || text.contains("Read-only"), "{text}");
    assert_eq!(std::fs::read_to_string(&root_file).unwrap(), "root's\n");
    assert_eq!(owner(&shared.join("made")), (r.user.uid, r.user.gid));
}

/// A published port is served from the host: the shim's proxy listens in
/// the host's network namespace and connects inside the container's.
#[test]
fn a_published_port_answers_from_the_host() {
    use std::io::{Read, Write};
    let r = Rootless::with_busybox();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let publish = format!("{port}:8000");
    r.detach(&[
        "--name",
        "www",
        "-p",
        &publish,
        "busybox:latest",
        "sh",
        "-c",
        "mkdir /www; echo hello-rootless > /www/index.html; exec httpd -f -p 8000 -h /www",
    ]);
    let reply = support::poll("an answer from the published port", || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply.contains("200 OK").then_some(reply)
    });
    assert!(reply.ends_with("hello-rootless\n"), "{reply}");
}

/// `--network host` keeps the host's network (and, since a new sysfs needs
/// a network namespace of its own, shows the host's /sys read-only).
#[test]
fn host_network_works_rootless() {
    let r = Rootless::with_busybox();
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let out = r.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox:latest",
        "sh",
        "-c",
        "ls /sys/class/net; touch /sys/x || echo RO",
    ]);
    let text = out.ok();
    let inside: Vec<&str> = text.lines().filter(|l| *l != "RO").collect();
    assert_eq!(inside, host, "{text}");
    assert!(text.contains("RO"), "/sys is read-only: {text}");
}

/// `run -it`: the container gets a terminal, as an ordinary user.
#[test]
fn interactive_terminal_works_rootless() {
    let r = Rootless::with_busybox();
    let mut terminal = support::stream::Terminal::run(&r.shell_line(&["run", "--rm", "-it", "busybox:latest", "sh"]));
    terminal.type_keys(b"tty; id -u; exit\n");
    let shown = terminal.finish();
    assert!(shown.contains("/dev/pts/0") || shown.contains("/dev/console"), "{shown}");
    assert!(shown.lines().any(|l| l.trim() == "0"), "{shown}");
}

/// Limits on a host that delegates no cgroup to the user (cgroup v1 here):
/// refused with the reason, run with a warning under `--limits=ignore`,
/// shown by `plan` and refused by `up` the same way.
#[test]
fn limits_without_a_delegated_cgroup_fail_clearly_unless_ignored() {
    let r = Rootless::with_busybox();
    let refused = r.run(&["run", "--rm", "--memory", "64m", "--pids-limit", "50", "busybox:latest", "true"]);
    let err = refused.stderr.clone();
    assert_ne!(refused.code, 0, "a limit must not be dropped silently");
    assert!(err.contains("memory, pids cannot be applied") && err.contains("--limits=ignore"), "{err}");
    assert!(err.contains("cgroup"), "says why: {err}");
    assert_eq!(r.run(&["ps", "-aq"]).ok().trim(), "", "nothing was created");

    let ran = r.run(&["run", "--rm", "--memory", "64m", "--limits=ignore", "busybox:latest", "echo", "ran"]);
    assert_eq!(ran.ok().trim(), "ran");
    assert!(ran.stderr.contains("warning") && ran.stderr.contains("memory are not applied"), "{}", ran.stderr);

    let manifest = "project = \"limited\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n\
                    limits = { memory = \"64MiB\", pids = 50 }\n";
    let dir = r.project("limited", manifest);
    let plan = r.run_in(&dir, &["plan"]);
    assert!(plan.ok().contains("limits: memory 64MiB, pids 50 cannot be applied"), "{}", plan.stdout);
    let up = r.run_in(&dir, &["up", "-d"]);
    assert_ne!(up.code, 0, "{}", up.stderr);
    assert!(up.stderr.contains("cannot be applied"), "{}", up.stderr);
    let up = r.run_in(&dir, &["up", "-d", "--limits=ignore"]);
    up.ok();
    assert!(up.stderr.contains("not applied"), "{}", up.stderr);
    let ps = r.run_in(&dir, &["ps"]);
    assert!(ps.ok().lines().any(|l| l.starts_with("app ") && l.contains("running")), "{}", ps.stdout);
    r.run_in(&dir, &["down"]).ok();
}

const BUILT: &str = r#"
project = "same"

[env.app]
image = "rootfs:busybox.tar"
copy = [{ src = "app", dest = "/srv/app" }]
run = ["rm /bin/cpio && rm -rf /home && mkdir -p /home/user /srv/data && chown 1000:1000 /srv/data /home/user && echo built > /srv/data/x"]
cmd = ["sh", "-c", "cat /srv/app/hello /srv/data/x; ls -ln /srv | grep data"]
"#;

/// `REPOSITORY:TAG MANIFEST-DIGEST` of every image `berth images --json` lists.
fn image_digests(images: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}:{} {}", i["repository"], i["tag"], i["manifest"].as_str().unwrap()))
        .collect();
    out.sort();
    out
}

/// A build with copy and run steps (a deletion, an opaque directory, files
/// of another owner) as an ordinary user gives the very image root's build
/// of the same manifest gives, and it runs.
#[test]
fn rootless_builds_give_roots_digests() {
    let r = Rootless::new();
    let dir = r.project("same", BUILT);
    std::fs::create_dir(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/hello"), "hello\n").unwrap();
    for p in [dir.join("app"), dir.join("app/hello")] {
        std::os::unix::fs::chown(&p, Some(r.user.uid), Some(r.user.gid)).unwrap();
    }
    r.run_in(&dir, &["build"]).ok();
    let root = support::Berth::new();
    root.run_in(&dir, &["build"]).ok();

    let theirs = image_digests(&root.run(&["images", "--json"]).json());
    let ours = image_digests(&r.run(&["images", "--json"]).json());
    assert!(ours.iter().any(|i| i.starts_with("\"same/app\":\"latest\" sha256:")), "{ours:?}");
    assert_eq!(ours, theirs, "the same manifest built rootless and as root");

    let out = r.run(&["run", "--rm", "same/app:latest"]);
    let text = out.ok();
    assert!(text.starts_with("hello\nbuilt\n") && text.contains(" 1000 "), "{text}");
}

/// Supplementary groups without root: the groups of the image's
/// `/etc/group` that the subordinate range holds are set, one it does not
/// hold (70000) is skipped, as podman does, rather than refusing the run.
#[test]
fn supplementary_groups_outside_the_range_are_skipped() {
    let r = Rootless::with_busybox();
    let ctx = r.home().join("groups");
    std::fs::create_dir(&ctx).unwrap();
    let dockerfile = "FROM busybox:latest\nRUN printf 'wheel:x:10:user\\nfar:x:70000:user\\n' >> /etc/group\n";
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for p in [ctx.clone(), ctx.join("Dockerfile")] {
        std::os::unix::fs::chown(&p, Some(r.user.uid), Some(r.user.gid)).unwrap();
    }
    r.run(&["build", "-q", "-t", "groups:1", ctx.to_str().unwrap()]).ok();
    let out = r.run(&["run", "--rm", "-u", "user", "groups:1", "id"]);
    assert_eq!(out.ok(), "uid=1000(user) gid=1000(user) groups=10(wheel),1000(user)\n");
    let out = r.run(&["run", "--rm", "groups:1", "id"]);
    assert_eq!(out.ok(), "uid=0(root) gid=0(root) groups=0(root)\n");
}

/// A commit with deletions made as an ordinary user round-trips through
/// `save` into podman (run as root), which sees the deletions.
#[test]
fn rootless_commit_with_deletions_loads_in_podman() {
    let r = Rootless::with_busybox();
    r.detach(&["--name", "snap", "busybox:latest", "sh", "-c", "touch /ready; exec sleep 300"]);
    support::wait_until("the container to start", || r.run(&["exec", "snap", "test", "-e", "/ready"]).code == 0);
    r.run(&[
        "exec",
        "snap",
        "sh",
        "-c",
        "echo kept > /kept && rm /bin/vi && rm -rf /home && mkdir /home && echo new > /home/new",
    ])
    .ok();
    r.run(&["commit", "snap", "snap:1"]).ok();
    let archive = r.home().join("snap.tar");
    r.run(&["save", "snap:1", "-o", archive.to_str().unwrap()]).ok();

    let podman = support::podman::Podman::new();
    let loaded = podman.ok(&["load", "-i", archive.to_str().unwrap()]);
    let name = loaded.lines().find_map(|l| l.strip_prefix("Loaded image: ")).unwrap_or_else(|| panic!("{loaded}"));
    let check = "cat /kept; test -e /bin/vi && echo vi || echo no-vi; test -e /bin/ls && echo ls; ls -A /home";
    assert_eq!(podman.run_rm(name, &["sh", "-c", check]), "kept\nno-vi\nls\nnew\n");
}

const PAIR: &str = r#"
project = "pair"

[env.web]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 8000 -h /www"]
ports = ["127.0.0.1:PORT:8000"]

[env.client]
image = "rootfs:busybox.tar"
depends_on = ["web"]
cmd = ["sh", "-c", "until wget -q -O - http://web:8000/; do sleep 0.2; done; exec sleep 300"]
"#;

/// `up` and `down` of a two-env project as an ordinary user: the envs share
/// the project's network namespace (kept in the store's user namespace
/// between invocations), and a published port answers from the host.
#[test]
fn a_two_env_project_goes_up_and_down_rootless() {
    use std::io::{Read, Write};
    let r = Rootless::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = r.project("pair", &PAIR.replace("PORT", &port.to_string()));
    r.run_in(&dir, &["up", "-d"]).ok();
    let reply = support::poll("an answer from web's published port", || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply.contains("200 OK").then_some(reply)
    });
    assert!(reply.ends_with("from-web\n"), "{reply}");
    support::poll("client to reach web by name", || {
        let logs = r.run_in(&dir, &["logs", "client"]);
        logs.stdout.contains("from-web").then_some(())
    });
    let ps = r.run_in(&dir, &["ps"]);
    assert!(ps.ok().lines().filter(|l| l.contains("running")).count() == 2, "{}", ps.stdout);

    r.run_in(&dir, &["down"]).ok();
    assert_eq!(r.run(&["ps", "-aq"]).ok().trim(), "");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the port is released");
}

const DEBIAN: &str = r#"
project = "deb"

[env.base]
bootstrap = { suite = "bookworm", variant = "minbase" }

[env.py]
from = "base"
packages = ["python3"]
cmd = ["python3", "-c", "import os; print('py', os.getuid())"]
"#;

/// THE ROOTLESS DOWNLOADING TEST (the Debian archive, about 50 MB): a
/// Debian bootstrap (mmdebstrap as root of the store's user namespace) and
/// `packages = ["python3"]` (apt in a build container) as an ordinary user;
/// the image's own ids land in the user's range on the host.
#[test]
fn debian_bootstrap_and_packages_rootless() {
    support::image::require_tool("mmdebstrap", "mmdebstrap");
    let r = Rootless::new();
    let dir = r.project("deb", DEBIAN);
    r.run_in(&dir, &["build"]).ok();
    let out = r.run(&["run", "--rm", "deb/py:latest"]);
    assert_eq!(out.ok().trim(), "py 0");
    // /etc/shadow belongs to group shadow (42) in Debian: on the host, to
    // the user's subordinate gid for 42.
    let shadow = std::fs::read_dir(r.store_root().join("layers"))
        .unwrap()
        .flatten()
        .map(|l| l.path().join("etc/shadow"))
        .find(|p| p.exists())
        .expect("a layer with /etc/shadow");
    assert_eq!(owner(&shadow), (r.user.uid, r.user.host_gid(42)));
}

/// A user with no subordinate range: berth maps container root alone. An
/// image whose files are all root's imports and runs; a `user` other than
/// root, or an image with a file of another owner, fails with a plain
/// message naming the user or the file and the `usermod` that fixes it.
#[test]
fn without_a_subordinate_range_only_root_is_mapped() {
    let r = Rootless::without_range();
    // busybox with every file made root's (as root, by the test).
    let unpacked = r.home().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = |args: &[&str]| {
        let out = std::process::Command::new("tar").args(args).output().unwrap();
        assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let busybox = support::image::busybox_tar();
    tar(&["-xf", busybox.to_str().unwrap(), "-C", unpacked.to_str().unwrap()]);
    let all_root = r.home().join("all-root.tar");
    tar(&[
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-cf",
        all_root.to_str().unwrap(),
        "-C",
        unpacked.to_str().unwrap(),
        ".",
    ]);

    r.run(&["import", all_root.to_str().unwrap(), "mine:1"]).ok();
    let out = r.run(&["run", "--rm", "mine:1", "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", &r.user.uid.to_string(), "1"], "{text}");

    let refused = r.run(&["run", "--rm", "--user", "1000", "mine:1", "true"]);
    let err = refused.fails_with(1);
    assert!(err.contains("\"1000\"") && err.contains("uid 1000") && err.contains("usermod --add-subuids"), "{err}");
    assert_eq!(r.run(&["ps", "-aq"]).ok().trim(), "", "nothing is left of the refused container");

    // The busybox image has /home/user owned by 1000.
    let refused = r.run(&["import", busybox.to_str().unwrap(), "busybox:latest"]);
    let err = refused.fails_with(1);
    assert!(err.contains("home/user") && err.contains("usermod --add-subuids"), "{err}");
    let images = r.run(&["images", "--json"]).json();
    assert_eq!(images.as_array().unwrap().len(), 1, "only mine:1: {images}");
}

/// Images as an ordinary user: commit, export/import, save/load, push to
/// and pull from a registry on loopback (the registry runs as root), logs,
/// gc and fsck.
#[test]
fn image_verbs_round_trip_rootless() {
    let r = Rootless::with_busybox();
    let path = |name: &str| r.home().join(name).to_str().unwrap().to_owned();
    r.detach(&["--name", "box", "busybox:latest", "sh", "-c", "echo made > /made; echo box is up; exec sleep 300"]);
    assert!(r.wait_for_log("box", "box is up").contains("box is up"));
    r.run(&["commit", "box", "box:1"]).ok();

    // export → import: a flat filesystem with the container's file.
    r.run(&["export", "box", "-o", &path("box-fs.tar")]).ok();
    r.run(&["import", &path("box-fs.tar"), "flat:1"]).ok();
    assert_eq!(r.run(&["run", "--rm", "flat:1", "cat", "/made"]).ok(), "made\n");

    // save → rmi → load: the same image comes back.
    let digest = |r: &Rootless| {
        let images = r.run(&["images", "--json"]).json();
        let row = images.as_array().unwrap().iter().find(|i| i["repository"] == "box").cloned();
        row.map(|i| i["manifest"].as_str().unwrap().to_owned())
    };
    let saved = digest(&r).expect("box:1 listed");
    r.run(&["save", "box:1", "-o", &path("box-img.tar")]).ok();
    r.run(&["rmi", "box:1"]).ok();
    assert_eq!(digest(&r), None);
    r.run(&["load", "-i", &path("box-img.tar")]).ok();
    assert_eq!(digest(&r).as_deref(), Some(saved.as_str()));
    assert_eq!(r.run(&["run", "--rm", "box:1", "cat", "/made"]).ok(), "made\n");

    // push → rmi → pull against a registry on 127.0.0.1.
    let registry = support::registry::Registry::start();
    let remote = format!("{}/team/box:1", registry.addr());
    let pushed = r.run(&["push", "box:1", &remote]).ok().trim().to_owned();
    assert_eq!(pushed, saved, "the pushed manifest is the saved one");
    let pulled = r.run(&["pull", &remote]).ok().trim().to_owned();
    assert_eq!(pulled, saved);
    assert_eq!(r.run(&["run", "--rm", &remote, "cat", "/made"]).ok(), "made\n");

    // gc after the container is gone, and fsck: the store is consistent.
    r.run(&["rm", "-f", "box"]).ok();
    r.run(&["rmi", "flat:1"]).ok();
    r.run(&["gc"]).ok();
    let fsck = r.run(&["fsck"]);
    assert!(fsck.ok().starts_with("store is consistent"), "{}", fsck.stdout);
    assert_eq!(r.run(&["run", "--rm", "box:1", "cat", "/made"]).ok(), "made\n", "gc kept what is tagged");
}

const FROZEN: &str = r#"
project = "qa"

[env.web]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "echo web is up; exec sleep 300"]
userns = "auto"
"#;

/// snapshot, freeze and `up --from` as an ordinary user: what the running
/// container made travels in the archive into a fresh store. (The env
/// asks for `userns = "auto"`, which without root is the store's own
/// namespace: one berth.toml serves root and ordinary users.)
#[test]
fn snapshot_freeze_and_up_from_rootless() {
    let r = Rootless::new();
    let dir = r.project("qa", FROZEN);
    r.run_in(&dir, &["up", "-d"]).ok();
    r.run_in(&dir, &["exec", "web", "sh", "-c", "echo by hand > /extra"]).ok();
    r.run_in(&dir, &["snapshot", "web", "-t", "qa/web:snap"]).ok();
    assert_eq!(r.run(&["run", "--rm", "qa/web:snap", "cat", "/extra"]).ok(), "by hand\n");
    let archive = r.home().join("handoff.tar");
    r.run_in(&dir, &["freeze", "web", "-o", archive.to_str().unwrap()]).ok();
    r.run_in(&dir, &["down"]).ok();
    // handoff.tar is written by the user, in the user's home.
    assert_eq!(owner(&archive).0, r.user.uid);

    let qa = Rootless::new();
    let elsewhere = qa.home();
    let up = qa.run_in(&elsewhere, &["up", "--from", archive.to_str().unwrap()]);
    up.ok();
    assert!(up.stderr.contains("web: created and started"), "{}", up.stderr);
    assert_eq!(qa.run_in(&elsewhere, &["exec", "qa-web", "cat", "/extra"]).ok(), "by hand\n");
    qa.run_in(&elsewhere, &["down", "--from", archive.to_str().unwrap()]).ok();
}

/// `up --watch` as an ordinary user: one change is applied (an env edit
/// recreates the env); the watch is ended by its pid.
#[test]
fn up_watch_applies_a_change_rootless() {
    use support::stream::{Collected, wait_child};
    /// The watch, killed by its pid if the test fails first.
    struct Watch(std::process::Child);
    impl Drop for Watch {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }
    let r = Rootless::new();
    let manifest = FROZEN.replace("project = \"qa\"", "project = \"watched\"");
    let dir = r.project("watched", &manifest);
    let mut cmd = r.command(&dir, &["up", "--watch"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut watch = Watch(cmd.spawn().unwrap());
    let said = Collected::start(watch.0.stderr.take().unwrap());
    let _shown = Collected::start(watch.0.stdout.take().unwrap());
    let at = said.wait_for(0, "watching ");
    assert!(said.text().contains("web: created and started"), "{}", said.text());
    let edited = manifest.replace("[env.web]\n", "[env.web]\nenv = { MODE = \"qa\" }\n");
    std::fs::write(dir.join("berth.toml"), edited).unwrap();
    said.wait_for(at, "web: recreated (env_vars: {} -> {\"MODE\":\"qa\"})");
    assert_eq!(r.run_in(&dir, &["exec", "web", "sh", "-c", "echo $MODE"]).ok(), "qa\n");
    // Ended as Ctrl-C would end it, by the pid of the berth this test started.
    let pid = nix::unistd::Pid::from_raw(watch.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_child(&mut watch.0, "berth up --watch after SIGINT");
    assert!(status.success(), "{status}");
    r.run_in(&dir, &["down"]).ok();
}
