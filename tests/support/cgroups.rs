//! The cgroup-dependent end-to-end checks, written once and run twice: as
//! ordinary tests on this host's cgroup v1 (`tests/limits.rs`) and inside a
//! cgroup-v2-only kernel under QEMU (`tests/vm.rs`). Each check makes its
//! own store, reads what the kernel says (never the clock), and removes
//! every container it made, also on failure ([`Berth`]'s `Drop`).
//!
//! [`cgroup_dir`] finds a container's cgroup directory for a controller on
//! either version: `/sys/fs/cgroup/berth/ID` when `/sys/fs/cgroup` is the
//! unified hierarchy, else `/sys/fs/cgroup/CONTROLLER/berth/ID`.

use std::path::{Path, PathBuf};

use super::{Berth, wait_until};

/// Whether `/sys/fs/cgroup` is a pure cgroup v2 hierarchy.
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup directory of container `id` for `controller_v1` (ignored on v2).
pub fn cgroup_dir(id: &str, controller_v1: &str) -> PathBuf {
    if unified() {
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{controller_v1}/berth/{id}"))
    }
}

/// The contents of `file_v1` (v1, in `controller_v1`) or `file_v2` (v2) in
/// the cgroup of container `id`.
#[track_caller]
pub fn cgroup_file(id: &str, controller_v1: &str, file_v1: &str, file_v2: &str) -> String {
    let file = if unified() { file_v2 } else { file_v1 };
    let path = cgroup_dir(id, controller_v1).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number on the line `key N` of a flat-keyed cgroup file.
#[track_caller]
pub fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no \"{key} N\" line in:\n{text}"))
}

/// Asserts that no cgroup directory of container `id` is left, in any
/// hierarchy.
#[track_caller]
pub fn assert_no_cgroup(id: &str) {
    for controller in ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"] {
        let dir = cgroup_dir(id, controller);
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
}

/// A memory hog under `-m 32m` is killed by the OOM killer; `berth run`
/// exits 137 and `ps` says "OOM killed".
pub fn memory_hog_is_oom_killed() {
    let berth = Berth::with_busybox();
    // `tail` keeps the whole line, and /dev/zero has no newline.
    let hog = "head -c 200m /dev/zero | tail > /dev/null";
    let run = berth.run(&["run", "--name", "hog", "-m", "32m", "busybox", "sh", "-c", hog]);
    assert_eq!(run.code, 137, "{}", run.stderr);
    let ps = berth.run(&["ps", "-a", "--json"]).json();
    assert_eq!(ps[0]["oom_killed"], true, "{ps}");
    let table = berth.run(&["ps", "-a"]).ok().to_owned();
    assert!(table.contains("OOM killed"), "{table}");
}

/// A fork bomb under `--pids-limit 20` is refused by the kernel and never
/// holds more than 20 tasks.
pub fn fork_bomb_is_stopped_by_the_pids_limit() {
    let berth = Berth::with_busybox();
    // Forks for ever: only the limit stops it.
    let id = berth.detach(&[
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "(while true; do sleep 300 & done) 2>/dev/null; echo the-bomb-stopped; exec sleep 300",
    ]);
    let refused = || keyed(&cgroup_file(&id, "pids", "pids.events", "pids.events"), "max");
    wait_until("the fork loop to hit the limit", || refused() > 0);
    let current: u64 = cgroup_file(&id, "pids", "pids.current", "pids.current").trim().parse().unwrap();
    assert!(current <= 20, "{current} processes under a limit of 20");
    berth.wait_for_log(&id, "the-bomb-stopped");
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
}

/// `--memory`, `--cpus` and `--pids-limit` land in the cgroup's files.
pub fn limits_land_in_the_cgroup() {
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "busybox", "sleep", "60"]);
    assert_eq!(cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max").trim(), (64u64 << 20).to_string());
    assert_eq!(cgroup_file(&id, "pids", "pids.max", "pids.max").trim(), "50");
    let quota = cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota.trim() == "50000" || quota.starts_with("50000 100000"), "{quota}");
    if unified() {
        // No swap beyond the limit, where the kernel accounts swap.
        let swap = cgroup_dir(&id, "memory").join("memory.swap.max");
        if let Ok(max) = std::fs::read_to_string(&swap) {
            assert_eq!(max.trim(), "0", "{}", swap.display());
        }
    }
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
}

/// A busy loop under `--cpus 0.1` is throttled: the kernel counts
/// throttled periods in `cpu.stat` (read, never timed).
pub fn cpu_quota_throttles_a_busy_loop() {
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--cpus", "0.1", "busybox", "sh", "-c", "while :; do :; done"]);
    let throttled = || keyed(&cgroup_file(&id, "cpu", "cpu.stat", "cpu.stat"), "nr_throttled");
    wait_until("cpu.stat to count a throttled period", || throttled() > 0);
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
}

/// `exec` into a container at its pids limit fails saying so, and a
/// command that needs no fork still runs.
pub fn exec_at_the_pids_limit_says_so() {
    let berth = Berth::with_busybox();
    // init, sh and two sleeps: the limit of 4 is reached once both run.
    let id = berth.detach(&[
        "--name",
        "full",
        "--pids-limit",
        "4",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & echo both-running; wait",
    ]);
    berth.wait_for_log(&id, "both-running");
    // A command that must fork: the kernel refuses it (EAGAIN).
    let run = berth.run(&["exec", "full", "sh", "-c", "ls / >/dev/null; ls / >/dev/null"]);
    assert_ne!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let said = run.stderr.lines().filter(|l| l.starts_with("berth: ")).collect::<Vec<_>>().join("\n");
    assert!(said.contains("container full") && said.contains("pids limit") && said.contains('4'), "{}", run.stderr);
    // A command that needs no fork still runs: the limit is no lock-out.
    assert_eq!(berth.run(&["exec", "full", "echo", "in"]).ok(), "in\n");
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
}

/// Whether the container's cgroup is frozen, as the kernel says (v1
/// `freezer.state`, v2 `cgroup.events`).
pub fn frozen(id: &str) -> bool {
    if unified() {
        keyed(&cgroup_file(id, "freezer", "", "cgroup.events"), "frozen") == 1
    } else {
        cgroup_file(id, "freezer", "freezer.state", "").trim() != "THAWED"
    }
}

/// `commit` of a running container freezes it for the copy (v1 freezer,
/// v2 `cgroup.freeze`) and thaws it afterwards; the image has the change.
pub fn commit_of_a_running_container_freezes_and_thaws_it() {
    let berth = Berth::with_busybox();
    let script = "echo made > /made.txt; touch /ready; exec sleep 300";
    let id = berth.detach(&["--name", "c1", "busybox", "sh", "-c", script]);
    wait_until("the container's change", || berth.run(&["exec", "c1", "test", "-e", "/ready"]).code == 0);
    let digest = berth.run(&["commit", "c1", "snap:1"]).ok().trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(!frozen(&id), "container c1 is still frozen after the commit");
    assert_eq!(berth.run(&["exec", "c1", "echo", "alive"]).ok(), "alive\n");
    assert_eq!(berth.run(&["run", "--rm", "snap:1", "cat", "/made.txt"]).ok(), "made\n");
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
}

const UP_MANIFEST: &str = r#"
project = "limited"

[env.app]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "echo app-up; exec sleep 300"]
limits = { memory = "48MiB", cpus = 0.25, pids = 30 }
# Loopback only: the cgroup-v2 machine's kernel loads no bridge, veth or
# nftables modules, and the limits are what this checks.
network = "isolated"
"#;

/// `up` with `limits` in berth.toml puts them in the env's cgroup; `down`
/// removes the cgroup.
pub fn up_applies_the_manifest_limits_and_down_removes_the_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(super::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), UP_MANIFEST).unwrap();
    let berth = Berth::new();
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let ps = berth.run_in(dir.path(), &["ps", "--json"]).json();
    let id = ps[0]["id"].as_str().unwrap_or_else(|| panic!("{ps}")).to_owned();
    berth.wait_for_log(&id, "app-up");
    assert_eq!(cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max").trim(), (48u64 << 20).to_string());
    assert_eq!(cgroup_file(&id, "pids", "pids.max", "pids.max").trim(), "30");
    let quota = cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota.trim() == "25000" || quota.starts_with("25000 100000"), "{quota}");
    berth.run_in(dir.path(), &["down"]).ok();
    assert_no_cgroup(&id);
}

/// `rm -f` of a running container with every limit leaves no cgroup, and
/// neither does a `run --rm` that exits on its own.
pub fn removing_containers_leaves_no_cgroup() {
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--memory", "32m", "--cpus", "0.5", "--pids-limit", "10", "busybox", "sleep", "300"]);
    assert!(cgroup_dir(&id, "memory").is_dir());
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
    // The hostname is the short id: no cgroup may start with it afterwards.
    let run = berth.run(&["run", "--rm", "--memory", "32m", "busybox", "hostname"]);
    let short = run.ok().trim().to_owned();
    assert!(berth.run(&["ps", "-aq"]).ok().trim().is_empty());
    let parent = cgroup_dir(&short, "memory").parent().unwrap().to_path_buf();
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(&short), "{} is left behind", e.path().display());
        }
    }
}

/// `berth stats --no-stream` shows Docker's columns, and `--json` the
/// numbers: the memory limit, the tasks, a busy loop's CPU time; a stopped
/// container is shown only when named or with `-a`.
pub fn stats_show_usage_and_limits() {
    let berth = Berth::with_busybox();
    let script = "while :; do :; done & echo looping; exec sleep 300";
    let id = berth.detach(&["--name", "busy", "-m", "64m", "--pids-limit", "30", "busybox", "sh", "-c", script]);
    berth.wait_for_log(&id, "looping");
    berth.run(&["run", "--name", "done", "busybox", "true"]).ok();

    let json = berth.run(&["stats", "--no-stream", "--json"]).json();
    let rows = json.as_array().unwrap_or_else(|| panic!("{json}"));
    assert_eq!(rows.len(), 1, "only the running container: {json}");
    let busy = &rows[0];
    assert_eq!(busy["name"], "busy", "{json}");
    assert_eq!(busy["memory_limit"], 64u64 << 20, "{json}");
    // init, the loop's shell and sleep.
    assert!(busy["pids"].as_u64().unwrap() >= 3, "{json}");
    assert!(busy["memory_usage"].as_u64().unwrap() > 0, "{json}");
    assert!(busy["cpu_percent"].as_f64().unwrap() > 0.0, "a busy loop used no CPU: {json}");

    let table = berth.run(&["stats", "--no-stream", "busy", "done"]).ok().to_owned();
    let header = table.lines().next().unwrap_or_default();
    for column in ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"] {
        assert!(header.contains(column), "{column} missing:\n{table}");
    }
    assert!(table.contains(" / 64MiB"), "{table}");
    let stopped = table.lines().find(|l| l.contains("done")).unwrap_or_else(|| panic!("{table}"));
    assert!(stopped.contains("0.00%") && stopped.ends_with(" 0"), "a stopped container reads as zeros:\n{table}");
    assert_eq!(berth.run(&["stats", "--no-stream", "-a", "--json"]).json().as_array().unwrap().len(), 2);

    let err = berth.run(&["stats", "--no-stream", "nosuch"]).fails_with(1).to_owned();
    assert!(err.contains("nosuch"), "{err}");
    berth.run(&["rm", "-f", &id]).ok();
    assert_no_cgroup(&id);
}
