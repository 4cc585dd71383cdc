//! seccomp end to end: Docker's default profile on a container's command,
//! `exec` and health checks; `--security-opt seccomp=unconfined` and
//! `seccomp=PROFILE.json`; a malformed profile refused before anything
//! is created. The calls are made by `fixtures/helpers/syscall_probe.rs`
//! (busybox cannot make most of them), bind-mounted at `/t`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::Berth;
use support::image::syscall_probe;

/// A directory holding only the probe, to bind-mount read-only at `/t`.
fn probe_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(syscall_probe(), dir.path().join("syscall-probe")).unwrap();
    dir
}

fn volume(dir: &Path) -> String {
    format!("{}:/t:ro", dir.display())
}

/// `CALL -> "ok" | "errno N" | "signal N"` from the probe's output.
fn results(out: &str) -> BTreeMap<String, String> {
    out.lines().filter_map(|l| l.split_once(' ')).map(|(c, r)| (c.to_owned(), r.to_owned())).collect()
}

const DANGEROUS: &[&str] = &[
    "unshare-user",
    "clone-newuser",
    "keyctl",
    "add_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "open_by_handle_at",
    "userfaultfd",
    "mount",
    "swapon",
    "reboot",
    "init_module",
    "io_uring_setup",
    "socket-alg",
    "x32-getpid",
    "i386-getpid",
];

fn probe(berth: &Berth, dir: &Path, opts: &[&str], calls: &[&str]) -> BTreeMap<String, String> {
    let v = volume(dir);
    let mut args = vec!["run", "--rm", "-v", &v];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "/t/syscall-probe"]);
    args.extend_from_slice(calls);
    results(berth.run(&args).ok())
}

#[test]
fn the_default_profile_refuses_dangerous_calls_with_eperm() {
    let berth = Berth::with_busybox();
    let dir = probe_dir();
    let mut calls = DANGEROUS.to_vec();
    calls.extend(["getpid", "clone3", "mkdir:/tmp/made", "socket-netlink"]);
    let got = probe(&berth, dir.path(), &[], &calls);
    for call in DANGEROUS {
        assert_eq!(got[*call], "errno 1", "{call} under the default profile: {got:?}");
    }
    assert_eq!(got["getpid"], "ok", "{got:?}");
    assert_eq!(got["mkdir:/tmp/made"], "ok", "{got:?}");
    assert_eq!(got["socket-netlink"], "ok", "{got:?}");
    // clone3 looks absent (ENOSYS), so that glibc falls back to clone.
    assert_eq!(got["clone3"], "errno 38", "{got:?}");
    let status = berth.run(&["run", "--rm", "busybox", "grep", "^Seccomp", "/proc/self/status"]).ok().to_owned();
    assert!(status.contains("Seccomp:\t2") && status.contains("Seccomp_filters:\t1"), "{status}");
}

#[test]
fn unconfined_lifts_the_filter() {
    let berth = Berth::with_busybox();
    let dir = probe_dir();
    let got = probe(&berth, dir.path(), &["--security-opt", "seccomp=unconfined"], DANGEROUS);
    // The kernel answers now: no x32 ABI in this kernel (ENOSYS), i386
    // getpid works, keyctl works, add_key's bad keyring is EINVAL.
    assert_eq!(got["i386-getpid"], "ok", "{got:?}");
    assert_ne!(got["x32-getpid"], "errno 1", "{got:?}");
    assert_ne!(got["keyctl"], "errno 1", "{got:?}");
    assert_eq!(got["add_key"], "errno 22", "{got:?}");
    let status = berth
        .run(&[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "grep",
            "^Seccomp:",
            "/proc/self/status",
        ])
        .ok()
        .to_owned();
    assert!(status.contains("Seccomp:\t0"), "{status}");
}

#[test]
fn a_custom_profile_applies_with_its_errno_and_inspect_names_it() {
    let berth = Berth::with_busybox();
    let dir = probe_dir();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
  ]
}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let got = probe(&berth, dir.path(), &["--security-opt", &opt], &["mkdir:/tmp/x", "getpid", "i386-getpid"]);
    assert_eq!(got["mkdir:/tmp/x"], "errno 13", "{got:?}");
    assert_eq!(got["getpid"], "ok", "{got:?}");
    // Another ABI cannot get around a deny-list.
    assert_eq!(got["i386-getpid"], "errno 1", "{got:?}");
    let failed = berth.run(&["run", "--rm", "--security-opt", &opt, "busybox", "mkdir", "/tmp/y"]);
    assert!(failed.stderr.contains("Permission denied"), "{}", failed.stderr);

    berth.detach(&["--name", "custom", "--security-opt", &opt, "busybox", "sleep", "300"]);
    let inspect = berth.run(&["inspect", "custom"]).json();
    assert_eq!(inspect[0]["Seccomp"], profile.display().to_string(), "{inspect}");
    assert_eq!(inspect[0]["HostConfig"]["SecurityOpt"][0], opt, "{inspect}");
    berth.run(&["rm", "-f", "custom"]).ok();
}

#[test]
fn a_malformed_profile_is_refused_before_anything_is_created() {
    let berth = Berth::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.json");
    std::fs::write(&profile, "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_PERMIT\"}\n  ]\n}\n").unwrap();
    let opt = format!("seccomp={}", profile.display());
    let failed = berth.run(&["run", "--rm", "--name", "never", "--security-opt", &opt, "busybox", "true"]);
    assert_ne!(failed.code, 0);
    let want = format!("{}:4:", profile.display());
    assert!(failed.stderr.contains(&want) && failed.stderr.contains("SCMP_ACT_PERMIT"), "{}", failed.stderr);
    assert_eq!(berth.run(&["ps", "-a", "--json"]).json(), serde_json::json!([]));
    let unknown = berth.run(&["run", "--rm", "--security-opt", "apparmor=unconfined", "busybox", "true"]);
    assert!(unknown.stderr.contains("apparmor=unconfined") && unknown.stderr.contains("seccomp=unconfined"));
}

#[test]
fn exec_and_health_checks_run_under_the_containers_filter() {
    let berth = Berth::with_busybox();
    let dir = probe_dir();
    let v = volume(dir.path());
    berth.detach(&[
        "--name",
        "web",
        "-v",
        &v,
        "--health-cmd",
        "grep -q 'Seccomp:.2' /proc/self/status && /t/syscall-probe mount | grep -q 'errno 1'",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "300",
    ]);
    let got = results(berth.run(&["exec", "web", "/t/syscall-probe", "mount", "unshare-user", "getpid"]).ok());
    assert_eq!(got["mount"], "errno 1", "{got:?}");
    assert_eq!(got["unshare-user"], "errno 1", "{got:?}");
    assert_eq!(got["getpid"], "ok", "{got:?}");
    support::wait_until("web's health check to pass", || {
        let ps = berth.run(&["ps", "--json"]).json();
        ps[0]["health"]["status"] == "healthy"
    });
    berth.run(&["rm", "-f", "web"]).ok();
}

#[test]
fn security_opt_in_berth_toml_is_planned_applied_and_recreates_on_change() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    let manifest = |opts: &str| {
        format!(
            "project = \"sec\"\n\n[env.free]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n{opts}\n\n\
             [env.boxed]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n"
        )
    };
    std::fs::write(dir.path().join("berth.toml"), manifest("security_opt = [\"seccomp=unconfined\"]")).unwrap();
    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("security: seccomp=unconfined"), "{plan}");
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let seccomp = |env: &str| {
        berth.run_in(dir.path(), &["exec", env, "grep", "^Seccomp:", "/proc/self/status"]).ok().trim().to_owned()
    };
    assert_eq!(seccomp("free"), "Seccomp:\t0");
    assert_eq!(seccomp("boxed"), "Seccomp:\t2");
    assert_eq!(berth.run(&["inspect", "sec-free"]).json()[0]["Seccomp"], "unconfined");

    // Dropping the option recreates the env, now filtered.
    std::fs::write(dir.path().join("berth.toml"), manifest("")).unwrap();
    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("free: recreate (security_opt"), "{plan}");
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    assert_eq!(seccomp("free"), "Seccomp:\t2");

    std::fs::write(dir.path().join("berth.toml"), manifest("security_opt = [\"apparmor=unconfined\"]")).unwrap();
    let bad = berth.run_in(dir.path(), &["plan"]);
    assert!(bad.stderr.contains("berth.toml:6:") && bad.stderr.contains("seccomp=unconfined"), "{}", bad.stderr);
    std::fs::write(dir.path().join("berth.toml"), manifest("")).unwrap();
    berth.run_in(dir.path(), &["down"]).ok();
}
