//! Launching containers: isolation, Docker's defaults as seen from inside,
//! exit codes.

use std::collections::BTreeSet;

use super::fixture::{Fixture, run, sh, skip, spec, spec_with};
use crate::runtime::process::ProcessError;
use crate::runtime::spec::ResolvedUser;

const NAMESPACES: [&str; 6] = ["mnt", "pid", "uts", "ipc", "net", "cgroup"];

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap().to_string_lossy().into_owned()
}

#[test]
fn true_exits_zero_and_leaves_no_mounts() {
    if skip() {
        return;
    }
    let out = sh(&["true"]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""), "{out:?}");
}

#[test]
fn every_namespace_is_new() {
    if skip() {
        return;
    }
    let script = NAMESPACES.map(|n| format!("readlink /proc/self/ns/{n}")).join("; ");
    let out = sh(&["sh", "-c", &script]);
    assert_eq!(out.code, 0, "{out:?}");
    let inside: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(inside.len(), NAMESPACES.len(), "{out:?}");
    for (name, got) in NAMESPACES.iter().zip(inside) {
        assert!(got.starts_with(&format!("{name}:[")), "{got}");
        assert_ne!(got, host_ns(name), "the {name} namespace is the host's");
    }
}

#[test]
fn command_runs_under_init_with_hostname_and_cwd() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let s = spec_with(&["sh", "-c", "echo ppid=$PPID; hostname; pwd; cat /proc/1/cmdline | tr '\\0' ' '"], |r| {
        r.cwd = Some("/srv/work".into())
    });
    let out = run(&s, &fx).unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["ppid=1", "box", "/srv/work"], "{out:?}");
    assert!(lines[3].starts_with("berth __init -- sh -c"), "{out:?}");
}

#[test]
fn proc_and_sys_are_masked_and_read_only() {
    if skip() {
        return;
    }
    // Which masked paths exist depends on the kernel's config (this test
    // machine has no /proc/kcore or /proc/sysrq-trigger): check those the
    // host has, and that there is at least one file and one directory.
    let masked = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/sys/firmware"];
    let present: Vec<&str> = masked.iter().copied().filter(|p| std::path::Path::new(p).exists()).collect();
    let files: Vec<&str> = present.iter().copied().filter(|p| std::path::Path::new(p).is_file()).collect();
    let dirs: Vec<&str> = present.iter().copied().filter(|p| std::path::Path::new(p).is_dir()).collect();
    assert!(!files.is_empty() && !dirs.is_empty(), "no masked path to check on this host");
    let mut script = String::new();
    for f in &files {
        script += &format!("echo {f}=$(wc -c < {f}); ");
    }
    for d in &dirs {
        script += &format!("echo {d}=$(ls -A {d} | wc -l); ");
    }
    script += "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo procsys=rw || echo procsys=ro; \
               touch /sys/berth 2>/dev/null && echo sys=rw || echo sys=ro; \
               for p in /proc/bus /proc/fs /proc/irq /proc/sys /sys; do \
                 awk -v p=$p '$5 == p { split($6, o, \",\"); print p \"=\" o[1] }' /proc/self/mountinfo | tail -n 1; \
               done";
    let out = sh(&["sh", "-c", &script]);
    let mut want = String::new();
    for p in files.iter().chain(&dirs) {
        want += &format!("{p}=0\n");
    }
    want += "procsys=ro\nsys=ro\n/proc/bus=ro\n/proc/fs=ro\n/proc/irq=ro\n/proc/sys=ro\n/sys=ro\n";
    assert_eq!(out.stdout, want, "{out:?}");
}

#[test]
fn dev_has_only_the_standard_nodes() {
    if skip() {
        return;
    }
    let out = sh(&["ls", "-A", "/dev"]);
    let got: BTreeSet<&str> = out.stdout.split_whitespace().collect();
    let want: BTreeSet<&str> = [
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom",
        "zero",
    ]
    .into();
    assert_eq!(got, want, "{out:?}");
    let out = sh(&["sh", "-c", "echo hi > /dev/null && head -c 4 /dev/zero | wc -c && readlink /dev/ptmx"]);
    assert_eq!(out.stdout, "4\npts/ptmx\n", "{out:?}");
}

#[test]
fn root_has_dockers_capabilities_and_no_no_new_privs() {
    if skip() {
        return;
    }
    let out = sh(&["grep", "-E", "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)", "/proc/self/status"]);
    let fields: Vec<String> = out.stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        fields,
        [
            "CapInh: 0000000000000000",
            "CapPrm: 00000000a80425fb",
            "CapEff: 00000000a80425fb",
            "CapBnd: 00000000a80425fb",
            "CapAmb: 0000000000000000",
            "NoNewPrivs: 0"
        ],
        "{out:?}"
    );
}

#[test]
fn user_from_the_spec() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let user = crate::runtime::spec::resolve_user(&fx.rootfs.lowers[0], "app").unwrap();
    let s = spec_with(&["sh", "-c", "id; grep -E '^CapEff' /proc/self/status; echo $HOME"], |r| r.user = user);
    let out = run(&s, &fx).unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)", "{out:?}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["CapEff:", "0000000000000000"]);
    assert_eq!(lines[2], "/home/app");

    let s = spec_with(&["id", "-u"], |r| r.user = ResolvedUser { uid: 4242, gid: 4242, ..Default::default() });
    assert_eq!(run(&s, &fx).unwrap().stdout, "4242\n");
}

#[test]
fn only_stdio_fds_reach_the_command() {
    if skip() {
        return;
    }
    // Not the last command, so sh forks ls and $$ is sh itself.
    let out = sh(&["sh", "-c", "ls /proc/$$/fd; true"]);
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"], "{out:?}");
    // And init (not dumpable: looked at from the host) holds only its stdio.
    let fx = Fixture::busybox();
    let (pid, out, err) = super::fixture::start(&spec(&["sleep", "60"]), &fx).unwrap();
    let _guard = super::fixture::KillOnDrop(pid);
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    crate::sys::proc::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    super::fixture::finish(pid, out, err);
    assert_eq!(fds, ["0", "1", "2"]);
    // A read-only view of the binary (its path inside a detached mount) or,
    // where that is unavailable, the sealed memfd copy.
    let exe = exe.to_string_lossy();
    let view_name = std::fs::read_link("/proc/self/exe").unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert!(exe.starts_with("/memfd:berth-init") || exe == format!("/{view_name}"), "{exe:?}");
}

#[test]
fn init_binary_is_a_view_or_sealed_memfd_nobody_can_write() {
    if skip() {
        return;
    }
    // PID 1 is not dumpable, so its /proc files are closed to the
    // container (no CAP_SYS_PTRACE); the command's own exe is busybox.
    let script =
        "readlink /proc/1/exe || echo HIDDEN; (echo x >> /proc/1/exe) 2>/dev/null && echo WROTE || echo REFUSED";
    let out = sh(&["sh", "-c", script]);
    assert_eq!(out.stdout, "HIDDEN\nREFUSED\n", "{out:?}");
    // Even with the access the kernel allows root on the host, the memfd
    // refuses writes: it is sealed (and being executed).
    let fx = Fixture::busybox();
    let (pid, out, err) = super::fixture::start(&spec(&["sleep", "60"]), &fx).unwrap();
    let _guard = super::fixture::KillOnDrop(pid);
    let opened = std::fs::OpenOptions::new().append(true).open(format!("/proc/{pid}/exe"));
    let wrote = opened.map(|mut f| std::io::Write::write_all(&mut f, b"x"));
    crate::sys::proc::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    super::fixture::finish(pid, out, err);
    assert!(!matches!(wrote, Ok(Ok(()))), "wrote to the init binary: {wrote:?}");
    if !super::fixture::init().is_empty() {
        let seals = crate::sys::exec::seals(super::fixture::init().fd()).unwrap();
        assert_eq!(seals & 0xf, 0xf, "F_SEAL_SEAL, SHRINK, GROW and WRITE: {seals:#x}");
    } else {
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&super::fixture::init().fd())))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "the view is read-only: {err}");
    }
}

#[test]
fn exit_codes() {
    if skip() {
        return;
    }
    assert_eq!(sh(&["sh", "-c", "exit 3"]).code, 3);
    assert_eq!(sh(&["sh", "-c", "kill -9 $$"]).code, 128 + 9);
    assert_eq!(sh(&["false"]).code, 1);

    let fx = Fixture::busybox();
    let err = run(&spec(&["no-such-command"]), &fx).unwrap_err();
    assert_eq!(err.exit_code(), Some(127), "{err}");
    assert_eq!(err.to_string(), "exec \"no-such-command\": executable file not found in $PATH");
    std::fs::write(fx.rootfs.lowers[0].join("bin/noexec"), "#!/bin/sh\n").unwrap();
    let err = run(&spec(&["/bin/noexec"]), &fx).unwrap_err();
    assert_eq!(err.exit_code(), Some(126), "{err}");
    assert!(matches!(err, ProcessError::Exec { .. }));
    assert_eq!(fx.host_mounts(), Vec::<String>::new());
}

#[test]
fn killed_from_outside_is_128_plus_9() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let (pid, out, err) = super::fixture::start(&spec(&["sleep", "60"]), &fx).unwrap();
    let _guard = super::fixture::KillOnDrop(pid);
    crate::sys::proc::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(super::fixture::finish(pid, out, err).code, 137);
    assert_eq!(fx.host_mounts(), Vec::<String>::new());
}

#[test]
fn term_is_forwarded_to_the_command() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done";
    let (pid, mut out, err) = super::fixture::start(&spec(&["sh", "-c", script]), &fx).unwrap();
    let _guard = super::fixture::KillOnDrop(pid);
    let mut line = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut line).unwrap();
    assert_eq!(&line, b"ready\n");
    crate::sys::proc::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let rest = super::fixture::finish(pid, out, err);
    assert_eq!((rest.code, rest.stdout.as_str()), (42, "got-term\n"), "{rest:?}");
}

#[test]
fn init_reports_exec_failures_on_stderr_too() {
    if skip() {
        return;
    }
    let fx = Fixture::busybox();
    let (stdio, out, err) = super::fixture::pipes();
    let launched = crate::runtime::process::launch(crate::runtime::process::Launch {
        spec: &spec(&["/bin/nope"]),
        rootfs: &fx.rootfs,
        stdio,
        init: super::fixture::init(),
        before_start: &|_| Ok(()),
    });
    assert!(matches!(launched, Err(ProcessError::Exec { code: 127, .. })), "{launched:?}");
    let mut text = String::new();
    drop(out);
    std::io::Read::read_to_string(&mut { err }, &mut text).unwrap();
    assert_eq!(text, "berth-init: exec \"/bin/nope\": no such file or directory\n");
}
