//! berth's init: PID 1 of every container, reached through the hidden
//! `__init` argument of berth's own binary (executed from a sealed memfd).
//!
//! `berth __init -- CMD ARGS…`: blocks every signal, forks, and in the
//! child resets every signal's disposition and unblocks them all (a
//! command starts with a clean signal state, whatever its caller ignored or
//! blocked), takes the terminal's foreground if there is one, and executes
//! `CMD` searching the container's `PATH`. The parent then loops on
//! `sigwaitinfo`: `SIGCHLD` reaps every child that ended (orphans the
//! kernel re-parents to PID 1 included), any other catchable signal is
//! forwarded to the command, and when the command ends init exits with its
//! status (128+N for signal N), which ends the PID namespace. The loop
//! allocates nothing.
//!
//! `berth __init --exec -- CMD ARGS…` (for `exec_in`) executes `CMD`
//! directly: the process keeps its pid, so its caller can wait for it.
//!
//! If fd 3 is open it is the error pipe of `runtime::process`: when `CMD`
//! cannot be executed, init writes `berth-init: exec "CMD": REASON` to
//! stderr and a record to fd 3, and the exit code is 127 (126 for
//! permission denied). On success fd 3 closes with the exec.

use std::ffi::OsString;

use nix::unistd::Pid;

use crate::runtime::process::child::{self, Config};
use crate::runtime::process::wire::{self, INIT_ERROR_FD};
use crate::sys::exec::{self, CStrArray, exit_now, write_all_raw};
use crate::sys::ns::{self, Forked};
use crate::sys::{proc as sysproc, pty};

/// Entry point for the `__init` argument: never returns.
pub fn main() -> ! {
    run(std::env::args_os().collect())
}

/// Like [`main`] with explicit arguments (`argv[0]`, `__init`, …).
pub fn run(args: Vec<OsString>) -> ! {
    let rest = args.get(2..).unwrap_or_default();
    let exec_mode = rest.first().is_some_and(|a| a == "--exec");
    let rest = if exec_mode { &rest[1..] } else { rest };
    let command = match rest.first() {
        Some(dashes) if dashes == "--" => &rest[1..],
        _ => rest,
    };
    // Started by runtime::process: finish setting the container up first.
    if let Some(config) = child::read_config() {
        match config {
            Config::Create { spec, rootfs, userns, filter } => child::create(&spec, &rootfs, userns.as_deref(), filter),
            Config::Exec { target, process, filter } => child::exec(target, &process, filter),
        }
    }
    let err_fd = if sysproc::fd_is_open(INIT_ERROR_FD) {
        let _ = exec::set_cloexec(exec::borrow_raw(INIT_ERROR_FD), true);
        Some(INIT_ERROR_FD)
    } else {
        None
    };
    let argv = match CStrArray::new(command) {
        Ok(argv) if !command.is_empty() => argv,
        _ => fatal(b"berth-init: usage: berth __init [--exec] -- COMMAND [ARG...]\n", 127),
    };
    if exec_mode {
        exec_command(&argv, err_fd);
    }
    reap(&argv, err_fd)
}

fn fatal(msg: &[u8], code: i32) -> ! {
    write_all_raw(2, msg);
    exit_now(code)
}

/// The exit code for a command that could not be executed.
pub fn exec_exit_code(errno: i32) -> i32 {
    if errno == libc::EACCES || errno == libc::EPERM { 126 } else { 127 }
}

/// Why `command` could not be executed, in words.
pub fn exec_failure_reason(errno: i32, command: &[u8]) -> &'static str {
    match errno {
        libc::ENOENT if !command.contains(&b'/') => "executable file not found in $PATH",
        libc::ENOENT => "no such file or directory",
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        libc::ENOEXEC => "exec format error",
        libc::ENOTDIR => "not a directory",
        libc::ELOOP => "too many levels of symbolic links",
        libc::E2BIG => "argument list too long",
        libc::ENOMEM => "out of memory",
        _ => nix::errno::Errno::from_raw(errno).desc(),
    }
}

/// Executes the command (searching `PATH`); on failure reports on stderr
/// and on `err_fd`, and exits with 127 or 126.
pub(crate) fn exec_command(argv: &CStrArray, err_fd: Option<i32>) -> ! {
    sysproc::reset_signals();
    let e = exec::exec_path_search(argv);
    let errno = e.raw_os_error().unwrap_or(libc::ENOENT);
    let cmd = argv.first().map_or(&b""[..], |c| c.to_bytes());
    let mut line = [0u8; 600];
    let mut n = 0;
    for part in [&b"berth-init: exec \""[..], cmd, b"\": ", exec_failure_reason(errno, cmd).as_bytes(), b"\n"] {
        let take = part.len().min(line.len() - n);
        line[n..n + take].copy_from_slice(&part[..take]);
        n += take;
    }
    write_all_raw(2, &line[..n]);
    if let Some(fd) = err_fd {
        wire::send_exec_failure(fd, errno, cmd);
    }
    exit_now(exec_exit_code(errno))
}

fn is_forwarded(signo: i32) -> bool {
    !matches!(
        signo,
        libc::SIGCHLD
            | libc::SIGKILL
            | libc::SIGSTOP
            | libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGILL
            | libc::SIGFPE
            | libc::SIGABRT
            | libc::SIGTRAP
            | libc::SIGSYS
            | libc::SIGPIPE
    )
}

/// Init proper: forks the command and reaps until it ends (see the module
/// overview). `err_fd` is the error pipe, closed here once forked.
pub(crate) fn reap(argv: &CStrArray, err_fd: Option<i32>) -> ! {
    if sysproc::block_all_signals().is_err() {
        fatal(b"berth-init: cannot block signals\n", 1);
    }
    if sysproc::pid().as_raw() != 1 {
        // Not PID 1 (no PID namespace): orphans would go elsewhere.
        let _ = sysproc::set_child_subreaper();
    }
    let terminal = pty::leads_session_on(exec::borrow_raw(0));
    let child = match ns::fork() {
        Ok(Forked::Child) => {
            if terminal {
                let _ = sysproc::new_process_group();
                let _ = pty::set_foreground(exec::borrow_raw(0), sysproc::pid());
            }
            exec_command(argv, err_fd)
        }
        Ok(Forked::Parent(child)) => child,
        Err(_) => fatal(b"berth-init: fork failed\n", 1),
    };
    if let Some(fd) = err_fd {
        // Init's own copy: the command's copy closes with its exec, and the
        // parent must then see end of file.
        drop(exec::take_raw(fd));
    }
    supervise(child)
}

fn supervise(child: Pid) -> ! {
    loop {
        let Ok(sig) = sysproc::wait_signal() else { continue };
        if sig.signo == libc::SIGCHLD {
            while let Ok(Some((pid, exit))) = sysproc::reap_any() {
                if pid == child {
                    exit_now(exit.code());
                }
            }
        } else if is_forwarded(sig.signo) {
            let _ = sysproc::kill_raw(child, sig.signo);
        }
    }
}
