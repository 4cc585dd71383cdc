//! Detached containers end to end: the shim, state, logs, exec, stop,
//! start, kill, rm, restart policies, and the cleanup of every trace.

mod support;

use support::{Berth, wait_until as wait_for};

fn status(berth: &Berth, name: &str) -> serde_json::Value {
    let all = berth.run(&["ps", "-a", "--json"]).json();
    all.as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or(serde_json::Value::Null)
}

/// The pid of the shim of container `name`, from its state.json.
fn shim_pid(berth: &Berth, name: &str) -> i64 {
    let id = status(berth, name)["id"].as_str().unwrap().to_owned();
    let state = std::fs::read(berth.store_root().join("containers").join(id).join("state.json")).unwrap();
    serde_json::from_slice::<serde_json::Value>(&state).unwrap()["shim_pid"].as_i64().unwrap()
}

fn mounts_mentioning(id: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(id)).count()
}

fn cgroup_dirs(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = ctrl.path().join("berth").join(id);
        if dir.exists() {
            found.push(dir.display().to_string());
        }
    }
    found
}

#[test]
fn detached_container_lifecycle() {
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--name", "web", "busybox", "sh", "-c", "echo started; echo oops >&2; exec sleep 300"]);
    assert_eq!(id.len(), 64);
    let st = status(&berth, "web");
    assert_eq!(st["status"], "running", "{st}");
    let ps = berth.run(&["ps"]).ok().to_owned();
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");

    wait_for("both lines in the log", || {
        let logs = berth.run(&["logs", "web"]);
        logs.stdout.contains("started") && logs.stderr.contains("oops")
    });
    let logs = berth.run(&["logs", "web"]);
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("started\n", "oops\n"));
    let stamped = berth.run(&["logs", "-t", "web"]).stdout;
    assert!(stamped.split(' ').next().unwrap().ends_with('Z'), "{stamped}");

    // exec joins the container's namespaces and cgroup.
    let pid = st["pid"].as_i64().unwrap();
    let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let ns = berth
        .run(&["exec", "web", "sh", "-c", "readlink /proc/self/ns/net; cat /proc/self/cgroup | grep -c berth || true"])
        .ok()
        .to_owned();
    let container_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert!(ns.starts_with(&*container_net.to_string_lossy()), "{ns}");
    assert!(init_ns.to_string_lossy().starts_with("pid:"));
    assert_eq!(berth.run(&["exec", "web", "sh", "-c", "exit 4"]).code, 4);
    assert_eq!(berth.run(&["exec", "-u", "1000", "-w", "/tmp", "web", "sh", "-c", "id -u; pwd"]).ok(), "1000\n/tmp\n");
    let top = berth.run(&["top", "web"]).ok().to_owned();
    assert!(top.contains("sleep 300") && top.contains("__init"), "{top}");

    berth.run(&["stop", "-t", "1", "web"]).ok();
    let st = status(&berth, "web");
    assert_eq!(st["status"], "exited", "{st}");
    assert_eq!(st["exit_code"], 143, "sleep dies of SIGTERM: {st}");
    assert!(berth.run(&["exec", "web", "true"]).fails_with(1).contains("is not running"));

    berth.run(&["start", "web"]).ok();
    assert_eq!(status(&berth, "web")["status"], "running");
    berth.run(&["rm", "web"]).fails_with(1);
    berth.run(&["rm", "-f", "web"]).ok();
    assert!(status(&berth, "web").is_null());
    assert_eq!(mounts_mentioning(&id), 0);
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(!berth.store_root().join("containers").join(&id).exists());
}

#[test]
fn a_killed_shim_is_reported_and_rm_cleans_every_trace() {
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--name", "victim", "busybox", "sleep", "300"]);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(berth.store_root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let shim = nix::unistd::Pid::from_raw(state["shim_pid"].as_i64().unwrap() as i32);
    let init = state["pid"].as_i64().unwrap() as i32;
    assert!(!cgroup_dirs(&id).is_empty());
    nix::sys::signal::kill(shim, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("the shim to die", || !std::path::Path::new(&format!("/proc/{}", shim.as_raw())).exists());
    let st = status(&berth, "victim");
    assert_ne!(st["status"], "running", "a dead shim is not a running container: {st}");
    assert!(st["stale"].as_str().unwrap_or_default().contains("shim"), "{st}");
    berth.run(&["rm", "-f", "victim"]).ok();
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat")).map_or(true, |s| s.contains(") Z"))
    );
    assert_eq!(mounts_mentioning(&id), 0);
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(status(&berth, "victim").is_null());
}

#[test]
fn restart_policies() {
    let berth = Berth::with_busybox();
    berth.detach(&["--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1"]);
    wait_for("two restarts", || {
        let st = status(&berth, "flaky");
        st["status"] == "exited" && st["restart_count"] == 2
    });
    assert_eq!(berth.run(&["logs", "flaky"]).stdout, "run\nrun\nrun\n");

    berth.detach(&["--name", "steady", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2"]);
    wait_for("a restart", || status(&berth, "steady")["restart_count"].as_u64().unwrap_or(0) >= 1);
    berth.run(&["stop", "-t", "1", "steady"]).ok();
    let after = status(&berth, "steady");
    assert_eq!(after["status"], "exited", "{after}");
    // Only the shim restarts a container: once it has gone, nothing can.
    let shim = shim_pid(&berth, "steady");
    wait_for("the stopped container's shim to exit", || !std::path::Path::new(&format!("/proc/{shim}")).exists());
    assert_eq!(status(&berth, "steady")["status"], "exited", "a stopped container is not restarted");

    berth.detach(&["--name", "fine", "--restart", "on-failure", "busybox", "true"]);
    wait_for("exit", || status(&berth, "fine")["status"] == "exited");
    assert_eq!(status(&berth, "fine")["restart_count"], 0);
}

#[test]
fn kill_sends_signals_and_names_are_unique() {
    let berth = Berth::with_busybox();
    // A HUP before the trap is set would end sh: wait for the line after it.
    let script = "trap 'echo got-hup' HUP; echo trap-set; while true; do sleep 0.1; done";
    berth.detach(&["--name", "k", "busybox", "sh", "-c", script]);
    berth.wait_for_log("k", "trap-set");
    berth.run(&["kill", "-s", "HUP", "k"]).ok();
    berth.wait_for_log("k", "got-hup");
    let err = berth.run(&["run", "-d", "--name", "k", "busybox", "true"]).fails_with(1).to_owned();
    assert!(err.contains("already used by container"), "{err}");
    berth.run(&["kill", "k"]).ok();
    wait_for("exit", || status(&berth, "k")["status"] == "exited");
    assert_eq!(status(&berth, "k")["exit_code"], 137);
    assert!(berth.run(&["kill", "k"]).fails_with(1).contains("is not running"));
    assert!(berth.run(&["stop", "nobody"]).fails_with(1).contains("no container named"));
}

/// A command starts with a clean signal state whatever berth's caller
/// ignored or blocked (`nohup berth …` ignores SIGHUP, and an ignored
/// signal survives exec: sh then cannot trap it). Run and exec alike.
#[test]
fn commands_start_with_no_signal_ignored_or_blocked() {
    let berth = Berth::with_busybox();
    let bin = format!("{} --root {}", env!("CARGO_BIN_EXE_berth"), berth.store_root().display());
    let ignoring = |args: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("trap '' HUP INT QUIT USR1 TERM; exec {bin} {args} grep -E '^Sig(Blk|Ign)' /proc/self/status"))
            .output()
            .expect("run sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    assert_eq!(ignoring("run --rm busybox"), clean);
    berth.detach(&["--name", "sig", "busybox", "sleep", "1000"]);
    assert_eq!(ignoring("exec sig"), clean);
    berth.run(&["rm", "-f", "sig"]).ok();
}

#[test]
fn diff_and_inspect() {
    let berth = Berth::with_busybox();
    berth
        .run(&["run", "--name", "d", "busybox", "sh", "-c", "echo x > /root/new; rm /bin/vi; echo y >> /etc/passwd"])
        .ok();
    let diff = berth.run(&["diff", "d"]).ok().to_owned();
    assert_eq!(diff, "C /bin\nD /bin/vi\nC /etc\nC /etc/passwd\nC /root\nA /root/new\n");
    let inspect = berth.run(&["inspect", "d"]).json();
    assert_eq!(inspect[0]["Name"], "d");
    assert_eq!(inspect[0]["State"]["exit_code"], 0);
    let image = berth.run(&["inspect", "busybox"]).json();
    assert!(image[0]["Id"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn a_detached_start_failure_is_reported_with_the_shells_code() {
    let berth = Berth::with_busybox();
    let run = berth.run(&["run", "-d", "--name", "bad", "busybox", "no-such-command"]);
    assert!(run.fails_with(127).contains("exec \"no-such-command\""), "{}", run.stderr);
    let st = status(&berth, "bad");
    assert_eq!((st["status"].as_str(), st["exit_code"].as_i64()), (Some("exited"), Some(127)), "{st}");
}

/// The shims whose command line names the container directory `id`.
fn shims_of(berth: &Berth, id: &str) -> usize {
    let dir = berth.store_root().join("containers").join(id);
    let needle = format!("__shim\0{}", dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(&needle))
        .count()
}

#[test]
fn two_starts_at_once_give_one_shim_and_a_running_container() {
    // Each start saw the container stopped and spawned a shim; the second
    // shim made the container's cgroup again under the first ("join the
    // container's cgroup: No such device") and one start failed.
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--name", "twice", "busybox", "sleep", "1000"]);
    for round in 0..5 {
        berth.run(&["stop", "-t", "0", "twice"]).ok();
        let start = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
                .arg("--root")
                .arg(berth.store_root())
                .args(["start", "twice"])
                .output()
                .unwrap()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(start);
            let b = s.spawn(start);
            (a.join().unwrap(), b.join().unwrap())
        });
        for out in [&a, &b] {
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(status(&berth, "twice")["status"], "running", "round {round}");
        assert_eq!(shims_of(&berth, &id), 1, "round {round}");
    }
    berth.run(&["rm", "-f", "twice"]).ok();
    assert_eq!(shims_of(&berth, &id), 0);
}
