//! `/sys/fs/cgroup` inside a container, mirroring the host's layout.
//!
//! On a host with only cgroup v2 this is one `cgroup2` mount. On a v1 or
//! hybrid host (like the test machines: one v1 hierarchy per controller
//! under `/sys/fs/cgroup/<name>`, plus an empty v2 hierarchy at
//! `/sys/fs/cgroup/unified`) it is what Docker and runc make: a tmpfs at
//! `/sys/fs/cgroup`, one fresh mount of each host hierarchy under it (same
//! controllers or `name=`), the host's symlinks (`cpu -> cpu,cpuacct`), and
//! the tmpfs made read-only last. Mounted after the container entered its
//! own cgroup namespace, each hierarchy shows the container's cgroup as its
//! root, so the container sees its own limits and nothing of the host's
//! tree.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::{MountError, step};
use crate::sys::fs as sysfs;
use crate::sys::mount::{self as sysmount, MsFlags, fd_path};
use crate::sys::scoped;

/// One cgroup hierarchy mounted directly under the host's `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hierarchy {
    /// Directory name under `/sys/fs/cgroup` (`cpu`, `systemd`, `unified`).
    name: String,
    /// `cgroup` or `cgroup2`.
    fstype: String,
    /// The superblock options that select the hierarchy (`cpu,cpuacct`,
    /// `name=systemd`), without `rw`/`ro`.
    options: String,
}

/// The host's cgroup layout under `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostCgroups {
    /// `/sys/fs/cgroup` is itself a cgroup2 mount (or nothing is mounted:
    /// then cgroup2 is tried all the same).
    Unified,
    /// v1 hierarchies (and maybe a v2 one) in a tmpfs.
    Legacy { hierarchies: Vec<Hierarchy>, links: Vec<(String, String)> },
}

impl HostCgroups {
    pub(super) fn none() -> HostCgroups {
        HostCgroups::Legacy { hierarchies: Vec::new(), links: Vec::new() }
    }
}

/// Reads the host's layout from `/proc/self/mountinfo` and the symlinks in
/// `/sys/fs/cgroup`.
pub(super) fn detect() -> Result<HostCgroups, MountError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| MountError::Mountinfo { source })?;
    let mut links = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                links.push((entry.file_name().to_string_lossy().into_owned(), target.to_string_lossy().into_owned()));
            }
        }
    }
    Ok(parse_mountinfo(&text, links))
}

fn parse_mountinfo(text: &str, links: Vec<(String, String)>) -> HostCgroups {
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let (fstype, _source, sopts) = (r.next().unwrap_or(""), r.next(), r.next().unwrap_or(""));
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if mount_point == "/sys/fs/cgroup" && fstype == "cgroup2" {
            return HostCgroups::Unified;
        }
        let Some(name) = mount_point.strip_prefix("/sys/fs/cgroup/") else { continue };
        if name.contains('/') || hierarchies.iter().any(|h| h.name == name) {
            continue;
        }
        let options: Vec<&str> = sopts.split(',').filter(|o| !matches!(*o, "rw" | "ro" | "")).collect();
        hierarchies.push(Hierarchy { name: name.to_string(), fstype: fstype.to_string(), options: options.join(",") });
    }
    if hierarchies.is_empty() {
        return HostCgroups::Unified;
    }
    HostCgroups::Legacy { hierarchies, links }
}

/// Mounts the cgroup filesystem(s) at `dest` inside `root` with `flags`
/// (`MS_RDONLY` and friends).
pub(super) fn mount(root: BorrowedFd<'_>, dest: &Path, flags: MsFlags, host: &HostCgroups) -> Result<(), MountError> {
    let target = scoped::mkdir_all(root, dest, 0o755).map_err(step("creating the mount point", dest))?;
    let (hierarchies, links) = match host {
        HostCgroups::Unified => {
            return sysmount::mount(Some(Path::new("cgroup2")), &fd_path(target.as_fd()), Some("cgroup2"), flags, None)
                .map_err(step("mounting cgroup2 on", dest));
        }
        HostCgroups::Legacy { hierarchies, links } => (hierarchies, links),
    };
    let tmpfs_flags = (flags - MsFlags::MS_RDONLY) | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sysmount::mount(Some(Path::new("tmpfs")), &fd_path(target.as_fd()), Some("tmpfs"), tmpfs_flags, Some("mode=755"))
        .map_err(step("mounting the tmpfs for cgroup hierarchies on", dest))?;
    let base = scoped::open_path(root, dest).map_err(step("reopening", dest))?;
    for h in hierarchies {
        let path = dest.join(&h.name);
        sysfs::mkdir_at(base.as_fd(), h.name.as_ref(), 0o755).map_err(step("creating", &path))?;
        let at = scoped::open_path(root, &path).map_err(step("opening", &path))?;
        let data = if h.options.is_empty() { None } else { Some(h.options.as_str()) };
        sysmount::mount(Some(Path::new(&h.fstype)), &fd_path(at.as_fd()), Some(&h.fstype), flags, data)
            .map_err(step(format!("mounting {} ({}) on", h.fstype, h.options), &path))?;
    }
    for (name, target) in links {
        sysfs::symlink_at(target.as_ref(), base.as_fd(), name.as_ref())
            .map_err(step("creating the symlink", &dest.join(name)))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags;
        sysmount::mount(None, &fd_path(base.as_fd()), None, remount, None).map_err(step("making read-only", dest))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 0:29 / /other/cpu rw,relatime - cgroup cgroup rw,cpu
";

    #[test]
    fn hybrid_layout_lists_each_hierarchy_once() {
        let HostCgroups::Legacy { hierarchies, .. } = parse_mountinfo(HYBRID, Vec::new()) else { panic!() };
        let got: Vec<(&str, &str, &str)> =
            hierarchies.iter().map(|h| (h.name.as_str(), h.fstype.as_str(), h.options.as_str())).collect();
        assert_eq!(
            got,
            [
                ("cpu", "cgroup", "cpu"),
                ("cpu,cpuacct", "cgroup", "cpu,cpuacct"),
                ("systemd", "cgroup", "xattr,name=systemd"),
                ("unified", "cgroup2", "")
            ]
        );
    }

    #[test]
    fn pure_v2_is_one_mount() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(parse_mountinfo(text, Vec::new()), HostCgroups::Unified);
    }
}
