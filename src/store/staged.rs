//! Staged blobs: complete, hashed blobs waiting in `tmp/` until whatever
//! they belong to has been checked (`berth load` stages every blob of an
//! archive and commits none until all of them pass).
//!
//! Committing links the temp file to its digest's path, so a blob can be
//! committed from several places (two images sharing a layer) and the temp
//! file is still removed when the [`StagedBlob`] is dropped. A staged blob
//! that is never committed leaves nothing behind.

use std::fs::{self, File};
use std::io;

use super::atomic::{TempFile, sync_parent};
use super::{Store, StoreError};
use crate::oci::Digest;

/// A blob written into `tmp/` and hashed, not yet in `oci/blobs/`.
#[derive(Debug)]
pub struct StagedBlob {
    store: Store,
    tmp: TempFile,
    digest: Digest,
    size: u64,
}

impl StagedBlob {
    pub(super) fn new(store: Store, tmp: TempFile, digest: Digest, size: u64) -> StagedBlob {
        StagedBlob { store, tmp, digest, size }
    }

    /// The sha256 of its content.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Opens the staged content for reading.
    pub fn open(&self) -> Result<File, StoreError> {
        File::open(&self.tmp.path).map_err(StoreError::io("open staged blob", &self.tmp.path))
    }

    /// Puts the blob in the store under its digest (fsynced first); a no-op
    /// if the store has it already.
    pub fn commit(&self) -> Result<(), StoreError> {
        let dest = self.store.blob_path(&self.digest);
        if self.store.has_blob(&self.digest) {
            return Ok(());
        }
        self.tmp.file.sync_all().map_err(StoreError::io("fsync staged blob", &self.tmp.path))?;
        match fs::hard_link(&self.tmp.path, &dest) {
            Ok(()) => sync_parent(&dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::io("move a staged blob into place at", dest)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use crate::store::testutil::temp_store;

    #[test]
    fn staged_blobs_are_invisible_until_committed_and_leave_no_temp() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"staged").unwrap();
        let staged = w.stage().unwrap();
        let digest = staged.digest().clone();
        assert_eq!(staged.size(), 6);
        assert!(!store.has_blob(&digest));
        let mut back = String::new();
        staged.open().unwrap().read_to_string(&mut back).unwrap();
        assert_eq!(back, "staged");
        staged.commit().unwrap();
        staged.commit().unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"staged");
        drop(staged);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(store.read_blob(&digest).unwrap(), b"staged");
    }

    #[test]
    fn a_dropped_staged_blob_leaves_nothing() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"never").unwrap();
        let digest = w.stage().unwrap().digest().clone();
        assert!(!store.has_blob(&digest));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
