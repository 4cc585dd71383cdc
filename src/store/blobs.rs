//! Content-addressed blobs in `oci/blobs/<algorithm>/<hex>`.
//!
//! A blob is written into `tmp/`, hashed while written, checked against the
//! digest the caller expects, fsynced, and only then renamed to its digest's
//! path: a file under `blobs/` is always complete and always matches its
//! name. Writing a blob that already exists is a no-op.

use std::fs;
use std::io::{self, Write};

use sha2::Digest as _;

use super::atomic::{TempFile, atomic_write};
use super::unwritable::mark_write_error;
use super::{Store, StoreError};
use crate::oci::Digest;

impl Store {
    /// Whether the blob `digest` is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes` as a sha256 blob and returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::sha256(bytes);
        if !self.has_blob(&digest) {
            atomic_write(&self.tmp_dir(), &self.blob_path(&digest), bytes)?;
        }
        Ok(digest)
    }

    /// Starts streaming a blob of unknown digest into `tmp/`; see [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        Ok(BlobWriter {
            store: self.clone(),
            tmp: TempFile::create(&self.tmp_dir(), "blob")?,
            hasher: sha2::Sha256::new(),
            size: 0,
        })
    }

    /// The blob `digest`'s bytes.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobMissing { digest: digest.clone(), path },
            _ => StoreError::io("read blob", path)(e),
        })
    }
}

/// A blob being written: bytes go to a temp file in `tmp/` and through
/// sha256. [`commit`](Self::commit) moves it into place; dropping the writer
/// without committing removes the temp file. Each `write` is a system call:
/// wrap the writer in a `std::io::BufWriter` when writing small pieces.
#[derive(Debug)]
pub struct BlobWriter {
    store: Store,
    tmp: TempFile,
    hasher: sha2::Sha256,
    size: u64,
}

impl BlobWriter {
    /// The digest and size of what was written so far, without finishing:
    /// lets a caller verify several blobs before committing any of them.
    pub fn written(&self) -> (Digest, u64) {
        (Digest::from_sha256(self.hasher.clone().finalize().into()), self.size)
    }

    /// Finishes the blob. If `expected` is given and the content's digest
    /// differs, nothing is stored and the temp file is removed. Otherwise the
    /// blob is fsynced and renamed to its digest's path (or dropped if an
    /// identical blob is already there). Returns the digest and the size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        self.tmp.file.flush().map_err(StoreError::write("write blob temp file", &self.tmp.path))?;
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(StoreError::DigestMismatch { expected: expected.clone(), actual: digest });
        }
        if !self.store.has_blob(&digest) {
            self.tmp.persist(&self.store.blob_path(&digest))?;
        }
        Ok((digest, self.size))
    }
}

impl BlobWriter {
    /// Finishes writing and hashing but does not commit: the blob stays in
    /// `tmp/` as a [`StagedBlob`](super::StagedBlob), to be committed once
    /// whatever it belongs to has been checked.
    pub fn stage(mut self) -> Result<super::StagedBlob, StoreError> {
        self.tmp.file.flush().map_err(StoreError::write("write blob temp file", &self.tmp.path))?;
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        Ok(super::StagedBlob::new(self.store, self.tmp, digest, self.size))
    }
}

/// Its errors name the store's filesystem when it is full, over quota,
/// read-only or failing (see `store::unwritable`), whoever reports them.
impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.file.write(buf).map_err(|e| mark_write_error("write blob", &self.tmp.path, e))?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.file.flush().map_err(|e| mark_write_error("write blob", &self.tmp.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::temp_store;

    fn entries(dir: &std::path::Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn put_and_read_round_trip() {
        let (_dir, store) = temp_store();
        let digest = store.put_blob(b"hello").unwrap();
        assert_eq!(digest, Digest::sha256(b"hello"));
        assert!(store.has_blob(&digest));
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
        assert_eq!(store.put_blob(b"hello").unwrap(), digest);
        assert_eq!(entries(&store.tmp_dir()), 0);
    }

    #[test]
    fn reading_a_missing_blob_names_the_digest() {
        let (_dir, store) = temp_store();
        let digest = Digest::sha256(b"absent");
        let err = store.read_blob(&digest).unwrap_err();
        assert!(matches!(err, StoreError::BlobMissing { .. }));
        assert!(err.to_string().contains(&digest.to_string()), "{err}");
    }

    #[test]
    fn writer_streams_and_verifies() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"hel").unwrap();
        w.write_all(b"lo").unwrap();
        assert_eq!(w.written(), (Digest::sha256(b"hello"), 5));
        let (digest, size) = w.commit(Some(&Digest::sha256(b"hello"))).unwrap();
        assert_eq!((digest.clone(), size), (Digest::sha256(b"hello"), 5));
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
        assert_eq!(entries(&store.tmp_dir()), 0);
    }

    #[test]
    fn writer_with_wrong_digest_stores_nothing() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"tampered").unwrap();
        let expected = Digest::sha256(b"original");
        let err = w.commit(Some(&expected)).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains(&expected.to_string()), "{err}");
        assert_eq!(entries(&store.tmp_dir()), 0);
        assert_eq!(entries(&store.oci_dir().join("blobs/sha256")), 0);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        assert_eq!(entries(&store.tmp_dir()), 1);
        drop(w);
        assert_eq!(entries(&store.tmp_dir()), 0);
        assert_eq!(entries(&store.oci_dir().join("blobs/sha256")), 0);
    }
}
