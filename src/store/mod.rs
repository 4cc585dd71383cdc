//! The on-disk store: images, layers, the build cache, containers and
//! projects, all under one root directory.
//!
//! # Layout
//!
//! `oci/` is a standard OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) holding every manifest, config and layer blob; tags are
//! the index's manifests annotated with `org.opencontainers.image.ref.name`.
//! `layers/<diffid>/` holds unpacked layers, `cache/<key>` the cache index,
//! `containers/` and `projects/` the runtime's and apply's state, `tmp/` the
//! staging area and `lock` the store-wide lock. `layout.rs` has the details;
//! [`default_root`] picks the root when the user names none.
//!
//! # Crash safety
//!
//! Nothing half-written is ever visible: every file is written into `tmp/`,
//! fsynced and renamed into place ([`atomic_write`], [`BlobWriter`]), and
//! every unpacked layer is built in a [`StagingDir`] and renamed into
//! `layers/` when complete. Lookups never read `tmp/`, so what a crash leaves
//! there is only garbage ([`Store::sweep_tmp`]).
//!
//! # Concurrency
//!
//! There is no daemon; several `berth` processes may use one store. Readers
//! hold [`Store::lock_shared`], writers [`Store::lock_exclusive`]. The
//! methods here do not lock by themselves: the caller takes the lock once
//! around a whole command. Creating the store on first use locks internally,
//! so concurrent first opens all succeed.
//!
//! # Roots
//!
//! Everything is relative to the root given to [`Store::open`]; nothing here
//! reads the environment. The CLI computes the root from `--root`,
//! `BERTH_ROOT` and [`default_root`].

mod archive_error;
#[cfg(test)]
mod archive_tests;
pub mod atomic;
mod blobs;
mod cache;
mod error;
mod image;
mod image_error;
#[cfg(test)]
mod image_tests;
mod images;
mod import;
mod layers;
pub mod layout;
mod load;
mod lock;
mod refs;
mod save;
mod staged;
pub mod time;
mod unpack;
pub mod unwritable;

use std::path::{Path, PathBuf};

pub use archive_error::ArchiveError;
pub use atomic::atomic_write;
pub use blobs::BlobWriter;
pub use cache::{CacheEntry, LayerRecord};
pub use error::StoreError;
pub use image::{Image, MIN_ID_PREFIX};
pub use image_error::ImageError;
pub use images::ImageSummary;
pub use import::ImportedImage;
pub use layers::StagingDir;
pub use layout::{LAYOUT_VERSION, default_root};
pub use load::{Loaded, LoadedImage, StagedArchive};
pub use lock::StoreLock;
pub use refs::{Tag, normalize_tag_name};
pub use save::SaveRequest;
pub use staged::StagedBlob;
pub use time::rfc3339;

/// A berth store rooted at one directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating it if `root` does not exist or is
    /// an empty directory. Refuses a root that is not a directory, a
    /// directory holding other things, or a store of another layout version,
    /// with an error naming the path.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store { root: root.to_path_buf() };
        store.open_layout()?;
        Ok(store)
    }

    /// Opens the store at `root` only if one is there, creating nothing:
    /// for verbs that only read, such as `plan` and `images`.
    pub fn open_existing(root: &Path) -> Result<Option<Store>, StoreError> {
        let store = Store { root: root.to_path_buf() };
        Ok(store.probe_layout()?.then_some(store))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` to `dest` (a path inside the store, such as a project
    /// file) atomically, staged in `tmp/`.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        atomic_write(&self.tmp_dir(), dest, bytes)
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::Store;

    /// A fresh store in a temp dir; keep the `TempDir` alive while using it.
    pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(&dir.path().join("store")).expect("open a fresh store");
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use oci_spec::image::{Descriptor, MediaType};

    use super::testutil::temp_store;
    use super::*;
    use crate::oci::Digest;
    use crate::resolve::KeyHasher;

    /// A writer that died mid-way leaves files in `tmp/` named like the
    /// things they would have become; none of them is ever seen as a blob,
    /// tag, cache entry or layer, and a sweep removes them.
    #[test]
    fn crash_leftovers_in_tmp_are_never_visible() {
        let (_dir, store) = temp_store();
        let digest = Digest::sha256(b"half a blob");
        let key = KeyHasher::new("run").finish();
        fs::write(store.tmp_dir().join(digest.hex()), b"half a").unwrap();
        fs::write(store.tmp_dir().join(key.to_string()), b"{\"layers\":[]").unwrap();
        fs::write(store.tmp_dir().join("index.json"), b"{\"schemaVersion\":2,\"manifests\":[{").unwrap();
        fs::create_dir(store.tmp_dir().join("stage-1-0-0")).unwrap();
        let abandoned = store.blob_writer().unwrap();
        std::mem::forget(abandoned); // a crash runs no destructors

        let store = Store::open(store.root()).unwrap();
        assert!(!store.has_blob(&digest));
        assert!(matches!(store.read_blob(&digest), Err(StoreError::BlobMissing { .. })));
        assert!(store.tags().unwrap().is_empty());
        assert!(store.images().unwrap().is_empty());
        assert_eq!(store.cache_get(&key).unwrap(), None);
        assert!(!store.has_layer(&digest));
        assert_eq!(fs::read_dir(store.oci_dir().join("blobs/sha256")).unwrap().count(), 0);

        let _held = store.lock_exclusive().unwrap();
        assert_eq!(store.sweep_tmp().unwrap(), 5);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn tags_survive_reopening() {
        let (_dir, store) = temp_store();
        let digest = store.put_blob(b"{}").unwrap();
        store.set_tag("app", Descriptor::new(MediaType::ImageManifest, 2, &digest)).unwrap();
        let again = Store::open(store.root()).unwrap();
        assert_eq!(again.tags().unwrap().len(), 1);
    }

    #[test]
    fn write_atomic_lands_inside_the_store() {
        let (_dir, store) = temp_store();
        let dest = store.projects_dir().join("demo.json");
        store.write_atomic(&dest, b"{}").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"{}");
    }
}
