//! The compiled default profile, run in a small classic-BPF interpreter
//! over `struct seccomp_data`: what each call gets, per capability set.

use seccompiler::sock_filter;

use super::profile::{Context, Profile};
use super::*;

const X86_64: u32 = 0xC000_003E;
const I386: u32 = 0x4000_0003;
const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

/// Runs `prog` on `(arch, nr, args)` and returns its result.
fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            16..=63 => {
                let arg = args[(off as usize - 16) / 8];
                if off.is_multiple_of(8) { arg as u32 } else { (arg >> 32) as u32 }
            }
            _ => panic!("load at {off}"),
        }
    };
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = &prog[pc];
        pc += 1;
        match i.code {
            0x20 => a = word(i.k),
            0x54 => a &= i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 => {
                let hit = match i.code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    _ => a >= i.k,
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            0x06 => return i.k,
            code => panic!("opcode {code:#x}"),
        }
    }
}

fn nr(name: &str) -> u32 {
    table::number(name).unwrap()
}

fn default_filter(caps: &[&str]) -> Filter {
    let mask = caps.iter().map(|c| 1u64 << crate::sys::caps::number(c).unwrap()).fold(0, |m, b| m | b);
    compile(&default_profile().resolve(Context { caps: mask, kernel: (6, 1) })).unwrap()
}

fn call(f: &Filter, name: &str, arg0: u64) -> u32 {
    run(&f.program, X86_64, nr(name), [arg0, 0, 0, 0, 0, 0])
}

#[test]
fn the_default_profile_allows_the_ordinary_and_refuses_the_dangerous() {
    let f = default_filter(&["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"]);
    for name in
        ["read", "write", "openat", "execve", "wait4", "arch_prctl", "capset", "setresuid", "fchmodat2", "mseal"]
    {
        assert_eq!(call(&f, name, 0), ALLOW, "{name}");
    }
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "bpf",
        "perf_event_open",
        "kexec_load",
        "open_by_handle_at",
        "userfaultfd",
        "swapon",
        "reboot",
        "init_module",
        "io_uring_setup",
        "io_uring_enter",
        "chroot",
        "ptrace_nonexistent",
    ] {
        if let Some(n) = table::number(name) {
            assert_eq!(run(&f.program, X86_64, n, [0; 6]), EPERM, "{name}");
        }
    }
    assert_eq!(call(&f, "ptrace", 0), ALLOW, "Docker allows ptrace from Linux 4.8");
    // clone: threads and forks yes, namespaces no; clone3 looks absent.
    assert_eq!(call(&f, "clone", (libc::CLONE_VM | libc::CLONE_THREAD) as u64), ALLOW);
    assert_eq!(call(&f, "clone", libc::CLONE_NEWUSER as u64), EPERM);
    assert_eq!(call(&f, "clone", (libc::CLONE_NEWNET | libc::SIGCHLD) as u64), EPERM);
    assert_eq!(call(&f, "clone3", 0), ENOSYS);
    // personality: only the listed values.
    for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(call(&f, "personality", p), ALLOW, "{p:#x}");
    }
    assert_eq!(call(&f, "personality", 0x0040000), EPERM, "ADDR_NO_RANDOMIZE");
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK, libc::AF_PACKET] {
        assert_eq!(call(&f, "socket", family as u64), ALLOW, "family {family}");
    }
    assert_eq!(call(&f, "socket", libc::AF_ALG as u64), EPERM, "AF_ALG");
    assert_eq!(call(&f, "socket", libc::AF_VSOCK as u64), EPERM, "AF_VSOCK");
    assert_eq!(call(&f, "socket", 46), EPERM, "a family newer than the list");
    assert_eq!(call(&f, "socket", 12), EPERM, "AF_DECnet");
}

#[test]
fn capabilities_open_their_calls() {
    let f = default_filter(&["CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_DAC_READ_SEARCH"]);
    for name in ["mount", "unshare", "setns", "clone3", "reboot", "open_by_handle_at", "bpf", "lsm_list_modules"] {
        assert_eq!(call(&f, name, 0), ALLOW, "{name}");
    }
    assert_eq!(call(&f, "clone", libc::CLONE_NEWUSER as u64), ALLOW);
    assert_eq!(call(&f, "init_module", 0), EPERM);
}

#[test]
fn other_abis_and_unknown_numbers_cannot_get_through() {
    let f = default_filter(&[]);
    // x32: the same numbers with bit 30 set; i386: int 0x80.
    assert_eq!(run(&f.program, X86_64, 0x4000_0000 | nr("read"), [0; 6]), EPERM);
    assert_eq!(run(&f.program, X86_64, 0x4000_0000 | nr("mkdir"), [0; 6]), EPERM);
    assert_eq!(run(&f.program, I386, 3, [0; 6]), EPERM);
    // Newer than the profile: absent, so that programs fall back.
    assert_eq!(run(&f.program, X86_64, 1000, [0; 6]), ENOSYS);
    assert_eq!(run(&f.program, X86_64, nr("open_tree_attr"), [0; 6]), ENOSYS, "Linux 6.15, newer than the profile");
    // Known but not allowed, below the highest: EPERM.
    assert_eq!(call(&f, "kexec_load", 0), EPERM);
}

#[test]
fn a_deny_list_profile_refuses_only_what_it_names_and_other_abis() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, json).unwrap();
    let p = Profile::load(&path).unwrap();
    let f = compile(&p.resolve(Context { caps: 0, kernel: (6, 1) })).unwrap();
    assert_eq!(call(&f, "mkdirat", 0), 0x0005_0000 | 13);
    assert_eq!(call(&f, "mount", 0), ALLOW);
    assert_eq!(run(&f.program, X86_64, 1000, [0; 6]), ALLOW, "no ENOSYS rule when the default allows");
    assert_eq!(run(&f.program, I386, 39, [0; 6]), EPERM, "i386 mkdir");
}

#[test]
fn malformed_profiles_are_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Profile::load(&path).unwrap_err().to_string()
    };
    let e = load(
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_NOPE\"}\n  ]\n}",
    );
    assert!(e.contains("bad.json:4:") && e.contains("SCMP_ACT_NOPE"), "{e}");
    let e = load(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(e.contains("bad.json") && e.contains("argument index 7"), "{e}");
    let e = load(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}}]}"#,
    );
    assert!(e.contains("CAP_NOPE"), "{e}");
    assert!(load("").contains("bad.json:1:"));
}

#[test]
fn the_table_is_sorted_and_complete_enough() {
    assert!(table::X86_64.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(table::number("read"), Some(0));
    assert_eq!(table::number("clone3"), Some(435));
    assert_eq!(table::number("chown32"), None);
}

#[test]
fn a_compiled_filter_travels_as_json_unchanged() {
    let f = default_filter(&["CAP_SYS_ADMIN"]);
    let json = serde_json::to_string(&f).unwrap();
    assert_eq!(serde_json::from_str::<Filter>(&json).unwrap(), f);
}
