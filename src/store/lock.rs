//! The store-wide lock: readers share it, writers hold it alone.
//!
//! Every command that changes the store takes [`Store::lock_exclusive`] for
//! as long as it writes; commands that only read take
//! [`Store::lock_shared`]. The store's own methods never lock (a second
//! `flock` on a new open file would deadlock against the caller's), so the
//! read-modify-write of `oci/index.json` in [`Store::set_tag`] is only safe
//! under the exclusive lock. The lock dies with its process, so a crash never
//! leaves the store locked.

use std::fs::File;

use super::{Store, StoreError};
use crate::sys::lock::{self, FileLock, LockMode};

/// A held store lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _held: FileLock,
    mode: LockMode,
}

impl StoreLock {
    /// Whether this is a shared or an exclusive lock.
    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

impl Store {
    /// Waits for and takes a shared lock: other readers may hold it too,
    /// writers wait.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        self.take_lock(LockMode::Shared)
    }

    /// Waits for and takes the exclusive lock: nobody else holds any lock
    /// until it is dropped.
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        self.take_lock(LockMode::Exclusive)
    }

    /// Takes a shared lock if no writer holds the store right now.
    pub fn try_lock_shared(&self) -> Result<Option<StoreLock>, StoreError> {
        self.try_take_lock(LockMode::Shared)
    }

    /// Takes the exclusive lock if nobody holds any lock right now.
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>, StoreError> {
        self.try_take_lock(LockMode::Exclusive)
    }

    fn take_lock(&self, mode: LockMode) -> Result<StoreLock, StoreError> {
        let held = lock::lock(self.open_lock_file()?, mode).map_err(StoreError::io("lock", self.lock_path()))?;
        Ok(StoreLock { _held: held, mode })
    }

    fn try_take_lock(&self, mode: LockMode) -> Result<Option<StoreLock>, StoreError> {
        let held = lock::try_lock(self.open_lock_file()?, mode).map_err(StoreError::io("lock", self.lock_path()))?;
        Ok(held.map(|held| StoreLock { _held: held, mode }))
    }

    /// Opened read-only: `flock` does not need write access, so a user who
    /// may only read the store can still take a shared lock.
    fn open_lock_file(&self) -> Result<File, StoreError> {
        File::open(self.lock_path()).map_err(StoreError::io("open the lock file", self.lock_path()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::store::testutil::temp_store;

    #[test]
    fn shared_locks_coexist() {
        let (_dir, store) = temp_store();
        let other = Store::open(store.root()).unwrap();
        let _a = store.lock_shared().unwrap();
        let b = other.try_lock_shared().unwrap().expect("a second reader is admitted");
        assert_eq!(b.mode(), LockMode::Shared);
        assert!(other.try_lock_exclusive().unwrap().is_none());
    }

    #[test]
    fn exclusive_lock_excludes_readers_and_writers() {
        let (_dir, store) = temp_store();
        let other = Store::open(store.root()).unwrap();
        let held = store.lock_exclusive().unwrap();
        assert!(other.try_lock_shared().unwrap().is_none());
        assert!(other.try_lock_exclusive().unwrap().is_none());
        drop(held);
        assert!(other.try_lock_exclusive().unwrap().is_some());
    }

    #[test]
    fn a_blocked_reader_proceeds_when_the_writer_releases() {
        let (_dir, store) = temp_store();
        let held = store.lock_exclusive().unwrap();
        let (tx, rx) = mpsc::channel();
        let root = store.root().to_path_buf();
        let reader = std::thread::spawn(move || {
            let other = Store::open(&root).unwrap();
            let _lock = other.lock_shared().unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "reader got in while a writer held the lock");
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).expect("reader admitted after release");
        reader.join().unwrap();
    }
}
