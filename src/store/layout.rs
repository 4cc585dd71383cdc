//! Where things live under the store root, how a new store is laid out, how
//! an existing one is recognised, and which root is used by default.
//!
//! ```text
//! oci/oci-layout        {"imageLayoutVersion":"1.0.0"}, written last: its presence marks a complete store
//! oci/index.json        OCI image index; tags are manifests annotated with org.opencontainers.image.ref.name
//! oci/blobs/sha256/<hex> content-addressed blobs
//! layers/<diffid-hex>/  unpacked layers, complete once renamed in from tmp/
//! cache/<key>           cache key → JSON CacheEntry
//! cache-mounts/<id>/    `RUN --mount=type=cache` directories, kept between builds (made on first use)
//! containers/<id>/      container state (owned by the runtime)
//! projects/<name>.json  what a project owns (owned by apply)
//! tmp/                  staging for everything above
//! lock                  the store-wide flock
//! config.toml           optional: defaults for new containers ([run] userns), read by the runtime
//! ```
//!
//! # Who may look inside
//!
//! A store holds secrets (containers' environment variables in their
//! config, their writable layers), so no other local user may read or list
//! anything in it, as with podman's 0700 storage and Docker's 0710. The
//! root and `containers/` are `0711`: others may pass through but not list
//! them, which a `--userns=auto` container's root (an unprivileged host id)
//! needs to reach its own directory; that directory is `0710` with the
//! container's group, every other container's `0700`, and every other
//! directory of the store `0700`, the lock `0600`. Each is created with its
//! mode ([`private_dir`]); a store made before this rule is tightened when
//! it is opened ([`Store::open`] and the read-only open alike, the latter
//! only where this user owns it).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageIndexBuilder, OciLayout};

use super::atomic::{atomic_write, sync_dir};
use super::{Store, StoreError};
use crate::oci::Digest;
use crate::sys::lock::{self, LockMode};

/// The OCI image layout version berth writes and accepts.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// The directories of a store, relative to its root, parents before children.
const DIRS: &[&str] =
    &["oci", "oci/blobs", "oci/blobs/sha256", "layers", "cache", "containers", "projects", "volumes", "tmp"];

/// The mode of the store root and of `containers/`: others may pass
/// through to a `--userns=auto` container's directory, never list.
pub const PASS_THROUGH_MODE: u32 = 0o711;

/// The mode of every other directory of the store.
pub const PRIVATE_MODE: u32 = 0o700;

/// The mode a directory `name` (relative to the root; "" for the root) of
/// the store has.
fn dir_mode(name: &str) -> u32 {
    if name.is_empty() || name == "containers" { PASS_THROUGH_MODE } else { PRIVATE_MODE }
}

/// Creates the directory `path` with `mode` (less the umask) from the
/// start, so that it is never open to others, not even for a moment.
/// Missing parents are created with the default mode.
pub fn private_dir(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    fs::DirBuilder::new().mode(mode).create(path)
}

/// Takes from `path`'s mode the permissions for group and others that
/// `mode` does not give (never adds any). Returns whether it changed.
fn tighten(path: &Path, mode: u32) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let current = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    let wanted = current & !(0o077 & !mode);
    if wanted == current {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(wanted))?;
    Ok(true)
}

/// Top-level names a store (or a half-initialised one) may hold;
/// `config.toml` holds the store's run defaults (`runtime::defaults`), and
/// may be written before the store's first use.
const TOP_LEVEL: &[&str] = &[
    "oci",
    "layers",
    "cache",
    "cache-mounts",
    "containers",
    "projects",
    "volumes",
    "tmp",
    "lock",
    "userns",
    "config.toml",
];

/// The store root used when neither `--root` nor `BERTH_ROOT` is given:
/// `/var/lib/berth` for euid 0, else `$XDG_DATA_HOME/berth`, else
/// `$HOME/.local/share/berth`. Relative or empty values are ignored, as the
/// XDG base directory spec asks.
pub fn default_root(euid: u32, xdg_data_home: Option<&Path>, home: Option<&Path>) -> Result<PathBuf, StoreError> {
    if euid == 0 {
        return Ok(PathBuf::from("/var/lib/berth"));
    }
    let usable = |p: Option<&Path>| p.filter(|p| p.is_absolute()).map(Path::to_path_buf);
    if let Some(xdg) = usable(xdg_data_home) {
        return Ok(xdg.join("berth"));
    }
    usable(home).map(|h| h.join(".local/share/berth")).ok_or(StoreError::NoDefaultRoot)
}

impl Store {
    /// `oci/`: the OCI image layout.
    pub fn oci_dir(&self) -> PathBuf {
        self.root.join("oci")
    }

    /// `oci/index.json`: the image index holding the tags.
    pub fn index_path(&self) -> PathBuf {
        self.root.join("oci/index.json")
    }

    fn layout_marker_path(&self) -> PathBuf {
        self.root.join("oci/oci-layout")
    }

    /// Where the blob with digest `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("oci/blobs").join(digest.algorithm().name()).join(digest.hex())
    }

    /// `layers/`: unpacked layers.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// `cache/`: the cache index.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// `cache-mounts/`: the directories of Dockerfile `RUN
    /// --mount=type=cache` mounts, one per cache id, kept between builds
    /// and never part of a layer; made on first use.
    pub fn cache_mounts_dir(&self) -> PathBuf {
        self.root.join("cache-mounts")
    }

    /// `containers/`: one directory per container, owned by the runtime.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// `projects/`: one `<name>.json` per project, owned by apply.
    pub fn projects_dir(&self) -> PathBuf {
        self.root.join("projects")
    }

    /// `tmp/`: staging, on the same filesystem as everything else.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// `lock`: the store-wide flock.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Makes `self.root` a valid store: accepts a complete one as it is,
    /// finishes a new, empty or half-created one, refuses anything else.
    pub(super) fn open_layout(&self) -> Result<(), StoreError> {
        match fs::metadata(&self.root) {
            Ok(meta) if !meta.is_dir() => return Err(StoreError::RootNotDirectory { root: self.root.clone() }),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("inspect the store root", &self.root)(e)),
        }
        if self.read_layout_marker()? {
            self.make_private()?;
            return self.ensure_dirs();
        }
        self.initialize()
    }

    /// For read-only use: `Ok(true)` when a complete store is at the root,
    /// `Ok(false)` when there is none yet (nothing is created), an error when
    /// the root holds something that is not a store.
    pub(super) fn probe_layout(&self) -> Result<bool, StoreError> {
        match fs::metadata(&self.root) {
            Ok(meta) if !meta.is_dir() => return Err(StoreError::RootNotDirectory { root: self.root.clone() }),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io("inspect the store root", &self.root)(e)),
        }
        if self.read_layout_marker()? {
            // Only the store's owner can tighten it; anyone else just reads.
            use std::os::unix::fs::MetadataExt;
            if fs::metadata(&self.root).is_ok_and(|m| m.uid() == crate::sys::euid()) {
                self.make_private()?;
            }
            return Ok(true);
        }
        self.refuse_foreign_entries()?;
        Ok(false)
    }

    /// Creates the layout under an exclusive lock, so that concurrent first
    /// opens serialise: the second one finds the marker and accepts it.
    fn initialize(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let not_writable = |source| StoreError::RootNotWritable { root: self.root.clone(), source };
        match private_dir(&self.root, dir_mode("")) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(not_writable(e)),
            _ => {}
        }
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.lock_path())
            .map_err(not_writable)?;
        let _held = lock::lock(file, LockMode::Exclusive).map_err(StoreError::io("lock", self.lock_path()))?;
        if self.read_layout_marker()? {
            return self.ensure_dirs();
        }
        self.refuse_foreign_entries()?;
        self.ensure_dirs()?;
        if !self.index_path().exists() {
            atomic_write(&self.tmp_dir(), &self.index_path(), &encode_index(&empty_index(), &self.index_path())?)?;
        }
        let marker = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
        atomic_write(&self.tmp_dir(), &self.layout_marker_path(), marker.as_bytes())?;
        sync_dir(&self.root)
    }

    /// `Ok(true)` if `oci/oci-layout` exists and declares our version,
    /// `Ok(false)` if it does not exist.
    fn read_layout_marker(&self) -> Result<bool, StoreError> {
        let path = self.layout_marker_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        let layout: OciLayout = serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::BadLayoutMarker { path: path.clone(), source })?;
        if layout.image_layout_version() != LAYOUT_VERSION {
            return Err(StoreError::LayoutVersion { path, found: layout.image_layout_version().clone() });
        }
        Ok(true)
    }

    /// Refuses to turn a directory holding other things into a store.
    fn refuse_foreign_entries(&self) -> Result<(), StoreError> {
        let entries = fs::read_dir(&self.root).map_err(StoreError::io("list", &self.root))?;
        for entry in entries {
            let name = entry.map_err(StoreError::io("list", &self.root))?.file_name();
            if !TOP_LEVEL.iter().any(|known| name == *known) {
                return Err(StoreError::NotAStore {
                    root: self.root.clone(),
                    entry: name.to_string_lossy().into_owned(),
                });
            }
        }
        Ok(())
    }

    /// Tightens a store made before stores were private (see the module
    /// page): the root, each top-level directory and, when `containers/` was
    /// open, each container's directory.
    fn make_private(&self) -> Result<(), StoreError> {
        let fix = |path: &Path, mode: u32| match tighten(path, mode) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            other => other.map_err(StoreError::io("make private", path)),
        };
        fix(&self.root, dir_mode(""))?;
        fix(&self.lock_path(), 0o600)?;
        let mut containers_were_open = false;
        for name in TOP_LEVEL.iter().filter(|n| **n != "lock") {
            let changed = fix(&self.root.join(name), dir_mode(name))?;
            containers_were_open |= changed && *name == "containers";
        }
        if containers_were_open {
            let dir = self.containers_dir();
            for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
                let path = entry.map_err(StoreError::io("list", &dir))?.path();
                // A `--userns=auto` container's group may pass through.
                fix(&path, 0o710)?;
            }
        }
        Ok(())
    }

    fn ensure_dirs(&self) -> Result<(), StoreError> {
        for dir in DIRS {
            let path = self.root.join(dir);
            match private_dir(&path, dir_mode(dir)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) if is_permission(&e) => {
                    return Err(StoreError::RootNotWritable { root: self.root.clone(), source: e });
                }
                Err(e) => return Err(StoreError::io("create directory", &path)(e)),
            }
        }
        Ok(())
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem)
}

/// An index with no manifests.
pub(super) fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .manifests(Vec::new())
        .build()
        .expect("schema version and manifests are the only required fields, both set")
}

/// `index` as pretty JSON, ready for [`atomic_write`].
pub(super) fn encode_index(index: &ImageIndex, path: &Path) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(index).map_err(|source| StoreError::Encode {
        what: "the image index",
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::temp_store;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_store_is_private_and_an_open_one_is_tightened_on_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        Store::open(&root).unwrap();
        // The umask can only take bits away: never more than these.
        assert_eq!(mode(&root) & !PASS_THROUGH_MODE, 0);
        assert_eq!(mode(&root.join("containers")) & !PASS_THROUGH_MODE, 0);
        assert_eq!(mode(&root.join("lock")) & 0o077, 0);
        for d in DIRS.iter().filter(|d| **d != "containers") {
            assert_eq!(mode(&root.join(d)) & 0o077, 0, "{d}");
        }

        // A store of an older berth: everything open to everyone.
        let old = root.join("containers/old");
        fs::create_dir(&old).unwrap();
        for path in [root.clone(), root.join("oci"), root.join("containers"), old.clone(), root.join("lock")] {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Store::open_existing(&root).unwrap().unwrap();
        assert_eq!(mode(&root), 0o711);
        assert_eq!(mode(&root.join("oci")), 0o700);
        assert_eq!(mode(&root.join("containers")), 0o711);
        assert_eq!(mode(&old), 0o710);
        // Only others' bits are taken away; the owner's stay.
        assert_eq!(mode(&root.join("lock")), 0o700);
    }

    #[test]
    fn open_creates_the_layout_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root).unwrap();
        for d in DIRS {
            assert!(root.join(d).is_dir(), "{d}");
        }
        assert!(root.join("lock").is_file());
        let layout = OciLayout::from_file(root.join("oci/oci-layout")).unwrap();
        assert_eq!(layout.image_layout_version(), LAYOUT_VERSION);
        let index = ImageIndex::from_file(root.join("oci/index.json")).unwrap();
        assert!(index.manifests().is_empty());
        assert_eq!(store.root(), root);
        Store::open(&root).unwrap();
    }

    #[test]
    fn open_finishes_a_half_created_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("oci/blobs")).unwrap();
        fs::write(dir.path().join("lock"), b"").unwrap();
        Store::open(dir.path()).unwrap();
        assert!(dir.path().join("oci/oci-layout").is_file());
    }

    #[test]
    fn concurrent_first_opens_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| Store::open(&root).map(|_| ()))).collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        });
    }

    #[test]
    fn a_file_as_root_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("afile");
        fs::write(&root, b"hello").unwrap();
        let err = Store::open(&root).unwrap_err();
        assert!(matches!(err, StoreError::RootNotDirectory { .. }), "{err:?}");
        assert!(err.to_string().contains(&*root.to_string_lossy()), "{err}");
    }

    #[test]
    fn a_wrong_layout_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("oci")).unwrap();
        let marker = dir.path().join("oci/oci-layout");
        fs::write(&marker, br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(&err, StoreError::LayoutVersion { found, .. } if found == "2.0.0"), "{err:?}");
        assert!(err.to_string().contains(&*marker.to_string_lossy()), "{err}");

        fs::write(&marker, b"not json").unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::BadLayoutMarker { .. }), "{err:?}");
    }

    #[test]
    fn a_foreign_directory_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(&err, StoreError::NotAStore { entry, .. } if entry == "notes.txt"), "{err:?}");
        assert!(!dir.path().join("oci").exists());
    }

    #[test]
    fn open_recreates_a_removed_tmp_dir() {
        let (_dir, store) = temp_store();
        fs::remove_dir(store.tmp_dir()).unwrap();
        let store = Store::open(store.root()).unwrap();
        assert!(store.tmp_dir().is_dir());
    }

    #[test]
    fn default_root_for_root_user_and_others() {
        let xdg = Path::new("/home/u/.data");
        let home = Path::new("/home/u");
        assert_eq!(default_root(0, Some(xdg), Some(home)).unwrap(), Path::new("/var/lib/berth"));
        assert_eq!(default_root(1000, Some(xdg), Some(home)).unwrap(), Path::new("/home/u/.data/berth"));
        assert_eq!(default_root(1000, None, Some(home)).unwrap(), Path::new("/home/u/.local/share/berth"));
        assert_eq!(
            default_root(1000, Some(Path::new("relative")), Some(home)).unwrap(),
            Path::new("/home/u/.local/share/berth")
        );
        assert_eq!(
            default_root(1000, Some(Path::new("")), Some(home)).unwrap(),
            Path::new("/home/u/.local/share/berth")
        );
        assert!(matches!(default_root(1000, None, None), Err(StoreError::NoDefaultRoot)));
    }
}
