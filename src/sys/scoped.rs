//! Paths resolved inside a root directory: opening files and mount targets,
//! creating missing directories and files, all with `openat2(RESOLVE_IN_ROOT
//! | RESOLVE_NO_MAGICLINKS)`, so that a symlink in an image (`/proc -> /`,
//! `etc -> ../../host`) is followed as if the root were `/` and never leads
//! out of it. Builds on the `*at` helpers of [`crate::sys::fs`].

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::fs;

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn relative(rel: &Path) -> &Path {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() { Path::new(".") } else { rel }
}

/// Opens the regular file (or anything readable) `rel` inside `root` for
/// reading, following symlinks inside the root.
pub fn open_file(root: BorrowedFd<'_>, rel: &Path) -> io::Result<File> {
    Ok(File::from(fcntl::openat2(root, relative(rel), how(OFlag::O_RDONLY))?))
}

/// An `O_PATH` fd for whatever `rel` names inside `root` (a directory, a
/// file, a device), following symlinks inside the root.
pub fn open_path(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    Ok(fcntl::openat2(root, relative(rel), how(OFlag::O_PATH))?)
}

fn normal_components(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(Ok(name)),
            Component::RootDir | Component::CurDir => None,
            Component::ParentDir | Component::Prefix(_) => {
                Some(Err(io::Error::new(io::ErrorKind::InvalidInput, "path must not contain `..`")))
            }
        })
        .collect()
}

/// Makes sure the directory `rel` exists inside `root`, creating missing
/// components with `perm`, and returns an `O_PATH` fd for it. Existing
/// symlinks along the way are followed inside the root.
pub fn mkdir_all(root: BorrowedFd<'_>, rel: &Path, perm: u32) -> io::Result<OwnedFd> {
    let parts = normal_components(rel)?;
    let mut prefix = PathBuf::new();
    let mut dir = fs::resolve_dir_in_root(root, Path::new(""))?;
    for name in parts {
        prefix.push(name);
        dir = match fs::resolve_dir_in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::mkdir_at(dir.as_fd(), name, perm) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("{} is a dangling symlink", prefix.display()),
                        ));
                    }
                    Err(e) => return Err(e),
                }
                fs::resolve_dir_in_root(root, &prefix)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Makes sure something exists at `rel` inside `root` (creating parent
/// directories, and an empty file with `perm` if nothing is there) and
/// returns an `O_PATH` fd for it: a target for bind-mounting a file.
pub fn ensure_file(root: BorrowedFd<'_>, rel: &Path, perm: u32) -> io::Result<OwnedFd> {
    match open_path(root, rel) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let rel = relative(rel);
    let (parent, name) = match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name")),
    };
    let dir = mkdir_all(root, parent, 0o755)?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match fcntl::openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(perm)) {
        Ok(_) => {}
        Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_path(root, rel)
}

/// What `rel` inside `root` is, following symlinks inside the root;
/// `Ok(None)` if it does not exist.
pub fn kind(root: BorrowedFd<'_>, rel: &Path) -> io::Result<Option<fs::FileKind>> {
    match open_path(root, rel) {
        Ok(fd) => Ok(Some(fs::stat_fd(fd.as_fd())?.kind)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
