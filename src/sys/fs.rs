//! Directory-relative filesystem calls: the `*at` family, `openat2` scoped to
//! a root, device nodes, ownership, times and extended attributes.
//!
//! Every function here takes a directory fd plus one *name* (a single path
//! component) or, for the `*_in_root` functions, a relative path that the
//! kernel resolves with `RESOLVE_IN_ROOT`, so symlinks (even `-> /` or
//! `-> ../..`) can never lead outside the given root. None of them follows a
//! symlink in the final component. They do what they are told and decide
//! nothing: the safety policy of the tar reader lives in `oci::tar_read`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};

/// The type of a filesystem object, from its `st_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// What the callers need from `stat(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileKind,
    pub dev: u64,
    pub ino: u64,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub perm: u32,
}

/// The special files [`mknod_at`] can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Fifo,
    CharDevice,
    BlockDevice,
}

fn to_stat(st: &stat::FileStat) -> Stat {
    let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => FileKind::Dir,
        SFlag::S_IFLNK => FileKind::Symlink,
        SFlag::S_IFIFO => FileKind::Fifo,
        SFlag::S_IFCHR => FileKind::CharDevice,
        SFlag::S_IFBLK => FileKind::BlockDevice,
        SFlag::S_IFSOCK => FileKind::Socket,
        _ => FileKind::File,
    };
    Stat { kind, dev: st.st_dev, ino: st.st_ino, perm: st.st_mode & 0o7777 }
}

fn mode(perm: u32) -> Mode {
    Mode::from_bits_truncate(perm & 0o7777)
}

/// Opens an existing directory by path, following symlinks (the caller trusts
/// this path: it is the root that everything else is scoped to).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?)
}

fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(fcntl::openat2(root, rel, how)?)
}

/// Resolves the directory `rel` as if `root` were `/` (`openat2` with
/// `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`) and returns an `O_PATH` fd,
/// usable as the directory argument of the other functions here. An empty
/// `rel` is the root itself.
pub fn resolve_dir_in_root(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    open_in_root(root, rel, OFlag::O_PATH)
}

/// Like [`resolve_dir_in_root`] but opens the directory for reading, so that
/// the fd can also change the directory's mode, owner, times and xattrs.
pub fn open_dir_in_root(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    open_in_root(root, rel, OFlag::O_RDONLY)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `Ok(None)` when nothing is there.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Stat>> {
    match stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(to_stat(&st))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `fstat(fd)`.
pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    Ok(to_stat(&stat::fstat(fd)?))
}

/// Creates the directory `name` in `dir` with `perm` (less the umask).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr, perm: u32) -> io::Result<()> {
    Ok(stat::mkdirat(dir, name, mode(perm))?)
}

/// Opens the directory `name` in `dir` for reading; fails with `ELOOP` or
/// `ENOTDIR` instead of following a symlink.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(fcntl::openat(dir, name, flags, Mode::empty())?)
}

/// Creates the regular file `name` in `dir` for writing. Fails if anything,
/// even a dangling symlink, already has that name (`O_CREAT | O_EXCL |
/// O_NOFOLLOW`).
pub fn create_file_at(dir: BorrowedFd<'_>, name: &OsStr, perm: u32) -> io::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(File::from(fcntl::openat(dir, name, flags, mode(perm))?))
}

/// Creates the symlink `name` in `dir` pointing at `target` (stored as is).
pub fn symlink_at(target: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(unistd::symlinkat(target, dir, name)?)
}

/// Creates the hard link `new_name` in `new_dir` to `old_name` in `old_dir`.
/// If `old_name` is a symlink, the link is to the symlink itself.
pub fn hardlink_at(
    old_dir: BorrowedFd<'_>,
    old_name: &OsStr,
    new_dir: BorrowedFd<'_>,
    new_name: &OsStr,
) -> io::Result<()> {
    Ok(unistd::linkat(old_dir, old_name, new_dir, new_name, AtFlags::empty())?)
}

/// Creates a fifo or device node `name` in `dir`.
pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: NodeKind,
    perm: u32,
    major: u64,
    minor: u64,
) -> io::Result<()> {
    let kind = match kind {
        NodeKind::Fifo => SFlag::S_IFIFO,
        NodeKind::CharDevice => SFlag::S_IFCHR,
        NodeKind::BlockDevice => SFlag::S_IFBLK,
    };
    Ok(stat::mknodat(dir, name, kind, mode(perm), stat::makedev(major, minor))?)
}

/// Removes the non-directory `name` from `dir` (a symlink is removed, not
/// followed).
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?)
}

/// Removes `name` from `dir` and, if it is a directory, everything below it.
/// Symlinks are removed, never followed. Returns `false` if nothing was there.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    let Some(st) = stat_at(dir, name)? else { return Ok(false) };
    if st.kind != FileKind::Dir {
        unlink_at(dir, name)?;
        return Ok(true);
    }
    let sub = open_dir_at(dir, name)?;
    for child in list_dir(sub.as_fd())? {
        remove_all_at(sub.as_fd(), &child)?;
    }
    drop(sub);
    unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir)?;
    Ok(true)
}

/// The names in directory `dir` (which may be an `O_PATH` fd), without `.`
/// and `..`, in the order the filesystem returns them.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut handle =
        nix::dir::Dir::openat(dir, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut names = Vec::new();
    for entry in handle.iter() {
        let bytes = entry?.file_name().to_bytes().to_vec();
        if bytes != b"." && bytes != b".." {
            names.push(OsString::from_vec(bytes));
        }
    }
    Ok(names)
}

/// `fchown(fd, uid, gid)`.
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    Ok(unistd::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?)
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`: changes a symlink's
/// own owner rather than its target's.
pub fn chown_at_nofollow(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    Ok(unistd::fchownat(dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?)
}

/// `fchmod(fd, perm)`; `perm` may include setuid, setgid and sticky.
pub fn chmod_fd(fd: BorrowedFd<'_>, perm: u32) -> io::Result<()> {
    Ok(stat::fchmod(fd, mode(perm))?)
}

/// Changes the mode of `name` in `dir` without following a symlink there.
///
/// Uses `fchmodat2(.., AT_SYMLINK_NOFOLLOW)` (Linux 6.6+). On older kernels
/// it checks with `fstatat(AT_SYMLINK_NOFOLLOW)` that `name` is not a symlink
/// and then uses plain `fchmodat`, which is only race-free if nobody else
/// writes to `dir` — true for a private staging directory.
pub fn chmod_at_nofollow(dir: BorrowedFd<'_>, name: &OsStr, perm: u32) -> io::Result<()> {
    let cname = std::ffi::CString::new(name.as_bytes())?;
    // SAFETY: fchmodat2 reads a NUL-terminated path that lives until the call
    // returns and an fd that `dir` keeps open; it writes no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir.as_raw_fd(),
            cname.as_ptr(),
            mode(perm).bits() as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    match stat_at(dir, name)? {
        Some(st) if st.kind == FileKind::Symlink => Err(io::Error::from_raw_os_error(libc::ELOOP)),
        Some(_) => Ok(stat::fchmodat(dir, name, mode(perm), FchmodatFlags::FollowSymlink)?),
        None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

fn timespec(secs: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0)
}

/// Sets access and modification time of the open file `fd` to `mtime`
/// (seconds since the epoch).
pub fn set_mtime_fd(fd: BorrowedFd<'_>, mtime: u64) -> io::Result<()> {
    let t = timespec(mtime);
    Ok(stat::futimens(fd, &t, &t)?)
}

/// Sets access and modification time of `name` in `dir` (a symlink's own
/// times, not its target's).
pub fn set_mtime_at_nofollow(dir: BorrowedFd<'_>, name: &OsStr, mtime: u64) -> io::Result<()> {
    let t = timespec(mtime);
    Ok(stat::utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)?)
}

/// Sets the extended attribute `key` of the open file `fd`.
pub fn set_xattr_fd(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let ckey = std::ffi::CString::new(key)?;
    // SAFETY: the key is NUL-terminated, `value` is valid for `value.len()`
    // bytes, both outlive the call, and `fd` is kept open by the borrow.
    let rc = unsafe { libc::fsetxattr(fd.as_raw_fd(), ckey.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Reads the extended attribute `key` of `path` without following a symlink
/// (`lgetxattr`). `Ok(None)` if the attribute is not set or the filesystem
/// has no xattrs.
pub fn get_xattr_nofollow(path: &Path, key: &str) -> io::Result<Option<Vec<u8>>> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let ckey = std::ffi::CString::new(key)?;
    // SAFETY: path and key are NUL-terminated and outlive the call; the
    // kernel writes at most `buf.len()` bytes into `buf`.
    super::xattr::sized(1 << 16, &[libc::ENODATA, libc::ENOTSUP], |buf| unsafe {
        libc::lgetxattr(cpath.as_ptr(), ckey.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })
}

/// Writes out every dirty page and inode of the filesystem holding `path`
/// (`syncfs(2)`): one call where an fsync per file would take one disk
/// flush each. Since Linux 5.8 it reports writeback errors of that
/// filesystem met since `path` was opened, as fsync does for one file.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    unistd::syncfs(&dir).map_err(io::Error::from)
}
