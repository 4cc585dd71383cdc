//! Resource limits through cgroups (v1 on this host, v2 where it is the
//! hierarchy): memory with OOM kills reported, pids against fork bombs,
//! CPU quota.

mod support;

use support::{Berth, wait_until};

fn cgroup_file(id: &str, controller_v1: &str, file_v1: &str, file_v2: &str) -> String {
    let v1 = format!("/sys/fs/cgroup/{controller_v1}/berth/{id}/{file_v1}");
    let v2 = format!("/sys/fs/cgroup/berth/{id}/{file_v2}");
    std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap_or_else(|e| panic!("{v1} / {v2}: {e}"))
}

#[test]
fn a_memory_hog_is_killed_and_reported_as_oom_killed() {
    let berth = Berth::with_busybox();
    let run = berth.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail > /dev/null",
    ]);
    assert_eq!(run.code, 137, "{}", run.stderr);
    let ps = berth.run(&["ps", "-a", "--json"]).json();
    assert_eq!(ps[0]["oom_killed"], true, "{ps}");
    let table = berth.run(&["ps", "-a"]).ok().to_owned();
    assert!(table.contains("OOM killed"), "{table}");
}

#[test]
fn a_fork_bomb_is_stopped_by_the_pids_limit() {
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
    let refused = || {
        let events = cgroup_file(&id, "pids", "pids.events", "pids.events");
        events.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
    };
    wait_until("the fork loop to hit the limit", || refused() > 0);
    let current: u64 = cgroup_file(&id, "pids", "pids.current", "pids.current").trim().parse().unwrap();
    assert!(current <= 20, "{current} processes under a limit of 20");
    berth.wait_for_log(&id, "the-bomb-stopped");
    berth.run(&["rm", "-f", &id]).ok();
}

#[test]
fn limits_land_in_the_cgroup() {
    let berth = Berth::with_busybox();
    let id = berth.detach(&["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "busybox", "sleep", "60"]);
    assert_eq!(cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max").trim(), (64u64 << 20).to_string());
    assert_eq!(cgroup_file(&id, "pids", "pids.max", "pids.max").trim(), "50");
    let quota = cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota.trim() == "50000" || quota.starts_with("50000 100000"), "{quota}");
    berth.run(&["rm", "-f", &id]).ok();
}

#[test]
fn exec_into_a_container_at_its_pids_limit_says_so() {
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
}
