//! An OCI `linux.seccomp` object compiled to a classic BPF program for
//! `seccomp(SECCOMP_SET_MODE_FILTER)`. Argument comparisons are
//! seccompiler's (64-bit values checked as two 32-bit halves); the
//! dispatch around them is here, because a profile gives each rule its own
//! action and seccompiler's filters have one action for all rules.
//!
//! The program:
//! 1. another architecture's call (i386 through `int 0x80`) and an x32
//!    call (number with bit 30 set) get [`FOREIGN_ABI`]: their numbers
//!    differ from x86_64's, so an allow-list written for x86_64 would be
//!    meaningless for them, and a deny-list would be escaped through them;
//! 2. a number above the highest the profile names gets ENOSYS (when the
//!    default is to refuse): a call newer than the profile looks absent, as
//!    on an older kernel, and programs fall back instead of failing on
//!    EPERM (runc does the same);
//! 3. a binary search over the numbers the profile names (a tree of
//!    `nr >= pivot` tests down to leaves of at most [`LEAF`] `nr == N`
//!    tests), so that finding a call's rules takes about a dozen
//!    instructions, not one test per named call;
//! 4. for each system call the profile names, its rules in the profile's
//!    order: the first whose arguments match gives its action, and when
//!    none does, the default action (a call with one unconditional rule,
//!    most of them, returns right in its leaf);
//! 5. every other number gets the default action.
//!
//! The kernel (5.11+) caches, per number, calls whose result does not
//! depend on arguments, so an allowed call does not run the program at all.
//! To learn which those are it runs the program for every number when the
//! filter is installed, at every container start: with one `nr == N` test
//! after another (the program before the search), that took about 0.65 ms
//! of the start for Docker's default profile, most of the filter's cost.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use seccompiler::{BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule, sock_filter};

use super::table;

/// What a call of another ABI gets: EPERM, as for any call the profile
/// does not allow.
pub const FOREIGN_ABI: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Classic BPF opcodes (linux/bpf_common.h).
// BPF_LD | BPF_W | BPF_ABS (BPF_LD and BPF_W are 0).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;
// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// A compiled filter and its `seccomp()` flags. It travels to the
/// container's process compiled (each instruction packed in a `u64`), so
/// a profile is compiled once per start or exec, in the parent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    #[serde(with = "packed")]
    pub program: BpfProgram,
    pub flags: u32,
}

/// `sock_filter` as `code << 48 | jt << 40 | jf << 32 | k`.
mod packed {
    use seccompiler::{BpfProgram, sock_filter};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(program: &BpfProgram, s: S) -> Result<S::Ok, S::Error> {
        let words: Vec<u64> = program
            .iter()
            .map(|i| u64::from(i.code) << 48 | u64::from(i.jt) << 40 | u64::from(i.jf) << 32 | u64::from(i.k))
            .collect();
        words.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BpfProgram, D::Error> {
        let words = Vec::<u64>::deserialize(d)?;
        Ok(words
            .into_iter()
            .map(|w| sock_filter { code: (w >> 48) as u16, jt: (w >> 40) as u8, jf: (w >> 32) as u8, k: w as u32 })
            .collect())
    }
}

/// Why a profile could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("syscalls {names}: {source}")]
    Rule { names: String, source: seccompiler::BackendError },
    #[error("SCMP_ACT_NOTIFY is not supported (berth has no seccomp agent)")]
    Notify,
    #[error("the filter has {0} instructions; the kernel takes at most 4096")]
    TooLong(usize),
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The return value of `action`.
pub(super) fn ret(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, CompileError> {
    use LinuxSeccompAction as A;
    Ok(match action {
        A::ScmpActKill | A::ScmpActKillThread => SECCOMP_RET_KILL_THREAD,
        A::ScmpActKillProcess => SECCOMP_RET_KILL_PROCESS,
        A::ScmpActTrap => SECCOMP_RET_TRAP,
        A::ScmpActErrno => SECCOMP_RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        A::ScmpActTrace => SECCOMP_RET_TRACE | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        A::ScmpActLog => SECCOMP_RET_LOG,
        A::ScmpActAllow => SECCOMP_RET_ALLOW,
        A::ScmpActNotify => return Err(CompileError::Notify),
    })
}

fn op(o: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (SeccompCmpOp, u64) {
    use LinuxSeccompOperator as O;
    match o {
        O::ScmpCmpNe => (SeccompCmpOp::Ne, value),
        O::ScmpCmpLt => (SeccompCmpOp::Lt, value),
        O::ScmpCmpLe => (SeccompCmpOp::Le, value),
        O::ScmpCmpEq => (SeccompCmpOp::Eq, value),
        O::ScmpCmpGe => (SeccompCmpOp::Ge, value),
        O::ScmpCmpGt => (SeccompCmpOp::Gt, value),
        O::ScmpCmpMaskedEq => (SeccompCmpOp::MaskedEq(value), value_two.unwrap_or(0)),
    }
}

/// One rule for one call: argument conditions (none = always) and the
/// return value.
struct Case {
    conditions: Vec<SeccompCondition>,
    ret: u32,
}

/// Compiles `profile` (see the module overview).
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter, CompileError> {
    let default = ret(profile.default_action(), profile.default_errno_ret())?;
    let mut calls: BTreeMap<u32, Vec<Case>> = BTreeMap::new();
    for rule in profile.syscalls().iter().flatten() {
        let names = rule.names().join(", ");
        let r = ret(rule.action(), rule.errno_ret())?;
        let mut conditions = Vec::new();
        for a in rule.args().iter().flatten() {
            let (cmp, value) = op(a.op(), a.value(), a.value_two());
            let index = u8::try_from(a.index()).unwrap_or(u8::MAX);
            let c = SeccompCondition::new(index, SeccompCmpArgLen::Qword, cmp, value)
                .map_err(|source| CompileError::Rule { names: names.clone(), source })?;
            conditions.push(c);
        }
        for name in rule.names() {
            if let Some(nr) = table::number(name) {
                calls.entry(nr).or_default().push(Case { conditions: conditions.clone(), ret: r });
            }
        }
    }

    let mut prog = vec![
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, FOREIGN_ABI),
        stmt(BPF_LD_W_ABS, DATA_NR),
        jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, FOREIGN_ABI),
    ];
    let refusing =
        !matches!(profile.default_action(), LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog);
    if let (true, Some(&highest)) = (refusing, calls.keys().next_back()) {
        prog.push(jump(BPF_JMP_JGT_K, highest, 0, 1));
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    let mut blocks = Vec::new();
    for (nr, cases) in calls {
        blocks.push((nr, block(&names_of(nr), cases, default)?));
    }
    prog.extend(dispatch(&blocks, default));
    if prog.len() > 4096 {
        return Err(CompileError::TooLong(prog.len()));
    }
    let flags = profile.flags().iter().flatten().fold(0u32, |acc, f| {
        acc | match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG as u32,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
            // Threads: the container's process has one when the filter is
            // installed. Killable waits: only for notifications.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync
            | LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        }
    });
    Ok(Filter { program: prog, flags })
}

/// Leaves of the search tree test at most this many numbers one by one.
pub const LEAF: usize = 8;

/// The search over `blocks` (sorted by number, each block ending in
/// returns), then the blocks it jumps to. A number the profile does not
/// name reaches a leaf's last instruction, which returns `default`. The
/// accumulator holds the number throughout the search.
fn dispatch(blocks: &[(u32, Vec<sock_filter>)], default: u32) -> Vec<sock_filter> {
    let mut tree = Vec::new();
    // (the index of a jump in `tree`, the block it goes to)
    let mut jumps = Vec::new();
    search(blocks, 0, default, &mut tree, &mut jumps);
    // Blocks of one return are inlined in their leaf; the others follow
    // the tree, reached by `ja`, whose offset has 32 bits (a conditional
    // jump's has 8).
    let mut starts = vec![0; blocks.len()];
    let mut out_of_line = Vec::new();
    for (i, (_, block)) in blocks.iter().enumerate() {
        if block.len() > 1 {
            starts[i] = tree.len() + out_of_line.len();
            out_of_line.extend_from_slice(block);
        }
    }
    for (at, i) in jumps {
        tree[at].k = (starts[i] - (at + 1)) as u32;
    }
    tree.extend(out_of_line);
    tree
}

/// Appends the search over `blocks` (which start at index `first` of all
/// blocks) to `out`, noting in `jumps` each `ja` to fix once the blocks'
/// places are known.
fn search(
    blocks: &[(u32, Vec<sock_filter>)],
    first: usize,
    default: u32,
    out: &mut Vec<sock_filter>,
    jumps: &mut Vec<(usize, usize)>,
) {
    if blocks.len() <= LEAF {
        for (i, (nr, block)) in blocks.iter().enumerate() {
            // Equal: the next instruction; else the one after it.
            out.push(jump(BPF_JMP_JEQ_K, *nr, 0, 1));
            if let [only] = block.as_slice() {
                out.push(sock_filter { ..*only });
            } else {
                jumps.push((out.len(), first + i));
                out.push(stmt(BPF_JMP_JA, 0));
            }
        }
        out.push(stmt(BPF_RET_K, default));
        return;
    }
    let mid = blocks.len() / 2;
    // nr >= pivot: jump to the upper half; else fall into the lower half.
    let at = out.len();
    out.push(jump(BPF_JMP_JGE_K, blocks[mid].0, 0, 1));
    out.push(stmt(BPF_JMP_JA, 0));
    search(&blocks[..mid], first, default, out, jumps);
    out[at + 1].k = (out.len() - (at + 2)) as u32;
    search(&blocks[mid..], first + mid, default, out, jumps);
}

fn names_of(nr: u32) -> String {
    table::name(nr).unwrap_or("?").to_owned()
}

/// The instructions for one call: each case in order, then the default.
/// Every path ends in a return, so the number need not be reloaded.
fn block(name: &str, cases: Vec<Case>, default: u32) -> Result<Vec<sock_filter>, CompileError> {
    let mut out = Vec::new();
    for case in cases {
        if case.conditions.is_empty() {
            out.push(stmt(BPF_RET_K, case.ret));
            // Later cases cannot be reached.
            return Ok(out);
        }
        let rule = SeccompRule::new(case.conditions)
            .map_err(|source| CompileError::Rule { names: name.to_owned(), source })?;
        // A rule falls through when every condition holds and jumps past
        // the instruction that follows it otherwise. seccompiler starts it
        // with `ja 1; ja NEXT` for its own chaining of rules: the second is
        // never executed, and its target may lie past the end of our
        // program, which the kernel refuses. Both go.
        let mut code = BpfProgram::from(rule);
        if code.len() > 2 && code[0].code == BPF_JMP_JA && code[0].k == 1 && code[1].code == BPF_JMP_JA {
            code.drain(..2);
        }
        out.extend(code);
        out.push(stmt(BPF_RET_K, case.ret));
    }
    out.push(stmt(BPF_RET_K, default));
    Ok(out)
}
