//! Terminals: making a terminal the controlling one of a session, giving
//! the foreground to a process group, and opening pseudo-terminal pairs.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::unistd::{self, Pid};

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal `fd` the controlling
/// terminal of this process's session (the caller must lead a session
/// without one, e.g. right after `setsid`).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `tcsetpgrp(fd, pgrp)`: makes `pgrp` the foreground process group of the
/// terminal `fd`.
pub fn set_foreground(fd: BorrowedFd<'_>, pgrp: Pid) -> io::Result<()> {
    Ok(unistd::tcsetpgrp(fd, pgrp)?)
}

/// A new pseudo-terminal pair: `(master, slave)`, both close-on-exec.
pub fn open_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let pair = nix::pty::openpty(None, None)?;
    for fd in [&pair.master, &pair.slave] {
        crate::sys::exec::set_cloexec(std::os::fd::AsFd::as_fd(fd), true)?;
    }
    Ok((pair.master, pair.slave))
}

/// True if `fd` is the controlling terminal of a session this process
/// leads (`isatty` and `tcgetsid(fd) == getpid()`).
pub fn leads_session_on(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: tcgetsid only queries the terminal; -1 means "not one".
    let sid = unsafe { libc::tcgetsid(fd.as_raw_fd()) };
    sid > 0 && sid == unistd::getpid().as_raw()
}
