//! Unpacked layers in `layers/<diffid-hex>/`, the overlay's lower
//! directories, and the staging directories they are built in.
//!
//! A layer is unpacked into a [`StagingDir`] under `tmp/`, then
//! [`Store::commit_layer`] fsyncs the tree and renames it into `layers/` in
//! one step. A directory under `layers/` is therefore always complete; a
//! crash leaves at most a staging directory in `tmp/`, which no lookup reads
//! and [`Store::sweep_tmp`] removes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic::{sync_dir, sync_tree, unique_name};
use super::{Store, StoreError};
use crate::oci::Digest;

/// A directory in `tmp/` that is removed when dropped, unless it was moved
/// into place by [`Store::commit_layer`] or kept with [`keep`](Self::keep).
#[derive(Debug)]
pub struct StagingDir {
    path: PathBuf,
    armed: bool,
}

impl StagingDir {
    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory in place after drop and returns its path; moving
    /// it somewhere (with `rename`, on the store's filesystem) is then the
    /// caller's job.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a leftover staging dir is harmless garbage in tmp/.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

impl Store {
    /// Where the unpacked layer with uncompressed digest `diff_id` lives.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// Whether the layer `diff_id` is unpacked in the store.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// A new empty directory in `tmp/` to build something in.
    pub fn staging_dir(&self) -> Result<StagingDir, StoreError> {
        let tmp = self.tmp_dir();
        loop {
            let path = tmp.join(unique_name("stage"));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(StagingDir { path, armed: true }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io("create a staging directory in", &tmp)(e)),
            }
        }
    }

    /// Makes `staging` the unpacked layer `diff_id`: fsyncs its tree and
    /// renames it to [`layer_dir`](Self::layer_dir). If the layer is already
    /// there (present before, or another writer won a race), `staging` is
    /// discarded. Returns the layer's directory.
    pub fn commit_layer(&self, staging: StagingDir, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let dest = self.layer_dir(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        sync_tree(staging.path())?;
        match fs::rename(staging.path(), &dest) {
            Ok(()) => {
                staging.keep();
                sync_dir(&self.layers_dir())?;
                Ok(dest)
            }
            Err(_) if dest.is_dir() => Ok(dest),
            Err(e) => Err(StoreError::io("move the staged layer into place at", dest)(e)),
        }
    }

    /// Removes everything in `tmp/`: the remains of writers that crashed.
    /// Only safe while holding [`Store::lock_exclusive`], which guarantees
    /// that no other writer is using `tmp/`. Returns how many entries went.
    pub fn sweep_tmp(&self) -> Result<usize, StoreError> {
        let tmp = self.tmp_dir();
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(StoreError::io("list", &tmp))? {
            let entry = entry.map_err(StoreError::io("list", &tmp))?;
            let path = entry.path();
            let is_dir = entry.file_type().map_err(StoreError::io("inspect", &path))?.is_dir();
            let result = if is_dir { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            result.map_err(StoreError::io("remove leftover", &path))?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::temp_store;

    fn staged_layer(store: &Store, content: &[u8]) -> StagingDir {
        let staging = store.staging_dir().unwrap();
        fs::create_dir(staging.path().join("etc")).unwrap();
        fs::write(staging.path().join("etc/hostname"), content).unwrap();
        std::os::unix::fs::symlink("hostname", staging.path().join("etc/link")).unwrap();
        staging
    }

    #[test]
    fn committed_layer_is_in_place_and_staging_is_gone() {
        let (_dir, store) = temp_store();
        let diff_id = Digest::sha256(b"layer tar");
        assert!(!store.has_layer(&diff_id));
        let dir = store.commit_layer(staged_layer(&store, b"box"), &diff_id).unwrap();
        assert_eq!(dir, store.layer_dir(&diff_id));
        assert!(store.has_layer(&diff_id));
        assert_eq!(fs::read(dir.join("etc/hostname")).unwrap(), b"box");
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn committing_an_existing_layer_keeps_the_first() {
        let (_dir, store) = temp_store();
        let diff_id = Digest::sha256(b"layer tar");
        store.commit_layer(staged_layer(&store, b"first"), &diff_id).unwrap();
        let dir = store.commit_layer(staged_layer(&store, b"second"), &diff_id).unwrap();
        assert_eq!(fs::read(dir.join("etc/hostname")).unwrap(), b"first");
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_staging_dir_is_removed() {
        let (_dir, store) = temp_store();
        let staging = staged_layer(&store, b"x");
        let path = staging.path().to_path_buf();
        drop(staging);
        assert!(!path.exists());
    }
}
