//! The upper dir, read as a tree someone else may be changing: a running
//! container's writable layer. It is opened once ([`Upper::open`]); every
//! path below it is opened relative to that fd with `sys::beneath` (no
//! symlink followed anywhere on the way, no `..` above it, no other mount
//! entered), and all that is learnt about an object comes from the fd that
//! was opened. A directory swapped for a symlink to `/` while the layer is
//! made thus fails the read; it never reads the host's files.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::oci::Beneath;
use crate::sys::beneath::{self, Open};

/// An upper dir, open.
pub(super) struct Upper {
    path: PathBuf,
    fd: OwnedFd,
}

impl Upper {
    /// Opens the upper dir at `path` (a symlink there is refused).
    pub(super) fn open(path: &Path) -> io::Result<Upper> {
        Ok(Upper { path: path.to_owned(), fd: beneath::open_root(path)? })
    }

    /// The upper dir's path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as a source for the layer writer.
    pub(super) fn source<'a>(&'a self, rel: &'a Path) -> Beneath<'a> {
        Beneath::new(self.fd.as_fd(), rel, &self.path)
    }

    fn open_at(&self, rel: &Path, how: Open) -> io::Result<OwnedFd> {
        beneath::open(self.fd.as_fd(), rel, how).map_err(|e| beneath::explain(e, rel))
    }

    /// The names in the directory `rel`.
    pub(super) fn list(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        let dir = self.open_at(rel, Open::Dir)?;
        crate::sys::fs::list_dir(dir.as_fd())
    }

    /// The metadata of `rel` itself (a symlink's own).
    pub(super) fn metadata(&self, rel: &Path) -> io::Result<Metadata> {
        beneath::metadata(self.open_at(rel, Open::Path)?.as_fd())
    }

    /// The xattrs of `rel` that decide what goes into a layer, as `(name,
    /// value)`: of directories and regular files only (the overlay marks
    /// berth looks for are only ever set on them). `meta` is what
    /// [`Upper::metadata`] said; should `rel` have changed type since, the
    /// open fails or finds another object, which is an error.
    pub(super) fn xattrs(
        &self,
        rel: &Path,
        meta: &Metadata,
        wanted: &dyn Fn(&OsString) -> bool,
    ) -> io::Result<Vec<(OsString, Vec<u8>)>> {
        let how = if meta.is_dir() {
            Open::Dir
        } else if meta.is_file() {
            Open::Read
        } else {
            return Ok(Vec::new());
        };
        let fd = self.open_at(rel, how)?;
        check_same(&beneath::metadata(fd.as_fd())?, meta, &self.path.join(rel))?;
        let mut out = Vec::new();
        for name in beneath::list_xattrs(fd.as_fd())?.into_iter().filter(|n| wanted(n)) {
            let Some(key) = name.to_str() else { continue };
            if let Some(value) = beneath::get_xattr(fd.as_fd(), key)? {
                out.push((name.clone(), value));
            }
        }
        Ok(out)
    }

    /// One xattr of a regular file opened with [`Upper::open_file`].
    pub(super) fn file_xattr(&self, file: &File, key: &str) -> io::Result<Option<Vec<u8>>> {
        beneath::get_xattr(file.as_fd(), key)
    }

    /// The target of the symlink `rel`.
    pub(super) fn read_link(&self, rel: &Path) -> io::Result<OsString> {
        beneath::read_link(self.open_at(rel, Open::Path)?.as_fd())
    }

    /// The regular file `rel`, open for reading, checked to be the object
    /// `meta` describes.
    pub(super) fn open_file(&self, rel: &Path, meta: &Metadata) -> io::Result<File> {
        let file = File::from(self.open_at(rel, Open::Read)?);
        check_same(&file.metadata()?, meta, &self.path.join(rel))?;
        Ok(file)
    }
}

/// Fails unless `now` is the object `then` described (same inode, type).
fn check_same(now: &Metadata, then: &Metadata, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if (now.dev(), now.ino(), now.mode() & libc::S_IFMT) == (then.dev(), then.ino(), then.mode() & libc::S_IFMT) {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} was replaced while the layer was made; make the layer from an upper dir nothing writes to",
        path.display()
    )))
}
