//! Overlay layering, `exec_in`, terminals, limits, volumes, hostile images,
//! shared network namespaces, and `before_start`.

use oci_spec::runtime::PosixRlimitType;

use super::fixture::{Fixture, finish, init, pipes, run, spec, spec_with, start, write_busybox_image};
use crate::runtime::process::{Launch, ProcessError, Stdio, exec_in, launch};
use crate::runtime::spec::{BindMount, NetworkMode, RlimitRequest};
use crate::sys::proc as sysproc;
use nix::sys::signal::Signal;

fn skip() -> bool {
    super::fixture::skip()
}

#[test]
fn two_hundred_layers_mount_top_first() {
    if skip() {
        return;
    }
    let fx = Fixture::empty(200);
    // Bottom layer: busybox; each layer i writes /layers/i and /which.
    write_busybox_image(&fx.rootfs.lowers[199]);
    for (i, layer) in fx.rootfs.lowers.iter().enumerate() {
        std::fs::create_dir_all(layer.join("layers")).unwrap();
        std::fs::write(layer.join("layers").join(i.to_string()), "").unwrap();
        std::fs::write(layer.join("which"), i.to_string()).unwrap();
    }
    let out =
        run(&spec(&["sh", "-c", "cat /which; echo; ls /layers | wc -l; echo new > /which; cat /which"]), &fx).unwrap();
    assert_eq!(out.stdout, "0\n200\nnew\n", "{out:?}");
    // The write went to the upper layer only.
    assert_eq!(std::fs::read_to_string(fx.rootfs.upper.join("which")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(fx.rootfs.lowers[0].join("which")).unwrap(), "0");
}

#[test]
fn an_image_without_layers_gets_an_empty_root() {
    if skip() {
        return;
    }
    let fx = Fixture::empty(0);
    // Only the upper layer has content: a busybox written "by the container".
    write_busybox_image(&fx.rootfs.upper);
    let out = run(&spec(&["sh", "-c", "ls /bin/busybox && touch /made"]), &fx).unwrap();
    assert_eq!((out.code, out.stdout.as_str()), (0, "/bin/busybox\n"), "{out:?}");
    assert!(fx.rootfs.upper.join("made").exists());
}

#[test]
fn exec_in_joins_the_containers_namespaces() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let s = spec_with(&["sleep", "60"], |r| r.cwd = Some("/tmp".into()));
    let (pid, out, err) = start(&s, &fx).unwrap();
    let _guard = super::fixture::KillOnDrop(pid);
    let names = ["mnt", "pid", "uts", "ipc", "net", "cgroup"];
    let want: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap().to_string_lossy().into_owned())
        .collect();

    let mut process = s.process().clone().unwrap();
    let script = names.map(|n| format!("readlink /proc/self/ns/{n}")).join("; ")
        + "; hostname; pwd; echo $PPID; \
                  grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '";
    process.set_args(Some(vec!["sh".into(), "-c".into(), script]));
    let (stdio, eout, eerr) = pipes();
    let placed = std::cell::Cell::new(None);
    let epid = exec_in(pid, &process, None, stdio, init(), &|p| {
        placed.set(Some(p));
        Ok(())
    })
    .unwrap();
    assert_eq!(placed.get(), Some(epid));
    let got = finish(epid, eout, eerr);
    let lines: Vec<&str> = got.stdout.lines().collect();
    assert_eq!(lines[..6], want[..], "{got:?}");
    assert_eq!(lines[6..], ["box", "/tmp", "0", "CapEff: 00000000a80425fb", "NoNewPrivs: 0"], "{got:?}");

    let mut missing = process.clone();
    missing.set_args(Some(vec!["nope".into()]));
    let (stdio, _o, _e) = pipes();
    let e = exec_in(pid, &missing, None, stdio, init(), &|_| Ok(())).unwrap_err();
    assert_eq!(e.exit_code(), Some(127), "{e}");

    sysproc::kill(pid, Signal::SIGKILL).unwrap();
    finish(pid, out, err);
    assert_eq!(fx.host_mounts(), Vec::<String>::new());
}

#[test]
fn a_terminal_becomes_the_controlling_tty() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let (master, slave) = crate::sys::pty::open_pair().unwrap();
    let s = spec_with(&["sh", "-c", "test -t 0 && echo tty; ls /dev/console; ps -o pid,comm | tr -s ' '"], |r| {
        r.terminal = true
    });
    let pid = launch(Launch {
        spec: &s,
        rootfs: &fx.rootfs,
        stdio: Stdio::terminal(slave).unwrap(),
        init: init(),
        before_start: &|_| Ok(()),
    })
    .unwrap();
    let mut text = String::new();
    let mut master = std::fs::File::from(master);
    // Read until the slave side is gone (EIO).
    let mut buf = [0u8; 4096];
    while let Ok(n) = std::io::Read::read(&mut master, &mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(sysproc::wait_exit(pid).unwrap().code(), 0);
    let text = text.replace('\r', "");
    assert!(text.starts_with("tty\n/dev/console\n"), "{text:?}");
    let comm: String = std::fs::read_to_string("/proc/self/comm").unwrap().trim().chars().take(15).collect();
    assert!(
        text.contains(" 1 memfd:berth-ini") || text.contains(&format!(" 1 {comm}")),
        "PID 1 is berth's init: {text:?}"
    );
}

#[test]
fn rlimits_are_set_but_never_above_our_hard_limit() {
    if skip() {
        return;
    }
    let (_, our_hard) = sysproc::get_rlimit(sysproc::Rlimit::RLIMIT_NOFILE).unwrap();
    let fx = Fixture::busybox();
    let s = spec_with(&["sh", "-c", "ulimit -n; ulimit -H -n"], |r| {
        r.rlimits.push(RlimitRequest { kind: PosixRlimitType::RlimitNofile, soft: 100, hard: u64::MAX - 1 })
    });
    let out = run(&s, &fx).unwrap();
    assert_eq!(out.stdout, format!("100\n{our_hard}\n"), "{out:?}");
}

#[test]
fn volumes_and_etc_files_are_bound() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let data = fx.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in"), "hello").unwrap();
    let hosts = fx.dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 box db\n").unwrap();
    let s = spec_with(
        &["sh", "-c", "cat /data/in; echo; touch /data/x 2>/dev/null || echo ro; grep db /etc/hosts; touch /rw/y"],
        |r| {
            r.mounts.push(BindMount { source: data.clone(), destination: "/data".into(), readonly: true });
            r.mounts.push(BindMount { source: data.clone(), destination: "/rw".into(), readonly: false });
            r.etc.hosts = Some(hosts.clone());
        },
    );
    let out = run(&s, &fx).unwrap();
    assert_eq!(out.stdout, "hello\nro\n127.0.0.1 box db\n", "{out:?}");
    assert!(data.join("y").exists() && !data.join("x").exists());
}

#[test]
fn symlinks_in_the_image_cannot_redirect_mounts_to_the_host() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let victim = fx.dir.path().join("victim");
    let victim2 = fx.dir.path().join("victim2");
    std::fs::create_dir(&victim).unwrap();
    std::fs::create_dir(&victim2).unwrap();
    let img = &fx.rootfs.lowers[0];
    // /dev and /sys point at a host directory by absolute path and by `..`.
    std::fs::remove_dir(img.join("dev")).unwrap();
    std::os::unix::fs::symlink(&victim, img.join("dev")).unwrap();
    std::fs::remove_dir(img.join("sys")).unwrap();
    let dots = format!("../../../../../../..{}", victim2.display());
    std::os::unix::fs::symlink(&dots, img.join("sys")).unwrap();
    let out = run(&spec(&["sh", "-c", "ls /dev/null && echo ok"]), &fx).unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    for v in [&victim, &victim2] {
        assert_eq!(std::fs::read_dir(v).unwrap().count(), 0, "the container wrote into the host's {v:?}");
    }
    // What the symlinks pointed at was made inside the container's root.
    assert!(fx.rootfs.upper.join(victim.strip_prefix("/").unwrap()).is_dir());
}

#[test]
fn containers_can_share_a_network_namespace() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let (pid, out, err) = start(&spec(&["sleep", "60"]), &fx).unwrap();
    let _guard = super::fixture::KillOnDrop(pid);
    let netns = format!("/proc/{pid}/ns/net");
    let want = std::fs::read_link(&netns).unwrap().to_string_lossy().into_owned();
    let fx2 = Fixture::busybox();
    let s = spec_with(&["sh", "-c", "readlink /proc/self/ns/net; ip -o link show up | cut -d: -f2"], |r| {
        r.network = NetworkMode::Join(netns.clone().into())
    });
    let got = run(&s, &fx2).unwrap();
    sysproc::kill(pid, Signal::SIGKILL).unwrap();
    finish(pid, out, err);
    assert_eq!(got.stdout, format!("{want}\n lo\n"), "{got:?}");
}

#[test]
fn before_start_runs_first_and_can_abort() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let (stdio, _out, _err) = pipes();
    let e = launch(Launch {
        spec: &spec(&["true"]),
        rootfs: &fx.rootfs,
        stdio,
        init: init(),
        before_start: &|pid| {
            // The child exists but has no namespaces of its own but PID yet.
            let mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).map_err(|e| e.to_string())?;
            let ours = std::fs::read_link("/proc/self/ns/mnt").map_err(|e| e.to_string())?;
            assert_eq!(mnt, ours);
            Err("no cgroup for you".into())
        },
    })
    .unwrap_err();
    assert!(matches!(e, ProcessError::BeforeStart { .. }), "{e}");
    assert!(e.to_string().ends_with("no cgroup for you"), "{e}");
    assert_eq!(fx.host_mounts(), Vec::<String>::new());
}

#[test]
fn setup_failures_name_the_step() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    std::fs::remove_dir(&fx.rootfs.work).unwrap();
    let (stdio, _out, _err): (Stdio, _, _) = pipes();
    let e =
        launch(Launch { spec: &spec(&["true"]), rootfs: &fx.rootfs, stdio, init: init(), before_start: &|_| Ok(()) })
            .unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("starting the container: mounting the root filesystem: mounting the overlay"), "{text}");
    assert!(text.contains("work"), "{text}");
}

#[test]
fn cgroup_filesystem_shows_the_containers_own_cgroup() {
    if skip() {
        return;
    }
    let out = run(
        &spec(&[
            "sh",
            "-c",
            "cat /proc/self/cgroup | head -n 3; ls /sys/fs/cgroup | head -n 3; touch /sys/fs/cgroup/x || true",
        ]),
        &Fixture::busybox(),
    )
    .unwrap();
    for line in out.stdout.lines().take(3) {
        assert!(line.ends_with(":/"), "cgroup paths are relative to the container's cgroup namespace: {out:?}");
    }
    assert!(out.stdout.lines().count() >= 4, "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
}

/// Not a timed test: prints what a start costs here. Run with
/// `cargo test --release --lib runtime::tests::more::measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_start_costs() {
    if skip() {
        return;
    }
    let mut paths = vec![std::path::PathBuf::from("/proc/self/exe")];
    if let Ok(p) = std::env::var("BERTH_BIN") {
        paths.push(p.into());
    }
    for p in paths {
        let mut times: Vec<f64> = (0..10)
            .map(|_| crate::runtime::process::InitExe::from_path(&p).unwrap())
            .map(|i| (i.creation_time().as_secs_f64() * 1e3, i.len()).0)
            .collect();
        times.sort_by(f64::total_cmp);
        let len = crate::runtime::process::InitExe::from_path(&p).unwrap().len();
        eprintln!("sealed memfd of {} ({} MiB): median {:.2} ms", p.display(), len >> 20, times[5]);
    }
    let fx = Fixture::busybox();
    let s = spec(&["true"]);
    let _ = run(&s, &fx).unwrap();
    let mut launched = Vec::new();
    let mut total = Vec::new();
    for _ in 0..30 {
        let t = std::time::Instant::now();
        let (pid, out, err) = start(&s, &fx).unwrap();
        let _guard = super::fixture::KillOnDrop(pid);
        launched.push(t.elapsed().as_secs_f64() * 1e3);
        finish(pid, out, err);
        total.push(t.elapsed().as_secs_f64() * 1e3);
    }
    launched.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    eprintln!(
        "launch `true`: exec'd after median {:.2} ms, exited and reaped after median {:.2} ms",
        launched[15], total[15]
    );
}
