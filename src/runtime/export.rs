//! `berth export`: a container's whole filesystem as one flat tar, as the
//! container sees it — its image's layers with its own changes on top —
//! without what is mounted into it (`/proc`, `/sys`, `/dev`, volumes and
//! the bind-mounted `/etc` files are mount points, not contents).
//!
//! # How the tree is read
//!
//! No overlay is mounted: the merged view is computed here, as overlayfs
//! computes it, from the upper dir and the unpacked layers (top first). A
//! merged directory is backed by a list of directories; a name is looked
//! up in each in turn: a whiteout (0:0 character device) ends the search
//! (the name is deleted), a non-directory ends it (it hides what is
//! below), a directory joins the child's list, and an opaque one (the
//! `trusted.overlay.opaque` or `user.overlay.opaque` xattr) joins it and
//! ends the search. The first object found is what the container sees.
//!
//! Everything is read through directory fds, one name at a time, with
//! `O_NOFOLLOW` (see `sys::beneath`): a symlink in the container — even
//! one it swaps in while the tar is written — is written as a symlink and
//! never followed, so no host file can reach the tar.
//!
//! Entries are sorted by name at each level (the order of `tar
//! --sort=name`), keep their mtimes, modes, numeric owners, symlink
//! targets and `security.capability`; a file's later names become hard
//! links to its first; sockets are skipped. A running container is frozen
//! while it is read ([`ExportOptions::pause`]), so the tar is one moment of
//! it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::container::Container;
use super::freeze::{self, FreezeError};
use crate::oci::{Beneath, LayerWriter, MtimePolicy, TarWriteError};
use crate::sys::beneath::{self, Open};

/// The xattrs that mark a directory opaque (`user.` under `userxattr`).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// How [`export`] reads the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Freeze a running container while its files are read.
    pub pause: bool,
}

/// What [`export`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Tar entries written.
    pub entries: u64,
    /// Bytes of tar written.
    pub bytes: u64,
}

/// Why a container's filesystem could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("container {container}: cannot read {}: {source}", path.display())]
    Read { container: String, path: PathBuf, source: io::Error },
    #[error("container {container}: cannot write its filesystem as a tar: {source}")]
    Write { container: String, source: Box<TarWriteError> },
    #[error("cannot write the tar to {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Freeze(Box<FreezeError>),
    #[error("{error}; and then: {thaw}")]
    AndThaw { error: Box<ExportError>, thaw: Box<FreezeError> },
}

/// Writes the filesystem of container `c` as a plain tar into `out` and
/// returns `out` (flushed) with what was written (see the module page).
pub fn export<W: Write>(c: &Container, out: W, opts: ExportOptions) -> Result<(W, ExportStats), ExportError> {
    let frozen = if opts.pause { freeze::freeze(c).map_err(|e| ExportError::Freeze(Box::new(e)))? } else { None };
    let written = write(c, out);
    match (written, frozen.map(|f| f.thaw()).transpose()) {
        (Ok(done), Ok(_)) => Ok(done),
        (Ok(_), Err(thaw)) => Err(ExportError::Freeze(Box::new(thaw))),
        (Err(error), Ok(_)) => Err(error),
        (Err(error), Err(thaw)) => Err(ExportError::AndThaw { error: Box::new(error), thaw: Box::new(thaw) }),
    }
}

/// [`export`] into the file `dest`: written into a temporary file beside it
/// (`.NAME.XXXXXX`, removed on error) and renamed to `dest` when complete,
/// so `dest` is never a partial tar. Mode 0644. Not fsynced: it is the
/// user's file, not the store's.
pub fn export_to_file(c: &Container, dest: &Path, opts: ExportOptions) -> Result<ExportStats, ExportError> {
    let file_err = |path: &Path, source| ExportError::File { path: path.to_owned(), source };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest.file_name().ok_or_else(|| file_err(dest, io::Error::other("the path names no file")))?;
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let tmp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir).map_err(|e| file_err(dir, e))?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| file_err(tmp.path(), e))?;
    let out = io::BufWriter::with_capacity(1 << 20, tmp);
    let (out, stats) = export(c, out, opts)?;
    let tmp = out.into_inner().map_err(|e| file_err(dest, e.into_error()))?;
    tmp.persist(dest).map_err(|e| file_err(dest, e.error))?;
    Ok(stats)
}

fn write<W: Write>(c: &Container, out: W) -> Result<(W, ExportStats), ExportError> {
    let mut roots = vec![c.paths.upper()];
    roots.extend(c.record.lowers.iter().cloned());
    let mut merge =
        Merge { container: &c.record.name, writer: LayerWriter::plain_tar(out, MtimePolicy::Keep), entries: 0 };
    if let Some(base) = c.record.userns_base {
        merge.writer.shift_ids(base); // its upper holds the namespace's host ids
    }
    let mut backing = Vec::new();
    for root in &roots {
        let fd = beneath::open_root(root).map_err(|e| merge.read_err(root, e))?;
        backing.push(Backing { fd, path: root.clone() });
    }
    merge.dir(&backing, Path::new(""))?;
    let entries = merge.entries;
    let container = merge.container.to_owned();
    let (out, bytes) =
        merge.writer.finish_plain().map_err(|e| ExportError::Write { container, source: Box::new(e) })?;
    Ok((out, ExportStats { entries, bytes }))
}

/// One directory backing a merged directory: its fd and its path (for
/// messages).
struct Backing {
    fd: OwnedFd,
    path: PathBuf,
}

struct Merge<'a, W: Write> {
    container: &'a str,
    writer: LayerWriter<W>,
    entries: u64,
}

impl<W: Write> Merge<'_, W> {
    fn read_err(&self, path: &Path, source: io::Error) -> ExportError {
        ExportError::Read { container: self.container.to_owned(), path: path.to_owned(), source }
    }

    /// Writes the merged directory `rel`, backed by `backing` (top first),
    /// and everything below it.
    fn dir(&mut self, backing: &[Backing], rel: &Path) -> Result<(), ExportError> {
        let mut names = BTreeSet::new();
        for b in backing {
            names.extend(crate::sys::fs::list_dir(b.fd.as_fd()).map_err(|e| self.read_err(&b.path, e))?);
        }
        for name in names {
            let child = rel.join(&name);
            let Some((top, below)) = self.lookup(backing, &name)? else { continue };
            let source_name = PathBuf::from(&name);
            let mut source = Beneath::new(backing[top].fd.as_fd(), &source_name, &backing[top].path);
            self.writer
                .add_beneath(&child, &mut source)
                .map_err(|e| ExportError::Write { container: self.container.to_owned(), source: Box::new(e) })?;
            self.entries += 1;
            if !below.is_empty() {
                self.dir(&below, &child)?;
            }
        }
        Ok(())
    }

    /// Looks `name` up in `backing` as overlayfs does (see the module page):
    /// the index of the directory holding what the container sees, and,
    /// if it is a directory, the directories backing it. `None` if the
    /// name is deleted.
    fn lookup(&self, backing: &[Backing], name: &OsString) -> Result<Option<(usize, Vec<Backing>)>, ExportError> {
        let mut found = None;
        let mut below = Vec::new();
        for (i, b) in backing.iter().enumerate() {
            let path = || b.path.join(name);
            let Some(kind) = beneath::kind_at(b.fd.as_fd(), name).map_err(|e| self.read_err(&path(), e))? else {
                continue;
            };
            if kind.is_whiteout() {
                break;
            }
            if !kind.is_dir() {
                found.get_or_insert(i);
                break;
            }
            found.get_or_insert(i);
            let fd = beneath::open(b.fd.as_fd(), Path::new(name), Open::Dir)
                .map_err(|e| self.read_err(&path(), beneath::explain(e, Path::new(name))))?;
            let opaque = is_opaque(&fd).map_err(|e| self.read_err(&path(), e))?;
            below.push(Backing { fd, path: path() });
            if opaque {
                break;
            }
        }
        Ok(found.map(|i| (i, below)))
    }
}

/// Whether the open directory `fd` is marked opaque.
fn is_opaque(fd: &OwnedFd) -> io::Result<bool> {
    for key in OPAQUE_XATTRS {
        if beneath::get_xattr(fd.as_fd(), key)?.is_some_and(|v| v == b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}
