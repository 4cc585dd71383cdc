//! Attributes of the current process: credentials, resource limits,
//! hostname, `prctl` flags, signal masks and dispositions, and waiting for
//! and signalling children.

use std::io;

use nix::sys::resource::{self, Resource};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{self, WaitPidFlag, WaitStatus};
use nix::unistd::{self, Gid, Pid, Uid};

pub use nix::sys::resource::Resource as Rlimit;

/// `PR_SET_NO_NEW_PRIVS`: execve can never grant privileges again
/// (setuid bits and file capabilities are ignored).
pub fn set_no_new_privs() -> io::Result<()> {
    Ok(nix::sys::prctl::set_no_new_privs()?)
}

/// `PR_GET_NO_NEW_PRIVS`.
pub fn no_new_privs() -> io::Result<bool> {
    Ok(nix::sys::prctl::get_no_new_privs()?)
}

/// `PR_SET_DUMPABLE`. A process that is not dumpable has its `/proc/PID`
/// files owned by root and its `/proc/PID/exe` closed to processes without
/// `CAP_SYS_PTRACE`; exec of an ordinary binary makes it dumpable again.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    Ok(nix::sys::prctl::set_dumpable(on)?)
}

/// `PR_SET_PDEATHSIG(SIGKILL)`: this process is killed when the thread
/// that created it exits.
pub fn die_with_parent() -> io::Result<()> {
    Ok(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?)
}

/// `getrlimit(resource)` as `(soft, hard)`.
pub fn get_rlimit(res: Resource) -> io::Result<(u64, u64)> {
    Ok(resource::getrlimit(res)?)
}

/// `setrlimit(resource, soft, hard)`.
pub fn set_rlimit(res: Resource, soft: u64, hard: u64) -> io::Result<()> {
    Ok(resource::setrlimit(res, soft, hard)?)
}

/// `setgroups(groups)` (unless `groups` is `None`: the supplementary groups
/// stay as they are), then `setresgid(gid)`, then `setresuid(uid)`: the
/// order in which each call still has the privilege it needs.
pub fn set_ids(uid: u32, gid: u32, groups: Option<&[u32]>) -> io::Result<()> {
    if let Some(groups) = groups {
        let groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
        unistd::setgroups(&groups)?;
    }
    let gid = Gid::from_raw(gid);
    unistd::setresgid(gid, gid, gid)?;
    let uid = Uid::from_raw(uid);
    unistd::setresuid(uid, uid, uid)?;
    Ok(())
}

/// Whether `setgroups` is denied in this user namespace
/// (`/proc/self/setgroups` says `deny`: its gid map was written without
/// `newgidmap`).
pub fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// `sethostname(name)` in the current UTS namespace.
pub fn set_hostname(name: &str) -> io::Result<()> {
    Ok(unistd::sethostname(name)?)
}

/// The hostname of the current UTS namespace.
pub fn hostname() -> io::Result<String> {
    Ok(unistd::gethostname()?.to_string_lossy().into_owned())
}

/// This process's pid.
pub fn pid() -> Pid {
    unistd::getpid()
}

/// `kill(pid, sig)`; `ESRCH` (already gone) counts as success.
pub fn kill(pid: Pid, sig: Signal) -> io::Result<()> {
    match signal::kill(pid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// The shell's convention: the code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

fn exit_of(status: WaitStatus) -> Option<(Pid, Exit)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, Exit::Code(code))),
        WaitStatus::Signaled(pid, sig, _) => Some((pid, Exit::Signal(sig as i32))),
        _ => None,
    }
}

/// Blocks until the child `pid` ends (retrying on `EINTR`) and reaps it.
pub fn wait_exit(pid: Pid) -> io::Result<Exit> {
    loop {
        match wait::waitpid(pid, None) {
            Ok(status) => {
                if let Some((_, exit)) = exit_of(status) {
                    return Ok(exit);
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits at most `timeout` for the child `pid` to end; reaps it and
/// returns how it ended, or `None` (not reaped, so its pid stays ours to
/// signal) when it is still running.
pub fn wait_exit_within(pid: Pid, timeout: std::time::Duration) -> io::Result<Option<Exit>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned by pidfd_open and is owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&pidfd), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) => return Ok(None),
            Ok(_) => return wait_exit(pid).map(Some),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps one child that has ended, without blocking: `Ok(None)` when none
/// has (or there are no children).
pub fn reap_any() -> io::Result<Option<(Pid, Exit)>> {
    loop {
        match wait::waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(status) => match exit_of(status) {
                Some(found) => return Ok(Some(found)),
                None => continue,
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Blocks every signal for the calling thread.
pub fn block_all_signals() -> io::Result<()> {
    Ok(signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None)?)
}

/// Gives a process about to execute a command a clean signal state: every
/// signal's disposition back to the default and none blocked. Dispositions
/// set to "ignore" survive `execve`, so without this a container's command
/// would inherit whatever its caller ignored (`nohup berth run …` left
/// SIGHUP ignored, and sh cannot trap a signal ignored on entry).
/// Allocation-free, for use between `fork` and `exec`.
pub fn reset_signals() {
    // The kernel's `struct sigaction` all zero is SIG_DFL with no flags and
    // an empty mask (32 bytes covers every architecture's layout).
    let default = [0u64; 4];
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default` (valid, large enough) and
        // installs SIG_DFL, which runs no code of ours. The raw call, not
        // libc's signal(): the C library refuses the two signals it
        // reserves for itself (32 and 33), and those were found ignored
        // in containers' commands too.
        unsafe { libc::syscall(libc::SYS_rt_sigaction, signo, default.as_ptr(), std::ptr::null_mut::<u64>(), 8usize) };
    }
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// One signal taken from the pending set by [`wait_signal`].
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub signo: i32,
}

/// `sigwaitinfo(all signals)`: waits for any blocked signal to be pending
/// and takes it. Allocates nothing.
pub fn wait_signal() -> io::Result<Pending> {
    let all = SigSet::all();
    loop {
        // SAFETY: siginfo_t is a plain C struct for which zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the duration of the call.
        let rc = unsafe { libc::sigwaitinfo(all.as_ref(), &mut info) };
        if rc >= 0 {
            return Ok(Pending { signo: rc });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `kill(pid, signo)` with a raw signal number (for forwarding signals that
/// `nix::Signal` may not name, like real-time ones); errors are returned.
pub fn kill_raw(pid: Pid, signo: i32) -> io::Result<()> {
    // SAFETY: kill only sends a signal.
    if unsafe { libc::kill(pid.as_raw(), signo) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// `setsid()`: a new session and process group led by this process.
pub fn setsid() -> io::Result<()> {
    unistd::setsid()?;
    Ok(())
}

/// `setpgid(0, 0)`: a new process group led by this process.
pub fn new_process_group() -> io::Result<()> {
    Ok(unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?)
}

/// `chdir(path)`.
pub fn chdir(path: &std::path::Path) -> io::Result<()> {
    Ok(unistd::chdir(path)?)
}

/// `fchdir(fd)`: makes the directory `fd` refers to the working directory.
pub fn fchdir(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    Ok(unistd::fchdir(fd)?)
}

/// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are re-parented to this
/// process instead of to PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
}

/// True if `fd` is open (`fcntl(F_GETFD)` succeeds).
pub fn fd_is_open(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFD only reads the fd's flags; a closed fd gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// True while `pid` is a child of this process that has not been reaped
/// (alive or a zombie): its pid cannot have been reused.
pub fn is_unreaped_child(pid: Pid) -> bool {
    let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT | WaitPidFlag::WEXITED;
    wait::waitid(wait::Id::Pid(pid), flags).is_ok()
}
