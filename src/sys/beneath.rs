//! Reading a tree that someone else may be changing (a container's upper
//! dir, its image layers) without ever following a symlink: every path is
//! opened relative to a directory fd with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` and
//! `O_NOFOLLOW`. A symlink anywhere along the path (say a directory the
//! container swapped for `-> /` after it was listed) makes the open fail
//! with `ELOOP` instead of leading to the host's files (the CVE-2018-15664
//! class of `docker cp` bugs); `..` cannot climb above the directory, and no
//! other mount is entered.
//!
//! What a caller learns about an object comes from the fd it opened, never
//! from its path again: `fstat`, `readlinkat(fd, "")`, `fgetxattr`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};

/// How to open an object beneath a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// `O_PATH`: any object, symlinks included (the fd then refers to the
    /// link itself); enough for `fstat` and `readlinkat`, and opening
    /// nothing (no device is touched).
    Path,
    /// `O_RDONLY | O_NONBLOCK | O_NOCTTY`: for reading a regular file (a
    /// fifo put in its place does not block the open).
    Read,
    /// `O_RDONLY | O_DIRECTORY`: for listing a directory and reading its
    /// xattrs.
    Dir,
}

/// Opens `rel` (relative; empty is `dir` itself) beneath `dir` as `how`
/// says, following no symlink at all (see the module page).
pub fn open(dir: BorrowedFd<'_>, rel: &Path, how: Open) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let flags = match how {
        Open::Path => OFlag::O_PATH,
        Open::Read => OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        Open::Dir => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    };
    let resolve = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV;
    let how = OpenHow::new().flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).resolve(resolve);
    Ok(fcntl::openat2(dir, rel, how)?)
}

/// Opens the directory at `path` (the trusted root of what is read
/// beneath it) for reading, refusing a symlink there.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(fcntl::open(path, flags, nix::sys::stat::Mode::empty())?)
}

/// The metadata of the object `fd` refers to (any kind of fd, `O_PATH`
/// included).
pub fn metadata(fd: BorrowedFd<'_>) -> io::Result<std::fs::Metadata> {
    // SAFETY: the `File` only borrows the fd: `ManuallyDrop` never closes
    // it, and it does not outlive `fd`, which stays open for the call.
    // `metadata` is `statx(fd, "", AT_EMPTY_PATH)`, which works on `O_PATH`
    // fds.
    let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd.as_raw_fd()) });
    file.metadata()
}

/// What an object is, from `fstatat(AT_SYMLINK_NOFOLLOW)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// `st_mode & S_IFMT`.
    pub format: u32,
    pub rdev: u64,
}

impl Kind {
    pub fn is_dir(&self) -> bool {
        self.format == libc::S_IFDIR
    }

    /// An overlayfs whiteout: a character device 0:0.
    pub fn is_whiteout(&self) -> bool {
        self.format == libc::S_IFCHR && self.rdev == 0
    }
}

/// What the single name `name` in the directory `dir` is, without following
/// a symlink; `Ok(None)` if nothing has that name.
pub fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Kind>> {
    match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Kind { format: st.st_mode & libc::S_IFMT, rdev: st.st_rdev })),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The target of the symlink that the `O_PATH` fd `fd` refers to.
pub fn read_link(fd: BorrowedFd<'_>) -> io::Result<OsString> {
    Ok(fcntl::readlinkat(fd, OsStr::new(""))?)
}

/// The extended attribute `key` of the open (not `O_PATH`) file or
/// directory `fd`; `Ok(None)` if it is not set or the filesystem has none.
pub fn get_xattr(fd: BorrowedFd<'_>, key: &str) -> io::Result<Option<Vec<u8>>> {
    let ckey = CString::new(key)?;
    // SAFETY: the key is NUL-terminated and outlives the call; the kernel
    // writes at most `buf.len()` bytes into `buf`; `fd` stays open.
    super::xattr::sized(1 << 16, &[libc::ENODATA, libc::ENOTSUP], |buf| unsafe {
        libc::fgetxattr(fd.as_raw_fd(), ckey.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })
}

/// The names of the extended attributes of the open (not `O_PATH`) file or
/// directory `fd`.
pub fn list_xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`; `fd`
    // stays open for the call.
    let list = super::xattr::sized(1 << 20, &[libc::ENOTSUP], |buf| unsafe {
        libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
    })?;
    Ok(super::xattr::names(list))
}

/// Whether `err` is what [`open`] fails with when it meets a symlink (or a
/// mount) on the way: the tree changed under the reader.
pub fn is_refused_link(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::EXDEV))
}

/// `err` from [`open`] of `rel`, saying plainly what `ELOOP`/`EXDEV` mean
/// there; other errors as they are.
pub fn explain(err: io::Error, rel: &Path) -> io::Error {
    if !is_refused_link(&err) {
        return err;
    }
    io::Error::new(
        err.kind(),
        format!(
            "a symlink or mount point is on the way to {} ({err}): the tree changed while it was read, and \
             berth never follows links out of it; read it again while nothing writes to it",
            rel.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn never_follows_a_symlink_anywhere_on_the_path() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"inside").unwrap();
        std::fs::write(t.path().join("secret"), b"host").unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink("d/f", root.join("link")).unwrap();
        let fd = open_root(&root).unwrap();

        let f = open(fd.as_fd(), Path::new("d/f"), Open::Read).unwrap();
        assert!(metadata(f.as_fd()).unwrap().is_file());
        for escape in ["up/secret", "../secret", "d/../../secret"] {
            let err = open(fd.as_fd(), Path::new(escape), Open::Read).unwrap_err();
            assert!(
                matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::EXDEV) | Some(libc::EACCES)),
                "{escape}: {err}"
            );
        }
        // The final symlink itself: O_PATH gives the link, reading refuses it.
        let link = open(fd.as_fd(), Path::new("link"), Open::Path).unwrap();
        assert!(metadata(link.as_fd()).unwrap().file_type().is_symlink());
        assert_eq!(read_link(link.as_fd()).unwrap(), "d/f");
        assert!(is_refused_link(&open(fd.as_fd(), Path::new("link"), Open::Read).unwrap_err()));
    }

    #[test]
    fn xattrs_through_an_open_fd() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let root = open_root(t.path()).unwrap();
        let f = open(root.as_fd(), Path::new("f"), Open::Read).unwrap();
        assert_eq!(get_xattr(f.as_fd(), "user.berth.test").unwrap(), None);
        crate::sys::fs::set_xattr_fd(f.as_fd(), "user.berth.test", b"1").unwrap();
        assert_eq!(get_xattr(f.as_fd(), "user.berth.test").unwrap().as_deref(), Some(&b"1"[..]));
        assert!(list_xattrs(f.as_fd()).unwrap().iter().any(|n| n == "user.berth.test"));
    }
}
