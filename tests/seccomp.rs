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

/// A project dir holding the busybox rootfs as `busybox.tar`, the probe in
/// `probe/` and `manifest` as its berth.toml.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::create_dir(dir.path().join("probe")).unwrap();
    std::fs::copy(syscall_probe(), dir.path().join("probe/syscall-probe")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    dir
}

#[test]
fn build_steps_run_under_the_default_profile() {
    let berth = Berth::new();
    // The step fails when any call does, as a build whose tool needs one
    // of them would.
    let dir = project(
        "project = \"sb\"\n\n[env.probed]\nimage = \"rootfs:busybox.tar\"\n\
         copy = [{ src = \"probe\", dest = \"/t\" }]\n\
         run = [\"grep '^Seccomp:' /proc/self/status; /t/syscall-probe getpid mkdir:/tmp/made unshare-user keyctl > /calls; \
         cat /calls; ! grep -q errno /calls\"]\n",
    );
    let failed = berth.run_in(dir.path(), &["build"]);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    let tail = &failed.stderr;
    assert!(tail.contains("exited with 1"), "{tail}");
    assert!(tail.contains("Seccomp:\t2"), "{tail}");
    assert!(tail.contains("getpid ok") && tail.contains("mkdir:/tmp/made ok"), "{tail}");
    assert!(tail.contains("unshare-user errno 1") && tail.contains("keyctl errno 1"), "{tail}");
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]), "no image from a failed build");
}

/// A profile refusing `call` with `errno`.
fn deny(call: &str, errno: u32) -> String {
    format!(
        "{{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{{\"names\": [\"{call}\", \"{call}at\"], \
         \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": {errno}}}]}}\n"
    )
}

#[test]
fn editing_an_envs_profile_recreates_it_and_reformatting_does_not() {
    let berth = Berth::new();
    let dir = project(
        "project = \"sp\"\n\n[env.boxed]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n\
         security_opt = [\"seccomp=profiles/p.json\"]\n",
    );
    let profile = dir.path().join("profiles/p.json");
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(&profile, deny("mkdir", 13)).unwrap();
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let mkdir = || berth.run_in(dir.path(), &["exec", "boxed", "mkdir", "/tmp/x"]);
    assert!(mkdir().stderr.contains("Permission denied"), "{}", mkdir().stderr);

    // The same rules, written otherwise: nothing to do.
    let reformatted = "{\n  \"syscalls\": [\n    {\n      \"action\": \"SCMP_ACT_ERRNO\",\n      \"errnoRet\": 13,\n      \
                       \"names\": [\"mkdir\", \"mkdirat\"]\n    }\n  ],\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n";
    std::fs::write(&profile, reformatted).unwrap();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("boxed: running, up to date"), "{}", plan.stdout);

    // Other rules: plan says so, and up recreates the container under them.
    std::fs::write(&profile, deny("rmdir", 30)).unwrap();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("boxed: recreate (seccomp_profile_hash:"), "{}", plan.stdout);
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    mkdir().ok();
    let rmdir = berth.run_in(dir.path(), &["exec", "boxed", "rmdir", "/tmp/x"]);
    assert!(rmdir.stderr.contains("Read-only file system"), "{}", rmdir.stderr);
    assert_eq!(berth.run_in(dir.path(), &["plan", "--exit-code"]).code, 0, "up did what plan said");
    berth.run_in(dir.path(), &["down"]).ok();
}

#[test]
fn plan_reports_a_missing_or_malformed_profile_at_its_manifest_line() {
    let berth = Berth::new();
    let dir = project(
        "project = \"sbad\"\n\n[env.web]\nimage = \"rootfs:busybox.tar\"\nrun = [\"touch /built\"]\n\
         cmd = [\"sleep\", \"300\"]\nsecurity_opt = [\"no-new-privileges\", \"seccomp=p.json\"]\n",
    );
    let profile = dir.path().join("p.json");
    let missing = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    let e = &missing.stderr;
    assert!(e.contains("berth.toml:7:38:") && e.contains(&profile.display().to_string()), "{e}");
    assert!(e.contains("No such file or directory"), "{e}");

    std::fs::write(
        &profile,
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_PERMIT\"}\n  ]\n}\n",
    )
    .unwrap();
    for verb in [&["plan", "--exit-code"][..], &["up", "-d"], &["build"]] {
        let bad = berth.run_in(dir.path(), verb);
        assert_eq!(bad.code, 1, "{verb:?}: {}", bad.stdout);
        let e = &bad.stderr;
        assert!(e.contains("berth.toml:7:38:"), "{verb:?}: {e}");
        assert!(e.contains(&format!("{}:4:", profile.display())) && e.contains("SCMP_ACT_PERMIT"), "{verb:?}: {e}");
    }
    // Nothing was built or started.
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]));
    assert_eq!(berth.run(&["ps", "-a", "--json"]).json(), serde_json::json!([]));
}
