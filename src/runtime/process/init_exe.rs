//! berth's own binary as a sealed memfd, the executable of every
//! container's PID 1 and of every `exec_in` process.
//!
//! CVE-2019-5736: a process in a container that can open the runtime's
//! binary through `/proc/PID/exe` (of a runtime process that joined the
//! container, or of PID 1 if that is the runtime's binary) can overwrite
//! it on the host. A memfd copy sealed against writing, growing and
//! shrinking (`F_SEAL_WRITE|GROW|SHRINK`, and `F_SEAL_SEAL` so the seals
//! stay) is what the container's processes see instead: it can be read and
//! executed, never written. It is made once per supervisor process
//! ([`InitExe::current`]) and reused for every launch and exec.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ProcessError;
use crate::sys::exec;

/// A sealed, executable in-memory copy of berth's binary.
#[derive(Debug)]
pub struct InitExe {
    fd: OwnedFd,
    len: u64,
    took: Duration,
}

impl InitExe {
    /// The running binary (`/proc/self/exe`): a read-only view of it when
    /// the kernel offers one, else a sealed copy.
    pub fn current() -> Result<InitExe, ProcessError> {
        let start = Instant::now();
        if let Ok(real) = std::fs::read_link("/proc/self/exe")
            && real.is_file()
            && let Ok(fd) = crate::sys::mount::read_only_view(&real)
        {
            return Ok(InitExe { fd, len: 0, took: start.elapsed() });
        }
        InitExe::from_path(Path::new("/proc/self/exe"))
    }

    /// Copies the binary at `path` (which must dispatch `__init` to
    /// `runtime::init::main`, as the `berth` binary does).
    pub fn from_path(path: &Path) -> Result<InitExe, ProcessError> {
        let start = Instant::now();
        let err = |source| ProcessError::InitExe { path: PathBuf::from(path), source };
        let (fd, len) = exec::sealed_copy(path, c"berth-init").map_err(err)?;
        Ok(InitExe { fd, len, took: start.elapsed() })
    }

    /// The memfd, for `execveat(AT_EMPTY_PATH)`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Size of the copy in bytes (memory it holds while the supervisor
    /// lives); 0 for a read-only view, which holds no copy.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the copy is empty (never, for a real binary).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How long making the copy took.
    pub fn creation_time(&self) -> Duration {
        self.took
    }
}
