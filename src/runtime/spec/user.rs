//! Resolving a user given as `USER`, `UID`, `USER:GROUP` or `UID:GID`
//! against an image's `/etc/passwd` and `/etc/group`, as Docker does.
//!
//! Every process berth starts in a container (a container's command, `exec`,
//! a health check, a build step) takes its user from [`process_user`]: the
//! user asked for, else root, looked up in the image's `/etc/passwd` by name
//! or uid. The entry gives the primary group, the supplementary groups and
//! `$HOME` ([`ResolvedUser::home_dir`]: the entry's home, `/` when the user
//! has no entry), the rule of runc's `GetExecUser` that Docker and podman
//! follow. So root's `$HOME` is `/root` in any image that lists root.
//!
//! The supplementary groups are Docker's (moby `getUser`, which BuildKit
//! and buildah match): the primary gid, then, only when the user was given
//! without a group, every group of `/etc/group` that lists the user's name
//! as a member. So `USER 1000:1000` runs with groups `1000`, root in
//! busybox with `0,10` (wheel lists root), `app:wheel` with `10` alone.
//! A uid with no passwd entry has no name, so only its primary group.
//! Each gid is listed once (moby would list a primary group that also names
//! the user twice; the kernel's answer is the same). There is no
//! `--group-add` (compose's `group_add` is reported as not supported).
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)`, so a symlinked
//! `/etc/passwd` in an image is followed *inside* the image and can never
//! make berth read a host file.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::SpecError;
use crate::sys::scoped;

/// A user as the kernel sees it, plus the home directory for `$HOME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group, then (when no group was
    /// given) those of `/etc/group` that list the user by name, each once.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, if the user is listed there
    /// with one.
    pub home: Option<PathBuf>,
}

impl ResolvedUser {
    /// `$HOME` for this user: the home directory of its `/etc/passwd`
    /// entry, `/` when it has none (Docker's rule).
    pub fn home_dir(&self) -> &Path {
        self.home.as_deref().unwrap_or(Path::new("/"))
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f[0].starts_with('#') {
            return None;
        }
        Some(PasswdEntry { name: f[0], uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f.get(5).copied()? })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || f[0].starts_with('#') {
            return None;
        }
        Some(GroupEntry { name: f[0], gid: f[2].parse().ok()?, members: f.get(3).copied().unwrap_or("") })
    })
}

/// Reads `rel` inside `root` (`RESOLVE_IN_ROOT`); `Ok(None)` if it is missing.
fn read_in_root(root: &Path, rel: &str) -> io::Result<Option<String>> {
    let dir = crate::sys::fs::open_dir(root)?;
    match scoped::open_file(dir.as_fd(), Path::new(rel)) {
        Ok(mut f) => {
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            Ok(Some(s))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The user a process in an image given as unpacked layers (top first)
/// runs as: `user` when given, else root (uid 0), resolved as
/// [`resolve_user_in_layers`] does, so that root too gets its groups and
/// home directory from the image. The one rule for every process berth
/// starts in a container.
pub fn process_user(layers: &[PathBuf], user: Option<&str>) -> Result<ResolvedUser, SpecError> {
    resolve_user_in_layers(layers, user.unwrap_or("0"))
}

/// Resolves `user` against `rootfs/etc/passwd` and `rootfs/etc/group`.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser, SpecError> {
    resolve_user_in_layers(&[rootfs.to_path_buf()], user)
}

/// Like [`resolve_user`] for an image given as unpacked layers (top first):
/// each file is read from the topmost layer that has it. (A layer that
/// deletes `/etc/passwd` with a whiteout is not honoured: images do not.)
pub fn resolve_user_in_layers(layers: &[PathBuf], user: &str) -> Result<ResolvedUser, SpecError> {
    let top = layers.first().cloned().unwrap_or_default();
    let read = |file: &'static str| -> Result<Option<String>, SpecError> {
        for layer in layers {
            match read_in_root(layer, file) {
                Ok(Some(text)) => return Ok(Some(text)),
                Ok(None) => continue,
                Err(source) => {
                    return Err(SpecError::ReadFile { user: user.into(), file, root: layer.clone(), source });
                }
            }
        }
        Ok(None)
    };
    let passwd = read("etc/passwd")?.unwrap_or_default();
    let groups = read("etc/group")?.unwrap_or_default();
    resolve_in(&passwd, &groups, user, &top)
}

fn resolve_in(passwd: &str, groups: &str, user: &str, root: &Path) -> Result<ResolvedUser, SpecError> {
    let (who, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if who.is_empty() || group == Some("") {
        return Err(SpecError::BadUser { user: user.into() });
    }
    let entry = match who.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => passwd_entries(passwd).find(|e| e.name == who),
    };
    let (uid, mut gid, name, home) = match (&entry, who.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(PathBuf::from(e.home)).filter(|h| !h.as_os_str().is_empty())),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(SpecError::UnknownUser { user: user.into(), root: root.to_path_buf() }),
    };
    if let Some(group) = group {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(groups).find(|g| g.name == group).map(|g| g.gid).ok_or_else(|| {
                SpecError::UnknownGroup { user: user.into(), group: group.into(), root: root.to_path_buf() }
            })?,
        };
    }
    // The primary group always comes first (moby's `getUser`, buildah's
    // `configureUIDGID`, BuildKit's `ensureAdditionalGids`); the groups that
    // list the user by name only when no group was given (runc's
    // `GetExecUser`: "supplementary group ids only make sense if in the
    // implicit form").
    let mut additional_gids = vec![gid];
    if let (Some(name), None) = (name, group) {
        for g in group_entries(groups) {
            if g.members.split(',').any(|m| m.trim() == name) && !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    Ok(ResolvedUser { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\naudio:x:29:app\n";

    fn r(user: &str) -> Result<ResolvedUser, SpecError> {
        resolve_in(PASSWD, GROUP, user, Path::new("/img"))
    }

    #[test]
    fn names_and_numbers() {
        let app = r("app").unwrap();
        assert_eq!((app.uid, app.gid, app.additional_gids.clone()), (1000, 1000, vec![1000, 10, 29]));
        assert_eq!(app.home, Some(PathBuf::from("/home/app")));
        assert_eq!(r("1000").unwrap(), app);
        let unknown = r("4242").unwrap();
        assert_eq!((unknown.uid, unknown.gid, unknown.home), (4242, 0, None));
        assert_eq!(r("app:wheel").unwrap().gid, 10);
        assert_eq!(r("0:7").unwrap().gid, 7);
    }

    #[test]
    fn groups_are_the_primary_one_then_memberships_unless_a_group_is_given() {
        let groups = |user: &str| r(user).unwrap().additional_gids;
        // Root is listed nowhere in GROUP: its own group alone.
        assert_eq!(groups("root"), vec![0]);
        // A group given: that group only, as in Docker (no /etc/group lookup).
        assert_eq!(groups("app:wheel"), vec![10]);
        assert_eq!(groups("1000:1000"), vec![1000]);
        assert_eq!(groups("app:29"), vec![29]);
        // A uid without an entry has no name to be a member by.
        assert_eq!(groups("4242"), vec![0]);
        assert_eq!(groups("4242:77"), vec![77]);
        // A member of its own primary group is listed once.
        let own = resolve_in(PASSWD, "app:x:1000:app\nwheel:x:10:app\n", "app", Path::new("/img")).unwrap();
        assert_eq!(own.additional_gids, vec![1000, 10]);
    }

    #[test]
    fn every_process_gets_its_home_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().to_path_buf();
        std::fs::create_dir(image.join("etc")).unwrap();
        std::fs::write(image.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(image.join("etc/group"), "root:x:0:\nwheel:x:10:root,app\n").unwrap();
        let layers = std::slice::from_ref(&image);
        // No user asked for: root, from its entry, as Docker does.
        let root = process_user(layers, None).unwrap();
        assert_eq!((root.uid, root.gid, root.additional_gids.clone()), (0, 0, vec![0, 10]));
        assert_eq!(root.home_dir(), Path::new("/root"));
        assert_eq!(process_user(layers, Some("app")).unwrap().home_dir(), Path::new("/home/app"));
        assert_eq!(process_user(layers, Some("1000:10")).unwrap().home_dir(), Path::new("/home/app"));
        // A uid with no entry, and an image with no passwd at all: `/`.
        assert_eq!(process_user(layers, Some("4242")).unwrap().home_dir(), Path::new("/"));
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let bare = process_user(std::slice::from_ref(&empty), None).unwrap();
        assert_eq!(bare, ResolvedUser { additional_gids: vec![0], ..ResolvedUser::default() });
        assert_eq!(bare.home_dir(), Path::new("/"));
        // An entry with an empty home field has none.
        let blank = resolve_in("svc:x:5:5:::/bin/sh\n", "", "svc", Path::new("/img")).unwrap();
        assert_eq!((blank.uid, blank.home_dir()), (5, Path::new("/")));
    }

    #[test]
    fn errors_name_what_is_missing() {
        assert!(matches!(r("nobody"), Err(SpecError::UnknownUser { .. })));
        let e = r("app:staff").unwrap_err().to_string();
        assert!(e.contains("no such group \"staff\""), "{e}");
        assert!(matches!(r(":1"), Err(SpecError::BadUser { .. })));
        assert!(matches!(r("1:"), Err(SpecError::BadUser { .. })));
    }

    #[test]
    fn passwd_symlink_cannot_escape_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        // An image whose /etc/passwd points at the host's: resolved inside
        // the image it is missing, so only numeric users work.
        std::os::unix::fs::symlink("/etc/../../../../etc/shadow", root.join("etc/passwd")).unwrap();
        assert!(matches!(resolve_user(root, "root"), Err(SpecError::UnknownUser { .. })));
        assert_eq!(resolve_user(root, "5").unwrap().uid, 5);
    }
}
