//! Input hashing of `copy` sources: the digest a copy step's cache key takes
//! from the files it reads.
//!
//! [`hash_tree`] reads `src` (relative to the project directory) and returns
//! one blake3 digest of what a copy of it would produce. The algorithm:
//!
//! 1. **Locate.** `src` must be a relative path that stays inside the project
//!    directory and exists there. No symlink is followed on the way down, and
//!    none below `src` either: a symlink is part of the tree as a link (kind,
//!    name, target). If `src` itself is a symlink, the digest is that of the
//!    link, not of what it points to.
//! 2. **Walk.** [`ignore`]'s parallel walker starts at the project directory,
//!    so `.berthignore` files apply exactly as `.gitignore` files do in git:
//!    the root file's rules are relative to the project root (`/app/tmp`
//!    excludes `app/tmp` even when copying `app`), a nested file's rules are
//!    relative to its own directory, later and deeper rules win, `!pattern`
//!    re-includes, and nothing inside an excluded directory is read (so a
//!    re-include cannot reach into one, as in git). Every other filter of
//!    the walker is off: no `.gitignore`, no `.ignore`, no global git
//!    excludes, no hidden-file skipping, no ignore files above the project
//!    directory. Entries off the path to `src` are pruned unread.
//! 3. **Hash contents.** Each walker thread streams the regular files it
//!    meets through blake3 with a fixed 64 KiB buffer, so memory is bounded
//!    by the thread count, not by file sizes. The file is opened without
//!    following links and its size and mode are taken from the open file, so
//!    size, mode and content describe the same inode. Measured on the
//!    10,000-file, 500 MiB tree of `bench/hash.sh` (2 cores, warm cache):
//!    this parallel walker and a sequential walk followed by rayon over the
//!    entries were within noise (90 vs 92 ms), and blake3's
//!    `update_mmap_rayon` for files over 1 MiB was slower (109 ms), so
//!    there is one streaming path and no mmap (no SIGBUS if a file shrinks).
//! 4. **Canonical stream.** The entries are sorted bytewise by their path
//!    relative to `src` (`/`-separated, `src` itself is the empty path), then
//!    fed to one hasher, every field length-prefixed (see [`TreeDigest`]).
//!    The walk order, the thread count and the machine do not change it.
//!
//! What the digest leaves out, on purpose:
//! - **mtimes, atimes, ctimes**: touching a file must not rebuild a layer, and
//!   layers clamp mtimes anyway (`SOURCE_DATE_EPOCH`).
//! - **uid and gid**: the copy step sets the owner from the manifest, so the
//!   owner on the build machine never reaches the layer.
//! - **inode numbers, devices, link counts**: they differ between checkouts
//!   of the same tree.
//! - **the name of `src` itself**: `src` and the destination are parameters
//!   of the copy step, which the caller puts into the key beside this digest.
//!
//! `.berthignore` files are part of the tree like any other file, unless a
//! rule excludes them (as Docker sends `.dockerignore` unless it is listed).
//! The project's `berth.lock` is never part of a copied directory (only a
//! copy of that file itself takes it): `berth up` rewrites it after hashing
//! the copies, so a copy of `.` would otherwise be rebuilt once after every
//! pin. The manifest is copied like any other file.
//! Sockets, fifos and device nodes are errors: copying one into an image is
//! almost always a mistake, and the message says to add it to `.berthignore`.
//! A file that changes size while it is read is an error too, rather than a
//! digest of a half-written file.

mod walk;

use std::io;
use std::path::{Component, Path, PathBuf};

/// The name of the ignore files read in the project directory and below it.
pub const IGNORE_FILE: &str = ".berthignore";

/// The digest of a copy source, and what it covered.
///
/// `hash` is blake3 over the length-prefixed fields (each a little-endian
/// `u64` byte count, then the bytes) `"berth tree v1"` and then, for every
/// entry in bytewise path order: kind (`file`, `dir` or `symlink`), path
/// relative to `src`, permission bits (`mode & 0o7777`, `u32` LE) and, for a
/// file, its size (`u64` LE) and the blake3 of its content; for a symlink,
/// its target's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeDigest {
    /// What goes into the copy step's cache key.
    pub hash: [u8; 32],
    /// Regular files hashed.
    pub files: u64,
    /// Bytes of content hashed, the sum of the files' sizes.
    pub bytes: u64,
}

/// Why a copy source could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The project dir itself cannot be resolved.
    #[error("project dir {project_dir}: cannot open it: {source}")]
    ProjectDir { project_dir: PathBuf, source: io::Error },
    /// `src` is absolute or climbs out with `..`.
    #[error(
        "copy source {src:?} must be a relative path inside the project dir {project_dir} \
         (no leading '/', no '..')"
    )]
    OutsideProject { src: PathBuf, project_dir: PathBuf },
    /// `src`, or a directory on the way to it, does not exist.
    #[error(
        "copy source {src:?} does not exist in the project dir {project_dir} \
         (looked for {path}): {source}"
    )]
    NotFound { src: PathBuf, project_dir: PathBuf, path: PathBuf, source: io::Error },
    /// A directory on the way to `src` is a symlink.
    #[error(
        "copy source {src:?} goes through the symlink {link}; berth does not follow symlinks \
         inside the project dir, so name the real path instead"
    )]
    SymlinkInPath { src: PathBuf, link: PathBuf },
    /// `src`, or a directory above it, is excluded by a `.berthignore` rule.
    #[error(
        "copy source {src:?} is excluded by a {IGNORE_FILE} rule in the project dir \
         {project_dir}; remove the rule or copy another path"
    )]
    Ignored { src: PathBuf, project_dir: PathBuf },
    /// An entry that cannot be opened, read or stat'ed.
    #[error(
        "{path}: cannot read it to hash the copy source ({source}); make it readable or add it \
         to {IGNORE_FILE}"
    )]
    Read { path: PathBuf, source: io::Error },
    /// A file that changed type or size between the walk and the read.
    #[error("{path}: changed while it was being hashed; hash again once it is written")]
    Changed { path: PathBuf },
    /// A socket, fifo or device node inside `src`.
    #[error(
        "{path} is a {kind}; a copy source may hold only files, directories and symlinks, \
         so add it to {IGNORE_FILE}"
    )]
    Special { path: PathBuf, kind: &'static str },
    /// A `.berthignore` that cannot be read or holds an invalid rule.
    #[error("{path}: {source}; fix the rule ({IGNORE_FILE} files use gitignore syntax)")]
    BadIgnoreFile { path: PathBuf, source: ignore::Error },
    /// A directory that cannot be listed.
    #[error("{path}: cannot walk the copy source: {source}")]
    Walk { path: PathBuf, source: ignore::Error },
}

/// Hashes what a copy step reads: `src`, relative to `project_dir`, the
/// directory that holds the root `.berthignore`.
///
/// `src` may be a directory, a file or a symlink; a symlink is hashed as a
/// link (its target path), never followed. See the module page for what the
/// digest covers and which `.berthignore` rules apply.
pub fn hash_tree(project_dir: &Path, src: &Path) -> Result<TreeDigest, TreeError> {
    hash_tree_with(project_dir, src, Rules::Berthignore)
}

/// Which ignore rules a walk honours.
#[derive(Clone, Copy, Debug)]
pub enum Rules<'a> {
    /// `.berthignore` files, as the module page says (a berth.toml copy).
    Berthignore,
    /// A build context's `.dockerignore` (a Dockerfile's COPY and ADD): no
    /// `.berthignore` is read and `berth.lock` is an ordinary file.
    Docker(&'a crate::dockerfile::ignore::Ignore),
}

/// [`hash_tree`] with the ignore rules `rules`. The same tree under the
/// same rules' verdicts hashes the same, whichever rules chose it.
pub fn hash_tree_with(project_dir: &Path, src: &Path, rules: Rules<'_>) -> Result<TreeDigest, TreeError> {
    let root = Root::locate(project_dir, src, rules)?;
    let mut entries = walk::collect(&root)?;
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    if entries.first().is_none_or(|e| !e.path.is_empty()) {
        return Err(TreeError::Ignored { src: root.src, project_dir: root.project_dir });
    }
    Ok(digest(&entries))
}

/// One entry of a copy source, as a copy step writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyEntry {
    /// Relative to `src`; empty for `src` itself.
    pub rel: PathBuf,
    /// Where it is on disk.
    pub source: PathBuf,
}

/// What a copy step copies: the same entries [`hash_tree`] hashes (so the
/// layer holds exactly what the cache key covers), in path order.
pub fn copy_entries(project_dir: &Path, src: &Path) -> Result<Vec<CopyEntry>, TreeError> {
    copy_entries_with(project_dir, src, Rules::Berthignore)
}

/// [`copy_entries`] with the ignore rules `rules`.
pub fn copy_entries_with(project_dir: &Path, src: &Path, rules: Rules<'_>) -> Result<Vec<CopyEntry>, TreeError> {
    use std::os::unix::ffi::OsStrExt;
    let root = Root::locate(project_dir, src, rules)?;
    let mut entries = walk::collect(&root)?;
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    if entries.first().is_none_or(|e| !e.path.is_empty()) {
        return Err(TreeError::Ignored { src: root.src, project_dir: root.project_dir });
    }
    Ok(entries
        .into_iter()
        .map(|e| {
            let rel = PathBuf::from(std::ffi::OsStr::from_bytes(&e.path));
            let source = if rel.as_os_str().is_empty() { root.abs_src.clone() } else { root.abs_src.join(&rel) };
            CopyEntry { rel, source }
        })
        .collect())
}

/// A located copy source: where it is, as the caller named it and on disk.
struct Root {
    /// The project dir as the caller gave it, for messages.
    project_dir: PathBuf,
    /// `src` without `.` components; empty for the whole project.
    src: PathBuf,
    /// The canonical project dir, where the walk starts.
    walk_root: PathBuf,
    /// `walk_root` joined with `src`.
    abs_src: PathBuf,
    /// A build context's `.dockerignore`, instead of `.berthignore` files.
    docker: Option<std::sync::Arc<crate::dockerfile::ignore::Ignore>>,
}

impl Root {
    fn locate(project_dir: &Path, src: &Path, rules: Rules<'_>) -> Result<Root, TreeError> {
        let outside = || TreeError::OutsideProject { src: src.to_owned(), project_dir: project_dir.to_owned() };
        let mut clean = PathBuf::new();
        for c in src.components() {
            match c {
                Component::Normal(name) => clean.push(name),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                    return Err(outside());
                }
            }
        }
        let walk_root = project_dir
            .canonicalize()
            .map_err(|source| TreeError::ProjectDir { project_dir: project_dir.to_owned(), source })?;
        // Check every component without following links, so that a missing
        // or symlinked parent gets its own message instead of an empty walk.
        let mut abs_src = walk_root.clone();
        let mut names = clean.components().peekable();
        while let Some(name) = names.next() {
            abs_src.push(name);
            let meta = abs_src.symlink_metadata().map_err(|source| TreeError::NotFound {
                src: clean.clone(),
                project_dir: project_dir.to_owned(),
                path: project_dir.join(&clean),
                source,
            })?;
            if names.peek().is_some() && meta.file_type().is_symlink() {
                return Err(TreeError::SymlinkInPath {
                    src: clean.clone(),
                    link: project_dir.join(abs_src.strip_prefix(&walk_root).unwrap_or(&abs_src)),
                });
            }
        }
        let docker = match rules {
            Rules::Berthignore => None,
            Rules::Docker(ignore) => Some(std::sync::Arc::new(ignore.clone())),
        };
        if let Some(ignore) = &docker
            && ignore.matches(&clean.to_string_lossy())
        {
            return Err(TreeError::Ignored { src: clean, project_dir: project_dir.to_owned() });
        }
        Ok(Root { project_dir: project_dir.to_owned(), src: clean, walk_root, abs_src, docker })
    }

    /// `path` (under the walk root) as the user would find it, for messages.
    fn shown(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.walk_root) {
            Ok(rel) => self.project_dir.join(rel),
            Err(_) => path.to_owned(),
        }
    }
}

/// One entry of the tree, relative to `src`.
#[derive(Debug)]
struct Entry {
    /// `/`-separated bytes; empty for `src` itself.
    path: Vec<u8>,
    /// Permission bits, `mode & 0o7777`.
    mode: u32,
    body: Body,
}

#[derive(Debug)]
enum Body {
    File { size: u64, hash: [u8; 32] },
    Dir,
    Symlink { target: Vec<u8> },
}

/// Feeds sorted entries to one hasher, as described on [`TreeDigest`].
fn digest(entries: &[Entry]) -> TreeDigest {
    fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let mut h = blake3::Hasher::new();
    field(&mut h, b"berth tree v1");
    let (mut files, mut bytes) = (0, 0);
    for e in entries {
        let kind: &[u8] = match e.body {
            Body::File { .. } => b"file",
            Body::Dir => b"dir",
            Body::Symlink { .. } => b"symlink",
        };
        field(&mut h, kind);
        field(&mut h, &e.path);
        field(&mut h, &e.mode.to_le_bytes());
        match &e.body {
            Body::File { size, hash } => {
                field(&mut h, &size.to_le_bytes());
                field(&mut h, hash);
                files += 1;
                bytes += size;
            }
            Body::Dir => {}
            Body::Symlink { target } => field(&mut h, target),
        }
    }
    TreeDigest { hash: *h.finalize().as_bytes(), files, bytes }
}

#[cfg(test)]
mod tests;
