//! Docker's container options beyond seccomp, end to end: `--privileged`,
//! `--read-only` with its tmpfs mounts, `--tmpfs`, `--no-init` (the
//! command as PID 1), and the same as `privileged`, `read_only`, `tmpfs`,
//! `init`, `cap_add` and `cap_drop` in berth.toml, shown by `plan`.

mod support;

use std::os::unix::fs::FileTypeExt;

use support::Berth;

/// `CapEff` with every capability berth can grant: those of its bounding
/// set, which it shares with the test.
fn full_mask() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

/// A device node of the host that a default container does not get.
fn host_only_device() -> String {
    let default = ["null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"];
    let mut names: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_char_device() || t.is_block_device()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !default.contains(&n.as_str()))
        .collect();
    names.sort();
    names.into_iter().next().expect("the host has a device node beyond the standard ones")
}

const PROBE: &str = "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev; grep ' /sys sysfs ' /proc/self/mounts";

#[test]
fn privileged_gets_every_capability_the_hosts_devices_and_no_filter() {
    let berth = Berth::with_busybox();
    let device = host_only_device();
    let out = berth.run(&["run", "--rm", "--privileged", "busybox", "sh", "-c", PROBE]).ok().to_owned();
    assert!(out.contains(&format!("CapEff:\t{}", full_mask())), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.lines().any(|l| l == device), "the host's /dev/{device} is missing: {out}");
    assert!(out.contains(" /sys sysfs rw,"), "{out}");

    let out = berth.run(&["run", "--rm", "busybox", "sh", "-c", PROBE]).ok().to_owned();
    assert!(out.contains("CapEff:\t00000000a80425fb") || out.contains("CapEff:\t00000000a80425eb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(!out.lines().any(|l| l == device), "a default container got /dev/{device}: {out}");
    assert!(out.contains(" /sys sysfs ro,"), "{out}");
}

#[test]
fn read_only_root_keeps_tmp_run_and_tmpfs_writable() {
    let berth = Berth::with_busybox();
    let script = "touch /x 2>&1; touch /tmp/a /var/tmp/a /run/a /cache/a && echo wrote; \
                  grep -E ' /(cache|tmp) ' /proc/self/mounts; pwd";
    let args = ["run", "--rm", "--read-only", "--tmpfs", "/cache:size=1m", "-w", "/made/here", "busybox", "sh", "-c"];
    let out = berth.run(&[&args[..], &[script]].concat()).ok().to_owned();
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("wrote"), "{out}");
    let line = |dest: &str| out.lines().find(|l| l.contains(&format!(" {dest} tmpfs "))).unwrap_or("").to_owned();
    let cache = line("/cache");
    assert!(["nosuid", "nodev", "noexec", "size=1024k"].iter().all(|o| cache.contains(o)), "{out}");
    let tmp = line("/tmp");
    assert!(tmp.contains("nosuid") && !tmp.contains("noexec"), "{out}");
    assert!(out.ends_with("/made/here\n"), "the working directory is made before the root goes read-only: {out}");

    berth.detach(&["--name", "ro", "--read-only", "--tmpfs", "/cache", "busybox", "sleep", "1000"]);
    let host = &berth.run(&["inspect", "ro"]).json()[0]["HostConfig"];
    assert_eq!(host["ReadonlyRootfs"], true, "{host}");
    assert_eq!(host["Tmpfs"], serde_json::json!(["/cache"]), "{host}");
    assert_eq!(host["Privileged"], false, "{host}");
}

#[test]
fn no_init_makes_the_command_pid_1() {
    let berth = Berth::with_busybox();
    let with_init = berth.run(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]).ok().to_owned();
    assert_ne!(with_init, "1\n", "berth's init is PID 1 by default");
    let out = berth.run(&["run", "--rm", "--no-init", "busybox", "sh", "-c", "echo $$; exit 3"]);
    out.fails_with(3);
    assert_eq!(out.stdout, "1\n");

    // As PID 1 the command gets only the signals it handles: its trap runs.
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    berth.detach(&["--name", "pid1", "--no-init", "busybox", "sh", "-c", script]);
    berth.wait_for_log("pid1", "ready");
    assert_eq!(berth.run(&["exec", "pid1", "cat", "/proc/1/comm"]).ok(), "sh\n");
    assert_eq!(berth.run(&["inspect", "pid1"]).json()[0]["HostConfig"]["Init"], false);
    berth.run(&["stop", "pid1"]).ok();
    let state = &berth.run(&["inspect", "pid1"]).json()[0]["State"];
    assert_eq!(state["exit_code"], 7, "{state}");
    berth.wait_for_log("pid1", "got TERM");
}

const MANIFEST: &str = r#"
project = "hard"

[env.app]
image = "rootfs:busybox.tar"
cap_drop = ["ALL"]
cap_add = ["net_admin"]
read_only = true
tmpfs = ["/cache:size=1m"]
init = false
cmd = ["sh", "-c", "grep CapEff /proc/self/status; echo pid $$; touch /x || echo root is read-only; touch /cache/a && echo cache ok; sleep 1000"]

[env.host]
image = "rootfs:busybox.tar"
privileged = true
cmd = ["sh", "-c", "grep CapEff /proc/self/status; sleep 1000"]
"#;

#[test]
fn manifest_keys_reach_the_container_and_plan_shows_them() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();

    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("read-only") && plan.contains("tmpfs /cache:size=1m") && plan.contains("no init"), "{plan}");
    assert!(plan.contains("security: cap-add=CAP_NET_ADMIN, cap-drop=ALL"), "{plan}");
    let privileged = plan.lines().skip_while(|l| !l.contains("host: create")).nth(1).unwrap_or("");
    assert!(privileged.contains("PRIVILEGED:"), "{plan}");
    let json = berth.run_in(dir.path(), &["plan", "--json"]).json();
    let host = json["containers"].as_array().unwrap().iter().find(|c| c["env"] == "host").unwrap().clone();
    assert_eq!(host["privileged"], true, "{json}");

    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let log = berth.wait_for_log("hard-app", "cache ok");
    assert!(log.contains("CapEff:\t0000000000001000"), "{log}");
    assert!(log.contains("pid 1\n") && log.contains("root is read-only"), "{log}");
    let log = berth.wait_for_log("hard-host", "CapEff");
    assert!(log.contains(&format!("CapEff:\t{}", full_mask())), "{log}");

    // Nothing changed: nothing to do.
    let again = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(again.contains("app: running, up to date"), "{again}");
    berth.run_in(dir.path(), &["down"]).ok();
}

#[test]
fn bad_values_are_refused_at_their_line() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = "[env.app]\nimage = \"scratch\"\ncap_add = [\"NET_ADMN\"]\ntmpfs = [\"cache\", \"/t:sze=1m\"]\n";
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let out = berth.run_in(dir.path(), &["plan"]);
    out.fails_with(1);
    assert!(out.stderr.contains("berth.toml:3:12: unknown capability \"NET_ADMN\""), "{}", out.stderr);
    assert!(out.stderr.contains("berth.toml:4:10: bad tmpfs \"cache\""), "{}", out.stderr);
    assert!(out.stderr.contains("unknown option \"sze=1m\""), "{}", out.stderr);

    let run = berth.run(&["run", "--rm", "--tmpfs", "rel", "busybox", "true"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("bad tmpfs \"rel\""), "{}", run.stderr);
}
