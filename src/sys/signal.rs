//! Sending signals to single processes.
//!
//! Built on `nix::sys::signal::kill`, so this file needs no `unsafe` of its
//! own. Only positive process ids are accepted: `kill(2)` reads 0 and
//! negative ids as "a whole process group" or "every process", which no
//! caller of these functions ever means.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Sends `SIGKILL` to process `pid`. Returns `false` when no such process
/// exists (it has already been reaped).
pub fn sigkill(pid: i32) -> io::Result<bool> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}: only single processes (pid > 0) may be signalled"),
        ));
    }
    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_groups_and_everyone() {
        for pid in [0, -1, -42] {
            assert_eq!(sigkill(pid).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn kills_a_child_and_reports_a_missing_process() {
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        assert!(sigkill(pid).unwrap());
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        // Above the kernel's PID_MAX_LIMIT (4194304): never a process.
        assert!(!sigkill(i32::MAX).unwrap());
    }
}
