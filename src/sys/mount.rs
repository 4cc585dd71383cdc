//! Mounting: classic `mount(2)`/`umount2(2)`, `pivot_root(2)`, and the new
//! mount API (`fsopen`, `fsconfig`, `fsmount`, `move_mount`) that the overlay
//! root uses to pass any number of lower layers.
//!
//! Targets are usually given as an fd opened inside a container's root
//! (`RESOLVE_IN_ROOT`) and named through its `/proc/self/fd/N` magic link
//! ([`fd_path`]), so a mount lands exactly on the directory that was
//! resolved, whatever symlinks the image holds.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use nix::mount::MsFlags;
use nix::mount::{self, MntFlags};

/// `/proc/self/fd/N` for an open fd: a path that the kernel resolves to the
/// very file the fd refers to. Valid only while `/proc` is a procfs whose
/// `self` is this process.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `mount(source, target, fstype, flags, data)`.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    Ok(mount::mount(source, target, fstype, flags, data)?)
}

/// Changes the propagation type of `target` (one of `MS_PRIVATE`,
/// `MS_SLAVE`, `MS_SHARED`, `MS_UNBINDABLE`, optionally with `MS_REC`).
pub fn set_propagation(target: &Path, flags: MsFlags) -> io::Result<()> {
    Ok(mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)?)
}

/// `umount2(target, MNT_DETACH)`.
pub fn umount_detach(target: &Path) -> io::Result<()> {
    Ok(mount::umount2(target, MntFlags::MNT_DETACH)?)
}

/// Makes the current directory the root of this mount namespace and
/// detaches the old root: `pivot_root(".", ".")` stacks the old root on top
/// of the new one, and `umount2(".", MNT_DETACH)` removes it, so no
/// directory for the old root is needed inside the new one.
pub fn pivot_root_here() -> io::Result<()> {
    nix::unistd::pivot_root(".", ".")?;
    mount::umount2(".", MntFlags::MNT_DETACH)?;
    Ok(())
}

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL byte"))
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) }
}

/// A filesystem context from `fsopen(2)`, being configured.
pub struct FsContext {
    fd: OwnedFd,
}

impl FsContext {
    /// `fsopen(fstype, FSOPEN_CLOEXEC)`. Fails with `ENOSYS` on kernels
    /// before 5.2.
    pub fn open(fstype: &str) -> io::Result<FsContext> {
        let name = cstring(fstype.as_bytes())?;
        // SAFETY: fsopen reads a NUL-terminated string that outlives the call
        // and returns a new fd or -1.
        let fd = check(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        Ok(FsContext { fd: unsafe { OwnedFd::from_raw_fd(fd as i32) } })
    }

    fn config(&self, cmd: libc::c_uint, key: Option<&CString>, value: Option<&CString>) -> io::Result<()> {
        let key = key.map_or(std::ptr::null(), |k| k.as_ptr());
        let value = value.map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: key and value are NUL-terminated strings (or null, as the
        // command allows) that outlive the call; the fd is ours and open.
        check(unsafe { libc::syscall(libc::SYS_fsconfig, self.fd.as_raw_fd(), cmd, key, value, 0) })?;
        Ok(())
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
    pub fn set_string(&self, key: &str, value: &[u8]) -> io::Result<()> {
        self.config(FSCONFIG_SET_STRING, Some(&cstring(key.as_bytes())?), Some(&cstring(value)?))
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, path)`.
    pub fn set_path(&self, key: &str, path: &Path) -> io::Result<()> {
        self.set_string(key, path.as_os_str().as_bytes())
    }

    /// `fsconfig(FSCONFIG_SET_FLAG, key)`.
    pub fn set_flag(&self, key: &str) -> io::Result<()> {
        self.config(FSCONFIG_SET_FLAG, Some(&cstring(key.as_bytes())?), None)
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)` then `fsmount(FSMOUNT_CLOEXEC)`:
    /// the detached mount, ready for [`move_mount_to`].
    pub fn create_mount(self) -> io::Result<OwnedFd> {
        self.config(FSCONFIG_CMD_CREATE, None, None)?;
        // SAFETY: fsmount takes our open context fd and returns a new fd or -1.
        let fd = check(unsafe { libc::syscall(libc::SYS_fsmount, self.fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })?;
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

/// `move_mount(mount_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`:
/// attaches a detached mount at `target`.
pub fn move_mount_to(mount_fd: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    let empty = cstring(b"")?;
    let target = cstring(target.as_os_str().as_bytes())?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the fd is
    // borrowed, hence open.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// The mount flags of the filesystem at `path` that a bind remount must
/// keep (`statvfs` `f_flag`, as `MS_*`): `MS_RDONLY`, `MS_NOSUID`,
/// `MS_NODEV`, `MS_NOEXEC`, and the atime flags.
pub fn mount_flags_of(path: &Path) -> io::Result<MsFlags> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let f = statvfs(path)?.flags();
    let mut out = MsFlags::empty();
    for (from, to) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(from) {
            out |= to;
        }
    }
    Ok(out)
}

/// Opens `file` through a detached, read-only overlayfs of its directory
/// (no upper layer, attached nowhere): a view that shares the file's page
/// cache but that no one can write through, whatever their capabilities.
/// The mount lives as long as the returned fd.
pub fn read_only_view(file: &Path) -> io::Result<OwnedFd> {
    let dir = file.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file has a directory"))?;
    let name = file.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file has a name"))?;
    // Without an upper layer overlayfs wants two lower layers: the file's
    // directory over an empty one, removed again once the mount holds it.
    let empty = tempfile::Builder::new().prefix(".berth-empty").tempdir()?;
    let lower_plus = || {
        let ctx = FsContext::open("overlay")?;
        ctx.set_path("lowerdir+", dir)?;
        ctx.set_path("lowerdir+", empty.path())?;
        ctx.create_mount()
    };
    let mnt = match lower_plus() {
        // Before Linux 6.5 overlayfs refuses the unknown "lowerdir+" only
        // when the superblock is made; one "lowerdir=a:b" string works there
        // (for paths without the option separators).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let (a, b) = (dir.to_string_lossy(), empty.path().to_string_lossy());
            if [&a, &b].iter().any(|p| p.contains([':', ',', '\\'])) {
                return Err(e);
            }
            let ctx = FsContext::open("overlay")?;
            ctx.set_string("lowerdir", format!("{a}:{b}").as_bytes())?;
            ctx.create_mount()?
        }
        other => other?,
    };
    drop(empty);
    let name = cstring(name.as_bytes())?;
    // SAFETY: openat reads a NUL-terminated name that outlives the call,
    // relative to the mount fd we own; it returns a new fd or -1.
    let fd = unsafe { libc::openat(mnt.as_raw_fd(), name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open_tree(path, OPEN_TREE_CLONE)` then `mount_setattr(MOUNT_ATTR_IDMAP)`
/// with the user namespace `userns`: a detached copy of the mount at `path`
/// whose files' owners are shifted by that namespace's id map (host uid 0
/// shows as the namespace's uid 0, i.e. the host id it maps 0 to).
/// Attach it with [`move_mount_to`].
pub fn idmapped_clone(path: &Path, userns: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let at = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: `at` is NUL-terminated and outlives the call; open_tree returns
    // a new fd or -1.
    let fd = check(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, at.as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    })?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    let empty = cstring(b"")?;
    // SAFETY: `attr` is a valid mount_attr (its size is passed) and `empty`
    // a NUL-terminated string, both outliving the call; the fds are open.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(tree)
}

#[cfg(test)]
mod view_tests {
    use std::io::{Read, Write};

    #[test]
    fn the_view_reads_the_file_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prog");
        std::fs::write(&path, b"#!/bin/sh\necho hi\n").unwrap();
        let fd = super::read_only_view(&path).unwrap();
        let mut text = String::new();
        std::fs::File::from(fd.try_clone().unwrap()).read_to_string(&mut text).unwrap();
        assert_eq!(text, "#!/bin/sh\necho hi\n");
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let err = std::fs::OpenOptions::new().write(true).open(&proc_path).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        let mut f = std::fs::File::open(&path).unwrap();
        let mut again = String::new();
        f.read_to_string(&mut again).unwrap();
        assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&*dir.path().to_string_lossy()));
        let _ = std::io::stdout().flush();
    }
}
