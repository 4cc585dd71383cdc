//! Detaching a process from its parent and terminal: the shim's double fork.

use std::io;

use nix::unistd::{ForkResult, fork, setsid};

/// Forks; the parent exits at once with status 0 and the child continues in
/// a new session, with no controlling terminal and not a process-group
/// leader of the caller's group. Call it while the process has one thread.
pub fn detach() -> io::Result<()> {
    // SAFETY: the caller guarantees the process is single-threaded here, so
    // the child may run any code after fork; the parent only calls _exit.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { .. } => {
            // SAFETY: _exit ends the process at once without running Rust
            // destructors or atexit handlers, which belong to the child now.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {
            setsid().map_err(io::Error::from)?;
            Ok(())
        }
    }
}
