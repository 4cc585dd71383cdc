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
    run_counting(prog, arch, nr, args).0
}

/// [`run`], and how many instructions it executed.
fn run_counting(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
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
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let i = &prog[pc];
        pc += 1;
        steps += 1;
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
            0x06 => return (i.k, steps),
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

/// What `profile` gives `(nr, args)`, read from the object itself: the
/// first rule naming the call whose arguments all match.
fn reference(profile: &oci_spec::runtime::LinuxSeccomp, nr: u32, args: [u64; 6]) -> u32 {
    use oci_spec::runtime::{LinuxSeccompAction as A, LinuxSeccompOperator as O};
    let ret = |a, errno| compile::ret(a, errno).unwrap();
    let rules: Vec<_> = profile.syscalls().iter().flatten().collect();
    let named =
        |r: &oci_spec::runtime::LinuxSyscall| r.names().iter().filter_map(|n| table::number(n)).collect::<Vec<_>>();
    let highest = rules.iter().flat_map(|r| named(r)).max().unwrap_or(0);
    if !matches!(profile.default_action(), A::ScmpActAllow | A::ScmpActLog) && nr > highest {
        return ENOSYS;
    }
    for rule in rules.iter().filter(|r| named(r).contains(&nr)) {
        let holds = rule.args().iter().flatten().all(|c| {
            let (arg, v) = (args[c.index()], c.value());
            match c.op() {
                O::ScmpCmpNe => arg != v,
                O::ScmpCmpLt => arg < v,
                O::ScmpCmpLe => arg <= v,
                O::ScmpCmpEq => arg == v,
                O::ScmpCmpGe => arg >= v,
                O::ScmpCmpGt => arg > v,
                O::ScmpCmpMaskedEq => arg & v == c.value_two().unwrap_or(0),
            }
        });
        if holds {
            return ret(rule.action(), rule.errno_ret());
        }
    }
    ret(profile.default_action(), profile.default_errno_ret())
}

#[test]
fn the_search_gives_every_number_its_rules_in_a_few_instructions() {
    let clone_newuser = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
    let arg_sets =
        [[0; 6], [clone_newuser, 0, 0, 0, 0, 0], [0x20008, 0, 0, 0, 0, 0], [40, 1, 2, 3, 4, 5], [u64::MAX; 6]];
    for caps in [&[][..], &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]] {
        let mask = caps.iter().map(|c| 1u64 << crate::sys::caps::number(c).unwrap()).fold(0, |m, b| m | b);
        let object = default_profile().resolve(Context { caps: mask, kernel: (6, 1) });
        let f = compile(&object).unwrap();
        let conditional: Vec<u32> = object
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.args().as_ref().is_some_and(|a| !a.is_empty()))
            .flat_map(|r| r.names().iter().filter_map(|n| table::number(n)))
            .collect();
        let top = table::X86_64.iter().map(|(_, nr)| *nr).max().unwrap();
        let mut longest = 0;
        for nr in 0..=top + 2 {
            for args in arg_sets {
                let (got, steps) = run_counting(&f.program, X86_64, nr, args);
                assert_eq!(got, reference(&object, nr, args), "nr {nr} ({:?}) args {args:?}", table::name(nr));
                if !conditional.contains(&nr) {
                    longest = longest.max(steps);
                }
            }
        }
        // The prelude (7), the search (2 per level, 6 levels) and a leaf
        // (2 per number): without the search, the last call took hundreds.
        // (Calls with argument rules then run those.)
        assert!(longest <= 7 + 2 * 6 + 2 * compile::LEAF + 1, "{longest} instructions for one call");
    }
}

/// The kernel's checks of a classic BPF program that the interpreter
/// above does not make (`bpf_check_classic`): every jump lands inside the
/// program, executed or not, and the last instruction returns.
fn kernel_accepts(prog: &[sock_filter]) -> Result<(), String> {
    let n = prog.len();
    for (pc, i) in prog.iter().enumerate() {
        let lands = |off: usize| pc + off + 1 < n;
        match i.code {
            0x05 if !lands(i.k as usize) => return Err(format!("ja at {pc} jumps past the end")),
            0x15 | 0x25 | 0x35 if !lands(i.jt.into()) || !lands(i.jf.into()) => {
                return Err(format!("jump at {pc} goes past the end"));
            }
            _ => {}
        }
    }
    match prog.last() {
        Some(last) if last.code == 0x06 => Ok(()),
        _ => Err("the last instruction does not return".into()),
    }
}

#[test]
fn every_program_passes_the_kernels_checks() {
    for caps in [&[][..], &["CAP_SYS_ADMIN"], &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT"]] {
        let f = default_filter(caps);
        assert_eq!(kernel_accepts(&f.program), Ok(()), "{caps:?}");
    }
    let deny = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.json"), deny).unwrap();
    let p = Profile::load(&dir.path().join("p.json")).unwrap();
    let f = compile(&p.resolve(Context { caps: 0, kernel: (6, 1) })).unwrap();
    assert_eq!(kernel_accepts(&f.program), Ok(()));
    assert_eq!(call(&f, "personality", 8), 0x0005_0000 | libc::EPERM as u32);
    assert_eq!(call(&f, "personality", 0), ALLOW);
}
