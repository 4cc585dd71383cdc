//! Where the layer writer reads one filesystem object from.
//!
//! - [`AtPath`]: a path, for trees nobody else changes while berth writes
//!   them (a build's copy sources, staging directories). The last component
//!   is never followed; earlier ones are.
//! - [`Beneath`]: a path below a directory fd, opened with
//!   `sys::beneath` (no symlink anywhere on the way, no `..` above the
//!   directory, no other mount), for trees that someone else may be
//!   changing: a container's upper dir and the layers under it. Everything
//!   is then read through the fds opened, never through the path again.
//!
//! Either way a regular file is opened with `O_NOFOLLOW | O_NONBLOCK` and
//! checked to be the object whose metadata was read.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::sys::beneath::{self, Open};

/// One object for the writer to read.
pub(super) trait Source {
    /// The path to name in errors.
    fn shown(&self) -> PathBuf;
    /// The object's own metadata (a symlink's, not its target's).
    fn metadata(&mut self) -> io::Result<Metadata>;
    /// The target of a symlink.
    fn read_link(&mut self) -> io::Result<OsString>;
    /// The regular file, open for reading, never through a symlink.
    fn open_file(&mut self) -> io::Result<File>;
}

/// An object named by a path (see the module page).
pub(super) struct AtPath<'a>(pub &'a Path);

impl Source for AtPath<'_> {
    fn shown(&self) -> PathBuf {
        self.0.to_owned()
    }

    fn metadata(&mut self) -> io::Result<Metadata> {
        fs::symlink_metadata(self.0)
    }

    fn read_link(&mut self) -> io::Result<OsString> {
        Ok(fs::read_link(self.0)?.into_os_string())
    }

    fn open_file(&mut self) -> io::Result<File> {
        fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(self.0)
    }
}

/// An object at a relative path below a directory fd, read without
/// following any symlink (see the module page).
pub struct Beneath<'a> {
    root: BorrowedFd<'a>,
    rel: &'a Path,
    /// The directory's path, for errors only.
    shown_root: &'a Path,
    /// The `O_PATH` fd of the object, once opened.
    fd: Option<OwnedFd>,
}

impl<'a> Beneath<'a> {
    /// The object `rel` below the directory `root`, which is `shown_root`
    /// in error messages.
    pub fn new(root: BorrowedFd<'a>, rel: &'a Path, shown_root: &'a Path) -> Self {
        Beneath { root, rel, shown_root, fd: None }
    }

    fn fd(&mut self) -> io::Result<BorrowedFd<'_>> {
        if self.fd.is_none() {
            self.fd = Some(beneath::open(self.root, self.rel, Open::Path).map_err(|e| beneath::explain(e, self.rel))?);
        }
        Ok(self.fd.as_ref().expect("just opened").as_fd())
    }
}

impl Source for Beneath<'_> {
    fn shown(&self) -> PathBuf {
        self.shown_root.join(self.rel)
    }

    fn metadata(&mut self) -> io::Result<Metadata> {
        beneath::metadata(self.fd()?)
    }

    fn read_link(&mut self) -> io::Result<OsString> {
        beneath::read_link(self.fd()?)
    }

    fn open_file(&mut self) -> io::Result<File> {
        Ok(File::from(beneath::open(self.root, self.rel, Open::Read).map_err(|e| beneath::explain(e, self.rel))?))
    }
}
