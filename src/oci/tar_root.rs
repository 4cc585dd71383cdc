//! The unpack root: a directory fd inside which every path is resolved by
//! the kernel (`RESOLVE_IN_ROOT`), so no name or symlink can reach outside.
//!
//! This is the tar reader's only way to find a directory. It resolves whole
//! parent paths; the final component of an entry is always handled by the
//! reader with `*at` calls relative to the parent fd returned here.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys::fs::{self as sysfs, FileKind};

/// An open unpack root.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the directory `path` (trusted: it is the boundary itself).
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Root { fd: sysfs::open_dir(path)? })
    }

    /// The directory `rel` resolved inside the root (`O_PATH`), or `None` if
    /// some part of it does not exist. An empty `rel` is the root.
    pub fn existing_dir(&self, rel: &Path) -> io::Result<Option<OwnedFd>> {
        match sysfs::resolve_dir_in_root(self.fd.as_fd(), rel) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`existing_dir`](Root::existing_dir), but a non-directory on
    /// the way also gives `None`: for whiteouts, which have nothing to delete
    /// below a file.
    pub fn lower_dir(&self, rel: &Path) -> io::Result<Option<OwnedFd>> {
        match self.existing_dir(rel) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            other => other,
        }
    }

    /// The directory `rel` resolved inside the root, opened for reading (so
    /// its mode, times and xattrs can be set through the fd).
    pub fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        sysfs::open_dir_in_root(self.fd.as_fd(), rel)
    }

    /// The directory `rel`, creating each missing component with mode 0755
    /// (less the umask), each relative to its resolved parent.
    pub fn make_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        if let Some(fd) = self.existing_dir(rel)? {
            return Ok(fd);
        }
        let mut done = PathBuf::new();
        let mut fd = sysfs::resolve_dir_in_root(self.fd.as_fd(), &done)?;
        for part in rel.iter() {
            done.push(part);
            fd = match self.existing_dir(&done)? {
                Some(next) => next,
                None => {
                    sysfs::mkdir_at(fd.as_fd(), part, 0o755)?;
                    sysfs::open_dir_at(fd.as_fd(), part)?
                }
            };
        }
        Ok(fd)
    }
}

/// Makes room for a new entry `name` in `parent`: removes what is there (a
/// directory with all it holds; a symlink itself, never its target), except
/// that an existing directory stays when `keep_dir` is set. Returns whether
/// such a directory stayed.
pub fn clear_slot(parent: BorrowedFd<'_>, name: &OsStr, keep_dir: bool) -> io::Result<bool> {
    match sysfs::stat_at(parent, name)? {
        None => Ok(false),
        Some(st) if st.kind == FileKind::Dir && keep_dir => Ok(true),
        Some(_) => {
            sysfs::remove_all_at(parent, name)?;
            Ok(false)
        }
    }
}
