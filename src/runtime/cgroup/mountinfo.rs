//! Finding the cgroup hierarchies: parsing `/proc/self/mountinfo` and
//! choosing between cgroup v2 and v1.
//!
//! A host mounts cgroups in one of three ways:
//!
//! - *unified*: one `cgroup2` filesystem (usually at `/sys/fs/cgroup`) whose
//!   root `cgroup.controllers` lists every controller;
//! - *legacy*: one `cgroup` (v1) filesystem per controller, or per group of
//!   co-mounted controllers such as `cpu,cpuacct`, under `/sys/fs/cgroup/`;
//! - *hybrid*: the v1 controllers plus a `cgroup2` filesystem (systemd puts it
//!   at `/sys/fs/cgroup/unified`) whose controllers are the ones no v1 mount
//!   claimed, usually none that berth needs.
//!
//! [`detect_from`] takes v2 when a `cgroup2` mount offers all of `memory`,
//! `cpu` and `pids`; otherwise the v1 controllers when any of those three is
//! mounted as v1 (so hybrid hosts run on v1); otherwise a `cgroup2` mount
//! with whatever it offers (creating a cgroup then names the missing
//! controller). Only [`detect`] reads the real mount table.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// The controllers berth's limits need; a v2 hierarchy offering all of them
/// is preferred over v1.
pub(super) const NEEDED: [&str; 3] = ["memory", "cpu", "pids"];

/// Mount options of a v1 cgroup filesystem that are not controller names.
const V1_OPTIONS: [&str; 8] = ["rw", "ro", "noprefix", "clone_children", "xattr", "none", "all", "cpuset_v2_mode"];

/// Where cgroups are managed on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1: controller name (`memory`, `cpu`, …, and named
    /// hierarchies such as `name=systemd`) → the mount point of its
    /// hierarchy. Co-mounted controllers share a mount point.
    V1 { controllers: BTreeMap<String, PathBuf> },
    /// cgroup v2: the mount point of the unified hierarchy.
    V2 { root: PathBuf },
    /// No cgroup this process may write: berth runs without root and no
    /// subtree is delegated to it. Containers run without a cgroup; a limit
    /// asked for is refused with `why` (see [`CgroupError::NotDelegated`]).
    Unavailable { why: String },
}

/// One cgroup mount from mountinfo.
#[derive(Debug, PartialEq, Eq)]
struct CgroupMount {
    /// The mount point, already placed under the caller's root.
    point: PathBuf,
    /// Whether the mount shows the hierarchy's root (not a bind of a subtree).
    whole: bool,
    /// `None` for cgroup2; the controller names for v1.
    v1_controllers: Option<Vec<String>>,
}

/// Reads `/proc/self/mountinfo` and picks the hierarchy to use.
pub fn detect() -> Result<Hierarchy, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text =
        fs::read_to_string(path).map_err(|source| CgroupError::ReadMountinfo { path: path.to_path_buf(), source })?;
    let found = detect_from(&text, Path::new("/"))?;
    if crate::runtime::userns::rootless() {
        return Ok(rootless(found));
    }
    Ok(found)
}

/// What a rootless berth may use on a host whose hierarchy is `found`: the
/// v2 subtree delegated to the user ([`super::delegated`]), else nothing.
fn rootless(found: Hierarchy) -> Hierarchy {
    let Hierarchy::V2 { root } = &found else { return Hierarchy::Unavailable { why: not_delegated(&found) } };
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(own) = super::delegated::own_cgroup(&own) else {
        return Hierarchy::Unavailable { why: not_delegated(&found) };
    };
    let owner = |p: &Path| fs::metadata(p).ok().map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    match super::delegated::find(root, own, crate::sys::euid(), &owner) {
        Ok(root) => Hierarchy::V2 { root },
        Err(why) => Hierarchy::Unavailable { why },
    }
}

/// Why a rootless berth has no cgroup on a host whose hierarchy is `found`.
fn not_delegated(found: &Hierarchy) -> String {
    match found {
        Hierarchy::V2 { .. } => "berth runs without root and is in no cgroup v2 subtree delegated to you (no \
                                 `0::` line in /proc/self/cgroup)"
            .to_owned(),
        _ => "berth runs without root on a cgroup v1 host, where no cgroup can be delegated to a user; limits \
              need root, or a cgroup v2 host with a systemd user session that delegates the memory, cpu and pids \
              controllers (systemd.unified_cgroup_hierarchy=1, Delegate=yes in user@.service)"
            .to_owned(),
    }
}

/// Picks the hierarchy described by `mountinfo` (the text of a
/// `/proc/<pid>/mountinfo`). Mount points are looked up under `root` (`/` for
/// the real system, a temporary directory in tests) to read a v2
/// hierarchy's `cgroup.controllers`; nothing else is touched.
pub fn detect_from(mountinfo: &str, root: &Path) -> Result<Hierarchy, CgroupError> {
    let mounts = parse(mountinfo, root)?;

    let mut v1: BTreeMap<String, (bool, PathBuf)> = BTreeMap::new();
    for mount in &mounts {
        for name in mount.v1_controllers.iter().flatten() {
            // The first mount of a controller wins, unless a later one shows
            // the whole hierarchy and the first did not.
            let replace = match v1.get(name) {
                None => true,
                Some((whole, _)) => !whole && mount.whole,
            };
            if replace {
                v1.insert(name.clone(), (mount.whole, mount.point.clone()));
            }
        }
    }

    let v2: Vec<(&CgroupMount, Vec<String>)> =
        mounts.iter().filter(|m| m.v1_controllers.is_none()).map(|m| (m, v2_controllers(&m.point))).collect();
    let full_v2 =
        v2.iter().filter(|(_, have)| NEEDED.iter().all(|n| have.iter().any(|h| h == n))).max_by_key(|(m, _)| m.whole);
    if let Some((mount, _)) = full_v2 {
        return Ok(Hierarchy::V2 { root: mount.point.clone() });
    }
    if NEEDED.iter().any(|n| v1.contains_key(*n)) {
        let controllers = v1.into_iter().map(|(k, (_, p))| (k, p)).collect();
        return Ok(Hierarchy::V1 { controllers });
    }
    let best_v2 =
        v2.iter().max_by_key(|(m, have)| (m.whole, NEEDED.iter().filter(|n| have.iter().any(|h| h == *n)).count()));
    match best_v2 {
        Some((mount, _)) => Ok(Hierarchy::V2 { root: mount.point.clone() }),
        None => Err(CgroupError::NoHierarchy { path: PathBuf::from("/proc/self/mountinfo") }),
    }
}

/// The controllers a v2 cgroup offers (its `cgroup.controllers`); none when
/// the file cannot be read.
fn v2_controllers(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Every cgroup and cgroup2 mount in `mountinfo`, mount points placed under
/// `root`.
fn parse(mountinfo: &str, root: &Path) -> Result<Vec<CgroupMount>, CgroupError> {
    let bad =
        |line: usize, reason| CgroupError::Mountinfo { path: PathBuf::from("/proc/self/mountinfo"), line, reason };
    let mut mounts = Vec::new();
    for (index, line) in mountinfo.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        // id parent major:minor root mount-point options [optional…] - fstype source super-options
        let (before, after) = line.split_once(" - ").ok_or_else(|| bad(number, "no \" - \" separator"))?;
        let fields: Vec<&str> = before.split(' ').collect();
        if fields.len() < 6 {
            return Err(bad(number, "fewer than six fields before the separator"));
        }
        let after: Vec<&str> = after.split(' ').collect();
        if after.len() < 3 {
            return Err(bad(number, "fewer than three fields after the separator"));
        }
        let (fstype, super_options) = (after[0], after[2]);
        let v1_controllers = match fstype {
            "cgroup2" => None,
            "cgroup" => Some(
                super_options
                    .split(',')
                    .filter(|o| !V1_OPTIONS.contains(o) && !o.starts_with("release_agent="))
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => continue,
        };
        let point = unescape(fields[4]);
        let relative = point.strip_prefix('/').unwrap_or(&point);
        mounts.push(CgroupMount { point: root.join(relative), whole: fields[3] == "/", v1_controllers });
    }
    Ok(mounts)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`,
/// `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This development host: v1 controllers plus an almost empty v2.
    const HYBRID_HOST: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A current systemd host (Debian 12, Fedora): unified only.
    const SYSTEMD_V2: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
29 25 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw
";

    /// CentOS 7 style: v1 only, co-mounted controllers, systemd options.
    const LEGACY_V1: &str = "\
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
29 24 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
30 24 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
31 24 0:27 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,freezer
";

    fn with_controllers(dir: &Path, rel: &str, list: &str) {
        let at = dir.join(rel);
        fs::create_dir_all(&at).unwrap();
        fs::write(at.join("cgroup.controllers"), list).unwrap();
    }

    #[test]
    fn hybrid_host_uses_v1() {
        let tmp = tempfile::tempdir().unwrap();
        with_controllers(tmp.path(), "sys/fs/cgroup/unified", "hugetlb\n");
        let h = detect_from(HYBRID_HOST, tmp.path()).unwrap();
        let Hierarchy::V1 { controllers } = h else { panic!("expected v1, got {h:?}") };
        assert_eq!(controllers["memory"], tmp.path().join("sys/fs/cgroup/memory"));
        assert_eq!(controllers["pids"], tmp.path().join("sys/fs/cgroup/pids"));
        assert_eq!(controllers["name=systemd"], tmp.path().join("sys/fs/cgroup/systemd"));
        assert_eq!(controllers.len(), 9);
    }

    #[test]
    fn hybrid_host_with_unreadable_v2_uses_v1() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(detect_from(HYBRID_HOST, tmp.path()).unwrap(), Hierarchy::V1 { .. }));
    }

    #[test]
    fn systemd_v2_host_uses_v2() {
        let tmp = tempfile::tempdir().unwrap();
        with_controllers(tmp.path(), "sys/fs/cgroup", "cpuset cpu io memory hugetlb pids rdma misc\n");
        let h = detect_from(SYSTEMD_V2, tmp.path()).unwrap();
        assert_eq!(h, Hierarchy::V2 { root: tmp.path().join("sys/fs/cgroup") });
    }

    #[test]
    fn v2_missing_controllers_is_still_v2_without_v1() {
        let tmp = tempfile::tempdir().unwrap();
        with_controllers(tmp.path(), "sys/fs/cgroup", "cpu io\n");
        let h = detect_from(SYSTEMD_V2, tmp.path()).unwrap();
        assert_eq!(h, Hierarchy::V2 { root: tmp.path().join("sys/fs/cgroup") });
    }

    #[test]
    fn legacy_v1_keeps_co_mounted_controllers_and_skips_options() {
        let tmp = tempfile::tempdir().unwrap();
        let Hierarchy::V1 { controllers } = detect_from(LEGACY_V1, tmp.path()).unwrap() else { panic!("expected v1") };
        let comounted = tmp.path().join("sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(controllers["cpu"], comounted);
        assert_eq!(controllers["cpuacct"], comounted);
        let names: Vec<&str> = controllers.keys().map(String::as_str).collect();
        assert_eq!(names, ["cpu", "cpuacct", "freezer", "memory", "name=systemd", "pids"]);
    }

    #[test]
    fn hierarchy_root_preferred_over_bind_of_subtree() {
        let text = "\
1 0 0:1 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
2 0 0:1 / /mnt/memory rw - cgroup cgroup rw,memory
";
        let Hierarchy::V1 { controllers } = detect_from(text, Path::new("/")).unwrap() else { panic!("expected v1") };
        assert_eq!(controllers["memory"], Path::new("/mnt/memory"));
    }

    #[test]
    fn escaped_mount_points() {
        let text = "1 0 0:1 / /mnt/cg\\040roups rw shared:1 - cgroup2 cgroup2 rw\n";
        let h = detect_from(text, Path::new("/")).unwrap();
        assert_eq!(h, Hierarchy::V2 { root: PathBuf::from("/mnt/cg roups") });
    }

    #[test]
    fn no_cgroups_and_malformed_lines() {
        let none = "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n";
        assert!(matches!(detect_from(none, Path::new("/")), Err(CgroupError::NoHierarchy { .. })));
        let err = detect_from("22 1 0:21 / / rw\n", Path::new("/")).unwrap_err();
        assert!(matches!(err, CgroupError::Mountinfo { line: 1, .. }), "{err}");
    }

    #[test]
    fn real_host_is_readable() {
        // Whatever this machine mounts, detection must not fail on its text.
        detect().unwrap();
    }
}
