//! Device nodes (`linux.devices`), the standard `/dev` symlinks and
//! `/dev/console`.
//!
//! Nodes are made with `mknodat` in the container's `/dev` (a fresh tmpfs);
//! where the kernel refuses `mknod` (inside a user namespace, say), the
//! host's node of the same path is bind-mounted instead, as runc does.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::{MountError, step};
use crate::sys::fs::{self as sysfs, NodeKind};
use crate::sys::mount::{self as sysmount, MsFlags, fd_path};
use crate::sys::scoped;

/// One device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Device {
    /// Absolute path in the container, e.g. `/dev/null`.
    path: PathBuf,
    kind: NodeKind,
    major: u64,
    minor: u64,
    perm: u32,
    uid: u32,
    gid: u32,
}

pub(super) fn from_spec(list: &[LinuxDevice]) -> Vec<Device> {
    list.iter()
        .filter_map(|d| {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => NodeKind::CharDevice,
                LinuxDeviceType::B => NodeKind::BlockDevice,
                LinuxDeviceType::P => NodeKind::Fifo,
                LinuxDeviceType::A => return None,
            };
            Some(Device {
                path: d.path().clone(),
                kind,
                major: d.major().max(0) as u64,
                minor: d.minor().max(0) as u64,
                perm: d.file_mode().unwrap_or(0o666) & 0o7777,
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            })
        })
        .collect()
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "a device path needs a file name")),
    }
}

/// Creates the node (replacing whatever the image had there), with its
/// mode and owner; falls back to bind-mounting the host's node.
pub(super) fn create(root: BorrowedFd<'_>, d: &Device) -> Result<(), MountError> {
    let (parent, name) = split(&d.path).map_err(step("creating the device", &d.path))?;
    let dir = scoped::mkdir_all(root, parent, 0o755).map_err(step("creating the directory of", &d.path))?;
    match sysfs::stat_at(dir.as_fd(), name) {
        Ok(Some(_)) => {
            sysfs::remove_all_at(dir.as_fd(), name).map_err(step("replacing", &d.path))?;
        }
        Ok(None) => {}
        Err(e) => return Err(step("looking at", &d.path)(e)),
    }
    match sysfs::mknod_at(dir.as_fd(), name, d.kind, d.perm, d.major, d.minor) {
        Ok(()) => {
            // mknod applies the umask: set the mode the spec asked for.
            sysfs::chmod_at_nofollow(dir.as_fd(), name, d.perm).map_err(step("setting the mode of", &d.path))?;
            sysfs::chown_at_nofollow(dir.as_fd(), name, d.uid, d.gid).map_err(step("setting the owner of", &d.path))
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let target = scoped::ensure_file(root, &d.path, 0o644).map_err(step("creating", &d.path))?;
            sysmount::mount(Some(&d.path), &fd_path(target.as_fd()), None, MsFlags::MS_BIND, None)
                .map_err(step("bind-mounting the host's node (mknod refused) at", &d.path))
        }
        Err(e) => Err(step("mknod", &d.path)(e)),
    }
}

/// `/dev/fd`, `/dev/stdin`, `/dev/stdout`, `/dev/stderr` and `/dev/ptmx`
/// (to the container's own devpts instance), unless the image or the spec
/// already put something there.
pub(super) fn default_links(root: BorrowedFd<'_>) -> Result<(), MountError> {
    let dev = Path::new("/dev");
    let dir = match scoped::open_path(root, dev) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(step("opening", dev)(e)),
    };
    let has_pts = scoped::kind(root, Path::new("/dev/pts/ptmx")).map_err(step("looking at", dev))?.is_some();
    let links: &[(&str, &str)] = &[
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for &(name, target) in links {
        let name = OsStr::new(name);
        if name == "ptmx" && has_pts {
            // Replace a ptmx device node: ptys must come from the container's
            // own devpts instance.
            if let Ok(Some(st)) = sysfs::stat_at(dir.as_fd(), name)
                && st.kind != sysfs::FileKind::Symlink
            {
                sysfs::unlink_at(dir.as_fd(), name).map_err(step("replacing", Path::new("/dev/ptmx")))?;
            }
        } else if name == "ptmx" {
            continue;
        }
        match sysfs::symlink_at(OsStr::new(target), dir.as_fd(), name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(step("creating the symlink", &Path::new("/dev").join(name))(e)),
        }
    }
    Ok(())
}

/// Bind-mounts the terminal `console` at `/dev/console`.
pub(super) fn console(root: BorrowedFd<'_>, console: BorrowedFd<'_>) -> Result<(), MountError> {
    let path = Path::new("/dev/console");
    let target = scoped::ensure_file(root, path, 0o600).map_err(step("creating", path))?;
    // The fd's mount belongs to the mount namespace it was opened in, which
    // a bind mount may not take from: bind its path (e.g. /dev/pts/3) in
    // this namespace's copy of the host's mounts instead.
    let tty = std::fs::read_link(fd_path(console)).map_err(step("finding the terminal's name for", path))?;
    sysmount::mount(Some(&tty), &fd_path(target.as_fd()), None, MsFlags::MS_BIND, None)
        .map_err(step(format!("bind-mounting the terminal {} at", tty.display()), path))
}

/// Directories of `/dev` a privileged container does not take from the
/// host: it has its own ptys, shared memory and message queues.
const NOT_FROM_HOST: &[&str] = &["pts", "shm", "mqueue", "fd"];

/// The host's character and block devices under `dev` (recursively, but
/// not the container's own `pts`, `shm`, `mqueue`, nor `console`), as
/// spec entries with their host mode and owner: what `--privileged` gives a
/// container, as Docker does.
pub fn host_devices(dev: &Path) -> Vec<LinuxDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut dirs = vec![dev.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            let kind = meta.file_type();
            let top = dir == dev;
            if kind.is_dir() {
                if !(top && NOT_FROM_HOST.iter().any(|n| entry.file_name() == *n)) {
                    dirs.push(path);
                }
                continue;
            }
            let typ = if kind.is_char_device() {
                LinuxDeviceType::C
            } else if kind.is_block_device() {
                LinuxDeviceType::B
            } else {
                continue;
            };
            if top && entry.file_name() == "console" {
                continue;
            }
            let Ok(in_container) = path.strip_prefix(dev).map(|rel| Path::new("/dev").join(rel)) else { continue };
            let mut d = LinuxDevice::default();
            d.set_path(in_container);
            d.set_typ(typ);
            d.set_major(nix::sys::stat::major(meta.rdev()) as i64);
            d.set_minor(nix::sys::stat::minor(meta.rdev()) as i64);
            d.set_file_mode(Some(meta.mode() & 0o7777));
            d.set_uid(Some(meta.uid()));
            d.set_gid(Some(meta.gid()));
            out.push(d);
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_devices_are_the_hosts_nodes_with_their_numbers() {
        let devices = host_devices(Path::new("/dev"));
        let null = devices.iter().find(|d| d.path() == Path::new("/dev/null")).expect("/dev/null");
        assert_eq!((null.typ(), null.major(), null.minor()), (LinuxDeviceType::C, 1, 3));
        assert!(devices.iter().all(|d| !d.path().starts_with("/dev/pts") && d.path() != Path::new("/dev/console")));
    }
}
