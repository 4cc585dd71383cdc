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

/// The components of `rel` with `.` dropped and `..` applied lexically,
/// never above the root (as `RESOLVE_IN_ROOT` treats `..` at the root).
fn clamped_components(rel: &Path) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => out.push(name.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Makes sure the directory `rel` exists inside `root`, creating missing
/// components with `perm`, and returns an `O_PATH` fd for it. Symlinks
/// along the way are followed inside the root, dangling ones included:
/// their target is created (inside the root), as runc does.
pub fn mkdir_all(root: BorrowedFd<'_>, rel: &Path, perm: u32) -> io::Result<OwnedFd> {
    mkdir_all_depth(root, rel, perm, 0)
}

fn mkdir_all_depth(root: BorrowedFd<'_>, rel: &Path, perm: u32, depth: u32) -> io::Result<OwnedFd> {
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let parts = clamped_components(rel);
    let mut prefix = PathBuf::new();
    let mut dir = fs::resolve_dir_in_root(root, Path::new(""))?;
    for (i, name) in parts.iter().enumerate() {
        let parent = prefix.clone();
        prefix.push(name);
        dir = match fs::resolve_dir_in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::mkdir_at(dir.as_fd(), name, perm) {
                Ok(()) => fs::resolve_dir_in_root(root, &prefix)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // A dangling symlink: create its target instead.
                    let target = PathBuf::from(fcntl::readlinkat(dir.as_fd(), name.as_os_str())?);
                    let mut next = if target.is_absolute() { target } else { parent.join(target) };
                    for rest in &parts[i + 1..] {
                        next.push(rest);
                    }
                    return mkdir_all_depth(root, &next, perm, depth + 1);
                }
                Err(e) => return Err(e),
            },
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
