//! Advisory whole-file locks (`flock(2)`), shared or exclusive.
//!
//! A lock belongs to the open file it was taken on: two opens of the same
//! path, even in one process, exclude each other as two processes would.
//! The lock is released when the [`FileLock`] is dropped (or the process
//! dies), so a crashed holder never leaves the file locked.
//!
//! Built on `nix::fcntl::Flock`, so this file needs no `unsafe` of its own.

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Which kind of lock to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once (`LOCK_SH`); excludes exclusive holders.
    Shared,
    /// A single holder (`LOCK_EX`); excludes everyone else.
    Exclusive,
}

/// A held `flock` on an open file; unlocked when dropped.
#[derive(Debug)]
pub struct FileLock {
    held: Flock<File>,
    mode: LockMode,
}

impl FileLock {
    /// The kind of lock held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.held
    }
}

/// Takes a lock on `file`, waiting as long as another holder excludes it.
/// A signal interrupting the wait does not end it.
pub fn lock(file: File, mode: LockMode) -> io::Result<FileLock> {
    let arg = match mode {
        LockMode::Shared => FlockArg::LockShared,
        LockMode::Exclusive => FlockArg::LockExclusive,
    };
    let mut file = file;
    loop {
        match Flock::lock(file, arg) {
            Ok(held) => return Ok(FileLock { held, mode }),
            Err((back, Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(errno.into()),
        }
    }
}

/// Takes a lock on `file` if nobody excludes it right now; `Ok(None)` if
/// another holder does.
pub fn try_lock(file: File, mode: LockMode) -> io::Result<Option<FileLock>> {
    let arg = match mode {
        LockMode::Shared => FlockArg::LockSharedNonblock,
        LockMode::Exclusive => FlockArg::LockExclusiveNonblock,
    };
    match Flock::lock(file, arg) {
        Ok(held) => Ok(Some(FileLock { held, mode })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &std::path::Path) -> File {
        File::options().read(true).write(true).create(true).truncate(false).open(path).unwrap()
    }

    #[test]
    fn shared_coexist_exclusive_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = lock(open(&path), LockMode::Shared).unwrap();
        let b = try_lock(open(&path), LockMode::Shared).unwrap();
        assert!(b.is_some());
        assert!(try_lock(open(&path), LockMode::Exclusive).unwrap().is_none());
        drop((a, b));
        let ex = try_lock(open(&path), LockMode::Exclusive).unwrap().expect("free after drop");
        assert_eq!(ex.mode(), LockMode::Exclusive);
        assert!(try_lock(open(&path), LockMode::Shared).unwrap().is_none());
    }
}
