//! What is on disk: every blob, unpacked layer, cache entry and `tmp/`
//! leftover, found by listing the store's directories (never by following
//! references), with what each costs.
//!
//! Names that do not fit a directory's rules (a blob file not named by a
//! hex digest, a layer entry that is not a directory named by a diffID, a
//! cache file not named by a key) are kept apart as strays: lookups never
//! read them, fsck reports them, gc leaves them to fsck.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

use super::MaintainError;
use crate::oci::Digest;
use crate::resolve::CacheKey;
use crate::store::{CacheEntry, Store};

/// A blob file whose name is a valid digest.
#[derive(Clone, Debug)]
pub(super) struct BlobFile {
    pub digest: Digest,
    pub path: PathBuf,
    pub size: u64,
}

/// An unpacked layer directory, named by the hex of its diffID.
#[derive(Clone, Debug)]
pub(super) struct LayerDir {
    pub hex: String,
    pub path: PathBuf,
}

/// A cache entry file; `entry` is `Err(reason)` when it cannot be parsed.
#[derive(Clone, Debug)]
pub(super) struct CacheFile {
    pub key: CacheKey,
    pub path: PathBuf,
    pub entry: Result<CacheEntry, String>,
    /// The file's mtime: when it was written or last hit.
    pub last_used: SystemTime,
    pub size: u64,
}

/// Something in `tmp/`.
#[derive(Clone, Debug)]
pub(super) struct TmpEntry {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// A file or directory where only store objects belong, which is not one.
#[derive(Clone, Debug)]
pub(super) struct Stray {
    pub path: PathBuf,
    pub is_dir: bool,
    pub why: &'static str,
}

/// Everything found on disk.
#[derive(Clone, Debug, Default)]
pub(super) struct Inventory {
    pub blobs: Vec<BlobFile>,
    pub layers: Vec<LayerDir>,
    pub cache: Vec<CacheFile>,
    pub tmp: Vec<TmpEntry>,
    pub strays: Vec<Stray>,
}

impl Inventory {
    /// Lists the store. Reads every cache entry (they are small) but no blob.
    pub fn scan(store: &Store) -> Result<Inventory, MaintainError> {
        let mut inv = Inventory::default();
        inv.scan_blobs(&store.oci_dir().join("blobs"))?;
        inv.scan_layers(&store.layers_dir())?;
        inv.scan_cache(&store.cache_dir())?;
        for (path, kind) in list(&store.tmp_dir())? {
            inv.tmp.push(TmpEntry { path, is_dir: kind.is_dir() });
        }
        inv.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        inv.layers.sort_by(|a, b| a.hex.cmp(&b.hex));
        inv.cache.sort_by_key(|c| c.key);
        inv.tmp.sort_by(|a, b| a.path.cmp(&b.path));
        inv.strays.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(inv)
    }

    fn scan_blobs(&mut self, blobs: &Path) -> Result<(), MaintainError> {
        for (alg_dir, kind) in list(blobs)? {
            let alg = name_of(&alg_dir);
            if !kind.is_dir() || !matches!(alg.as_str(), "sha256" | "sha512") {
                let why = "not a digest algorithm directory (sha256 or sha512)";
                self.strays.push(Stray { is_dir: kind.is_dir(), path: alg_dir, why });
                continue;
            }
            for (path, kind) in list(&alg_dir)? {
                let digest = format!("{alg}:{}", name_of(&path)).parse::<Digest>().ok();
                match digest {
                    Some(digest) if kind.is_file() => {
                        let size = fs::symlink_metadata(&path).map_err(MaintainError::io("inspect", &path))?.len();
                        self.blobs.push(BlobFile { digest, path, size });
                    }
                    Some(_) => self.strays.push(Stray { is_dir: kind.is_dir(), path, why: "not a regular file" }),
                    None => self.strays.push(Stray {
                        is_dir: kind.is_dir(),
                        path,
                        why: "its name is not a digest, so no lookup ever reads it",
                    }),
                }
            }
        }
        Ok(())
    }

    fn scan_layers(&mut self, layers: &Path) -> Result<(), MaintainError> {
        for (path, kind) in list(layers)? {
            let hex = name_of(&path);
            let named = matches!(hex.len(), 64 | 128) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if named && kind.is_dir() {
                self.layers.push(LayerDir { hex, path });
            } else {
                let why = if named {
                    "not a directory"
                } else {
                    "its name is not a diffID, so it is not a complete unpacked layer"
                };
                self.strays.push(Stray { is_dir: kind.is_dir(), path, why });
            }
        }
        Ok(())
    }

    fn scan_cache(&mut self, cache: &Path) -> Result<(), MaintainError> {
        for (path, kind) in list(cache)? {
            let key = name_of(&path).parse::<CacheKey>().ok();
            let Some(key) = key.filter(|_| kind.is_file()) else {
                let why = "not a cache entry (the name must be a 64-digit cache key)";
                self.strays.push(Stray { is_dir: kind.is_dir(), path, why });
                continue;
            };
            let meta = fs::symlink_metadata(&path).map_err(MaintainError::io("inspect", &path))?;
            let bytes = fs::read(&path).map_err(MaintainError::io("read cache entry", &path))?;
            let entry = serde_json::from_slice::<CacheEntry>(&bytes).map_err(|e| e.to_string());
            let last_used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            self.cache.push(CacheFile { key, path, entry, last_used, size: meta.len() });
        }
        Ok(())
    }

    /// The blob `digest`, if its file is there.
    pub fn blob(&self, digest: &Digest) -> Option<&BlobFile> {
        self.blobs.binary_search_by(|b| b.digest.cmp(digest)).ok().map(|i| &self.blobs[i])
    }

    /// The unpacked layer with diffID hex `hex`, if it is there.
    pub fn layer(&self, hex: &str) -> Option<&LayerDir> {
        self.layers.binary_search_by(|l| l.hex.as_str().cmp(hex)).ok().map(|i| &self.layers[i])
    }
}

/// The entries of `dir` with their types (symlinks not followed); an
/// absent directory has none.
pub(super) fn list(dir: &Path) -> Result<Vec<(PathBuf, fs::FileType)>, MaintainError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(MaintainError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(MaintainError::io("list", dir))?;
        let kind = entry.file_type().map_err(MaintainError::io("inspect", entry.path()))?;
        out.push((entry.path(), kind));
    }
    Ok(out)
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The bytes a file or tree holds: the sizes of its regular files, each
/// inode counted once, symlinks not followed. Directories and symlinks
/// themselves count nothing, so the figure is the same on any filesystem.
pub(super) fn tree_size(path: &Path) -> Result<u64, MaintainError> {
    let mut seen = HashSet::new();
    tree_size_into(path, &mut seen)
}

fn tree_size_into(path: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64, MaintainError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(MaintainError::io("inspect", path)(e)),
    };
    if meta.is_file() {
        let first = meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino()));
        return Ok(if first { meta.len() } else { 0 });
    }
    if !meta.is_dir() {
        return Ok(0);
    }
    let mut total = 0;
    for (child, _) in list(path)? {
        total += tree_size_into(&child, seen)?;
    }
    Ok(total)
}

/// [`tree_size`] of each path, in parallel, in the same order.
pub(super) fn tree_sizes(paths: &[&Path]) -> Result<Vec<u64>, MaintainError> {
    paths.par_iter().map(|p| tree_size(p)).collect()
}
