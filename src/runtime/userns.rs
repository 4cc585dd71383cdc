//! berth without root: the user namespace an ordinary user's berth works in.
//!
//! # The idea
//!
//! An ordinary user's berth does its work as root of a user namespace whose
//! id map gives container root the user's own uid and container ids
//! `1..=N` the user's subordinate range from `/etc/subuid` and
//! `/etc/subgid` (written by the setuid helpers `newuidmap`/`newgidmap`,
//! Debian's `uidmap`, as podman does). Inside it berth is uid 0 with every
//! capability over the namespaces it makes, so the same code as root's
//! unpacks layers with their owners, mounts overlay (`userxattr`, opaque
//! directories as `user.overlay.opaque`; whiteouts stay 0/0 character
//! devices, which Linux 5.8+ lets a namespace's root make), creates
//! namespaces and writes layers with the ids the image means. Files on disk
//! belong to the mapped host ids, as in podman's rootless storage; layer
//! tars carry the ids as seen inside, so digests do not depend on who built
//! an image.
//!
//! # One namespace per store, held by a process that does nothing
//!
//! Detached containers outlive the invocation that started them, and a later
//! `exec`, `stop` or `logs` must reach them. A process has no capability
//! over namespaces owned by a *sibling* user namespace, but a process whose
//! euid owns a user namespace has every capability in it. So the first
//! verb that needs the namespace forks a **holder**, which makes a user and
//! a mount namespace, gets its maps, detaches and sleeps
//! ([`crate::sys::userns`]); its pid is kept in `STORE/userns/pid` and every
//! later verb joins its namespaces with `setns` (user first, then mount)
//! while still single-threaded. This is podman's pause process, one per
//! store rather than per user (each store has its own holder, so a test's
//! store and its processes go together).
//!
//! Why not a user namespace per container, made by its shim: each verb
//! would then have to find the right container's namespace before doing
//! anything, `build`, `load` and `gc` (which touch files owned by
//! subordinate ids but no container) would each make and map a new one
//! (two setuid helpers, a few milliseconds, on every call), and a project's
//! shared network namespace, a bind mount in the store, would vanish with
//! the mount namespace of the invocation that made it. With one holder the
//! cost of entering is two `setns` (well under a millisecond) and the bind
//! mounts persist in the holder's mount namespace.
//!
//! Verbs that only read the store's JSON (`ps`, `images`, `logs`, …) do not
//! enter at all: those files belong to the user.
//!
//! Should the holder die while containers run, their shims keep the old
//! namespace alive but a new holder makes a new one, and verbs can no longer
//! reach those containers (stop them by pid); podman has the same limit.
//!
//! # With no subordinate range
//!
//! Without a line for the user in `/etc/subuid` and `/etc/subgid`, berth
//! maps container root alone (which needs no helper). Files and `user`s of
//! an image with other ids then cannot be made; the error says so and names
//! the `usermod --add-subuids` that fixes it.
//!
//! # Limits
//!
//! No cgroup is writable to an ordinary user unless systemd delegated a v2
//! subtree; see `cgroup` (`Hierarchy::Unavailable`).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::store::layout::{PASS_THROUGH_MODE, PRIVATE_MODE, private_dir};
use crate::sys;
use crate::sys::lock::{self, LockMode};

/// Why the user namespace could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("rootless: cannot use {}: {source} (the store's directory must be writable by you)", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error(
        "rootless: cannot make a user namespace: {source} (user namespaces must be enabled: \
         sysctl user.max_user_namespaces > 0, and kernel.unprivileged_userns_clone=1 where it exists)"
    )]
    Unshare { source: io::Error },
    #[error(
        "rootless: {tool} {args} failed: {why} (is the `uidmap` package installed, and is the range yours in {file}?)"
    )]
    Map { tool: &'static str, args: String, why: String, file: &'static str },
    #[error("rootless: cannot join the user namespace of the holder process {pid} ({}): {source}", pidfile.display())]
    Join { pid: i32, pidfile: PathBuf, source: io::Error },
    #[error("rootless: cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
}

/// One line of an id map: `size` ids from `container` inside are `host`
/// outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// Whether this process works without real root: an ordinary user, or
/// root of a user namespace that is not the initial one (a rootless berth
/// after [`enter`]).
pub fn rootless() -> bool {
    sys::euid() != 0 || in_user_namespace()
}

/// Whether this process lives in a user namespace other than the initial
/// one (its uid map is not the identity over all ids).
pub fn in_user_namespace() -> bool {
    sys::userns::in_user_namespace()
}

/// The subordinate range of user `name` (or uid `id`) in a `/etc/subuid`
/// style text: the first `NAME:START:COUNT` (or `ID:START:COUNT`) line.
pub fn parse_subids(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut parts = line.trim().split(':');
        let (who, start, count) = (parts.next()?, parts.next()?, parts.next()?);
        if who != name && who.parse::<u32>().ok() != Some(id) {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse().ok()?);
        (count > 0).then_some((start, count))
    })
}

/// The id map for the user `id` with subordinate range `sub`: container 0
/// is `id`, container `1..=count` the range.
pub fn id_map(id: u32, sub: Option<(u32, u32)>) -> Vec<IdRange> {
    let mut map = vec![IdRange { container: 0, host: id, size: 1 }];
    if let Some((start, count)) = sub {
        map.push(IdRange { container: 1, host: start, size: count });
    }
    map
}

/// The ids of `ids` that the id map `map` (the text of a `uid_map` or
/// `gid_map`: `INSIDE OUTSIDE COUNT` lines) has no line for.
pub fn unmapped(map: &str, ids: &[u32]) -> Vec<u32> {
    let ranges: Vec<(u64, u64)> = map
        .lines()
        .filter_map(|line| {
            let f: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| (f[0], f[0] + f[2]))
        })
        .collect();
    let mut out: Vec<u32> =
        ids.iter().copied().filter(|&id| !ranges.iter().any(|&(lo, hi)| (lo..hi).contains(&u64::from(id)))).collect();
    out.dedup();
    out
}

/// Checks that this process's user namespace has ids for a container
/// process running as `uid` and `gid` (berth without root and no
/// subordinate range maps container root alone). Returns the ids it lacks,
/// as `uid N` / `gid N`, or nothing. Supplementary groups are not checked:
/// the process skips those its namespace cannot hold, as podman does.
pub fn missing_ids(uid: u32, gid: u32) -> Vec<String> {
    if !in_user_namespace() {
        return Vec::new();
    }
    let (uids, gids) = (sys::userns::own_uid_map().unwrap_or_default(), sys::userns::own_gid_map().unwrap_or_default());
    let mut out: Vec<String> = unmapped(&uids, &[uid]).iter().map(|u| format!("uid {u}")).collect();
    out.extend(unmapped(&gids, &[gid]).iter().map(|g| format!("gid {g}")));
    out
}

/// Where a store keeps its holder's pid and lock.
fn holder_dir(store_root: &Path) -> PathBuf {
    store_root.join("userns")
}

/// Enters the store's user namespace when this process is an ordinary
/// user (does nothing for root). Joins the holder recorded for the store,
/// or makes one. Call while the process has one thread. The working
/// directory is kept (joining a mount namespace resets it to `/`).
pub fn enter(store_root: &Path) -> Result<(), UsernsError> {
    if sys::euid() == 0 {
        return Ok(());
    }
    let dir = holder_dir(store_root);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UsernsError::Dir { path, source }
    };
    // The store may not exist yet: made here, it is private from the start.
    for (path, mode) in [(store_root, PASS_THROUGH_MODE), (dir.as_path(), PRIVATE_MODE)] {
        match private_dir(path, mode) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err(path)(e)),
            _ => {}
        }
    }
    let lock_path = dir.join("lock");
    let file = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
    let _held = lock::lock(file, LockMode::Exclusive).map_err(io_err(&lock_path))?;
    let pidfile = dir.join("pid");
    let pid = match live_holder(&pidfile) {
        Some(pid) => pid,
        None => make_holder(&dir, &pidfile)?,
    };
    let cwd = std::env::current_dir().ok();
    sys::userns::join(pid).map_err(|source| UsernsError::Join { pid: pid.as_raw(), pidfile, source })?;
    if let Some(cwd) = cwd {
        let _ = sys::proc::chdir(&cwd);
    }
    Ok(())
}

/// The pid of the holder in `pidfile` if it is still the holder: alive,
/// named [`sys::userns::HOLDER_COMM`] and ours.
pub fn live_holder(pidfile: &Path) -> Option<Pid> {
    let pid: i32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let pid = Pid::from_raw(pid);
    let ours = sys::userns::proc_owner(pid)? == sys::userns::real_ids().0;
    (ours && sys::userns::comm(pid)?.as_str() == sys::userns::HOLDER_COMM).then_some(pid)
}

fn make_holder(dir: &Path, pidfile: &Path) -> Result<Pid, UsernsError> {
    let holder = sys::userns::fork_holder(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|source| UsernsError::Unshare { source })?;
    if let Err(e) = write_maps(holder.pid()) {
        holder.abandon();
        return Err(e);
    }
    let pid = holder.pid();
    let tmp = dir.join(format!("pid.{}", std::process::id()));
    let recorded = fs::write(&tmp, pid.to_string()).and_then(|()| fs::rename(&tmp, pidfile));
    if let Err(source) = recorded {
        let _ = fs::remove_file(&tmp);
        holder.abandon();
        return Err(UsernsError::Dir { path: pidfile.to_path_buf(), source });
    }
    holder.release().map_err(|source| UsernsError::Unshare { source })?;
    Ok(pid)
}

/// Writes the uid and gid maps of process `pid`: with `newuidmap` and
/// `newgidmap` when the user has subordinate ranges, else container root
/// alone, directly.
fn write_maps(pid: Pid) -> Result<(), UsernsError> {
    let (uid, gid) = sys::userns::real_ids();
    let name = nix::unistd::User::from_uid(uid.into()).ok().flatten().map(|u| u.name).unwrap_or_default();
    let group = nix::unistd::Group::from_gid(gid.into()).ok().flatten().map(|g| g.name).unwrap_or_default();
    let subuid = read_subids("/etc/subuid", &name, uid)?;
    let subgid = read_subids("/etc/subgid", &group, gid).and_then(|g| match g {
        // /etc/subgid is keyed by the user's name too (as useradd writes it).
        None => read_subids("/etc/subgid", &name, uid),
        some => Ok(some),
    })?;
    match (subuid, subgid) {
        (Some(u), Some(g)) => {
            run_helper("newuidmap", pid, &id_map(uid, Some(u)), "/etc/subuid")?;
            run_helper("newgidmap", pid, &id_map(gid, Some(g)), "/etc/subgid")
        }
        _ => {
            let fail = |tool: &'static str, file: &'static str| {
                move |e: io::Error| UsernsError::Map { tool, args: pid.to_string(), why: e.to_string(), file }
            };
            sys::userns::write_map(pid, "uid_map", &format!("0 {uid} 1\n")).map_err(fail("uid_map", "/etc/subuid"))?;
            sys::userns::deny_setgroups(pid).map_err(fail("setgroups", "/etc/subgid"))?;
            sys::userns::write_map(pid, "gid_map", &format!("0 {gid} 1\n")).map_err(fail("gid_map", "/etc/subgid"))
        }
    }
}

fn read_subids(path: &str, name: &str, id: u32) -> Result<Option<(u32, u32)>, UsernsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(parse_subids(&text, name, id)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UsernsError::Read { path: PathBuf::from(path), source }),
    }
}

fn run_helper(tool: &'static str, pid: Pid, map: &[IdRange], file: &'static str) -> Result<(), UsernsError> {
    let mut args = vec![pid.to_string()];
    for r in map {
        args.extend([r.container.to_string(), r.host.to_string(), r.size.to_string()]);
    }
    let shown = args.join(" ");
    let fail = |why: String| UsernsError::Map { tool, args: shown.clone(), why, file };
    let out = Command::new(tool).args(&args).output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(fail(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_id() {
        let text = "alice:100000:65536\n1001:300000:1000\nbob:0:0\n";
        assert_eq!(parse_subids(text, "alice", 1000), Some((100000, 65536)));
        assert_eq!(parse_subids(text, "carol", 1001), Some((300000, 1000)));
        assert_eq!(parse_subids(text, "bob", 1002), None, "an empty range is no range");
        assert_eq!(parse_subids(text, "dave", 7), None);
    }

    #[test]
    fn map_puts_root_on_the_user_and_the_rest_on_the_range() {
        assert_eq!(
            id_map(1000, Some((200000, 65536))),
            [IdRange { container: 0, host: 1000, size: 1 }, IdRange { container: 1, host: 200000, size: 65536 }]
        );
        assert_eq!(id_map(1000, None), [IdRange { container: 0, host: 1000, size: 1 }]);
    }

    #[test]
    fn ids_outside_every_line_are_unmapped() {
        let root_alone = "         0       1000          1\n";
        assert_eq!(unmapped(root_alone, &[0]), Vec::<u32>::new());
        assert_eq!(unmapped(root_alone, &[1000, 0, 5]), [1000, 5]);
        let ranged = "0 1000 1\n1 200000 65536\n";
        assert_eq!(unmapped(ranged, &[0, 1, 65536, 65537]), [65537]);
        assert!(unmapped("0 0 4294967295\n", &[u32::MAX - 1]).is_empty());
    }

    #[test]
    fn identity_map_is_the_initial_namespace() {
        use crate::sys::userns::is_identity_map;
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n         1     200000      65536\n"));
    }
}
