//! The walk: which entries a copy source holds, read and hashed in parallel.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{DirEntry, WalkBuilder, WalkState};

use super::{Body, Entry, IGNORE_FILE, Root, TreeError};
use crate::manifest::LOCK_FILE;

/// Walks from the project root down to and through `root.abs_src`, honouring
/// `.berthignore` files, and returns `src`'s entries in no particular order.
///
/// The walker runs on as many threads as the current rayon pool has, so a
/// caller (or a test) that installs a pool chooses the parallelism.
pub(super) fn collect(root: &Root) -> Result<Vec<Entry>, TreeError> {
    let entries = Mutex::new(Vec::new());
    let failure = Mutex::new(None);
    builder(root).build_parallel().run(|| {
        Box::new(|found| {
            let entry = match found {
                Ok(dent) => entry(root, &dent),
                Err(err) => {
                    let (path, source) = split_error(root, err);
                    Err(TreeError::Walk { path, source })
                }
            };
            match entry {
                Ok(Some(entry)) => lock(&entries).push(entry),
                Ok(None) => {}
                Err(err) => {
                    lock(&failure).get_or_insert(err);
                    return WalkState::Quit;
                }
            }
            WalkState::Continue
        })
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(err) => Err(err),
        None => Ok(without_emptied_dirs(root, entries.into_inner().unwrap_or_else(|p| p.into_inner()))),
    }
}

/// Leaves out the directories `.dockerignore` ignores that were walked only
/// because an exception (`!…`) might let something under them back in, and
/// nothing was: Docker sends such a directory only with what is kept in it.
fn without_emptied_dirs(root: &Root, entries: Vec<Entry>) -> Vec<Entry> {
    let Some(ignore) = root.docker.as_deref().filter(|i| i.has_exceptions()) else { return entries };
    let base = root.abs_src.strip_prefix(&root.walk_root).unwrap_or(Path::new("")).to_owned();
    let ignored = |e: &Entry| {
        !e.path.is_empty() && ignore.matches(&base.join(std::ffi::OsStr::from_bytes(&e.path)).to_string_lossy())
    };
    // Only directories can be ignored here (the walk drops ignored files and
    // links); one stays when an entry that is not ignored lies below it.
    let mut kept: Vec<&[u8]> = entries.iter().filter(|e| !ignored(e)).map(|e| e.path.as_slice()).collect();
    kept.sort_unstable();
    let holds_kept = |dir: &[u8]| {
        let mut below = dir.to_vec();
        below.push(b'/');
        let at = kept.partition_point(|p| *p < below.as_slice());
        kept.get(at).is_some_and(|p| p.starts_with(&below))
    };
    let drop: Vec<bool> = entries.iter().map(|e| ignored(e) && !holds_kept(&e.path)).collect();
    entries.into_iter().zip(drop).filter(|(_, d)| !d).map(|(e, _)| e).collect()
}

/// A walker with every default filter off but `.berthignore`, pruned to the
/// path from the project root to `src`, and without the project's
/// `berth.lock` unless `src` is that file (see the parent module's page).
fn builder(root: &Root) -> WalkBuilder {
    let mut b = WalkBuilder::new(&root.walk_root);
    b.standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .same_file_system(false)
        .threads(rayon::current_num_threads());
    let src = root.abs_src.clone();
    if let Some(ignore) = root.docker.clone() {
        // `.dockerignore` matches paths relative to the context; with an
        // exception (`!…`) an ignored directory is still walked, as Docker
        // does, since something under it may be let back in (and is left
        // out again when nothing is: `without_emptied_dirs`).
        let walk_root = root.walk_root.clone();
        let exceptions = ignore.has_exceptions();
        b.filter_entry(move |dent| {
            let path = dent.path();
            if !(path.starts_with(&src) || src.starts_with(path)) {
                return false;
            }
            let Ok(rel) = path.strip_prefix(&walk_root) else { return true };
            if rel.as_os_str().is_empty() || !path.starts_with(&src) || path == src {
                return true;
            }
            let is_dir = dent.file_type().is_some_and(|t| t.is_dir());
            (exceptions && is_dir) || !ignore.matches(&rel.to_string_lossy())
        });
        return b;
    }
    b.add_custom_ignore_filename(IGNORE_FILE);
    let lock = root.walk_root.join(LOCK_FILE);
    b.filter_entry(move |dent| {
        let path = dent.path();
        if path == lock && path != src {
            return false;
        }
        path.starts_with(&src) || src.starts_with(path)
    });
    b
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one walked entry; `None` for the directories above `src`.
fn entry(root: &Root, dent: &DirEntry) -> Result<Option<Entry>, TreeError> {
    // A directory whose `.berthignore` could not be read or parsed.
    if let Some(err) = dent.error() {
        let (path, source) = split_error(root, err.clone());
        return Err(TreeError::BadIgnoreFile { path, source });
    }
    let path = dent.path();
    let Ok(rel) = path.strip_prefix(&root.abs_src) else {
        return Ok(None);
    };
    let rel = rel.as_os_str().as_bytes().to_vec();
    let read_err = |source| TreeError::Read { path: root.shown(path), source };
    let Some(ty) = dent.file_type() else {
        return Err(TreeError::Special { path: root.shown(path), kind: "special file" });
    };
    let entry = if ty.is_file() {
        let (mode, size, hash) = hash_file(root, path)?;
        Entry { path: rel, mode, body: Body::File { size, hash } }
    } else if ty.is_dir() || ty.is_symlink() {
        let meta = path.symlink_metadata().map_err(read_err)?;
        let body = if ty.is_dir() {
            Body::Dir
        } else {
            let target = std::fs::read_link(path).map_err(read_err)?;
            Body::Symlink { target: target.into_os_string().into_encoded_bytes() }
        };
        Entry { path: rel, mode: meta.mode() & 0o7777, body }
    } else {
        let kind = if ty.is_socket() {
            "socket"
        } else if ty.is_fifo() {
            "fifo"
        } else if ty.is_block_device() {
            "block device"
        } else if ty.is_char_device() {
            "character device"
        } else {
            "special file"
        };
        return Err(TreeError::Special { path: root.shown(path), kind });
    };
    Ok(Some(entry))
}

/// Streams one regular file through blake3: `(mode, size, content hash)`.
///
/// Opened with `O_NOFOLLOW` (a file swapped for a link since the walk fails
/// instead of hashing the link's target) and `O_NONBLOCK` (one swapped for a
/// fifo cannot hang the walk); mode and size come from the open file.
fn hash_file(root: &Root, path: &Path) -> Result<(u32, u64, [u8; 32]), TreeError> {
    let read_err = |source| TreeError::Read { path: root.shown(path), source };
    let changed = || TreeError::Changed { path: root.shown(path) };
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).map_err(
        |e| match e.raw_os_error() {
            Some(libc::ELOOP) => changed(),
            _ => read_err(e),
        },
    )?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(changed());
    }
    let mut reader = Counted { file, bytes: 0 };
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut reader).map_err(read_err)?;
    if reader.bytes != meta.len() {
        return Err(changed());
    }
    Ok((meta.mode() & 0o7777, meta.len(), *hasher.finalize().as_bytes()))
}

/// A file that counts the bytes read from it.
struct Counted {
    file: File,
    bytes: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The path an error is about (as the user would find it), and the error
/// without its path and depth wrappers, so a message names the path once.
/// The line number of a bad `.berthignore` rule stays in the error.
fn split_error(root: &Root, err: ignore::Error) -> (PathBuf, ignore::Error) {
    fn split(err: ignore::Error) -> (Option<PathBuf>, ignore::Error) {
        match err {
            ignore::Error::WithPath { path, err } => (Some(path), split(*err).1),
            ignore::Error::WithDepth { err, .. } => split(*err),
            ignore::Error::Partial(mut errs) if !errs.is_empty() => split(errs.swap_remove(0)),
            other => (None, other),
        }
    }
    let (path, source) = split(err);
    (root.shown(path.as_deref().unwrap_or(&root.abs_src)), source)
}
