//! Limits without root: the cgroup v2 subtree systemd delegates to a user.
//!
//! On a unified (v2) host, systemd's user manager runs in
//! `…/user-UID.slice/user@UID.service`, a cgroup it gives to the user
//! (`Delegate=yes`: the directory and its `cgroup.procs` and
//! `cgroup.subtree_control` belong to the user), and every process of the
//! user's session services and `systemd-run --user --scope` lives below it.
//! There an ordinary user's berth may make cgroups and move its own
//! processes between them, as root's does under the whole hierarchy.
//!
//! [`find`] picks that subtree: starting at the cgroup this process is in
//! (`/proc/self/cgroup`, the `0::` line), it walks up while the directory
//! belongs to the user, and takes the highest such directory if it offers
//! `memory`, `cpu` and `pids` in its `cgroup.controllers`. That directory
//! then serves as the v2 root ([`super::Hierarchy::V2`]): containers get
//! `ROOT/berth/<id>` with their limits, their processes are moved in before
//! they unshare the cgroup namespace, and `rm` removes the directory, all
//! by the same code as root's.
//!
//! The kernel lets a process move another between two cgroups only when it
//! may write `cgroup.procs` of their common ancestor, so berth has to run
//! *inside* the delegated subtree: a login over ssh puts the shell in
//! `session-N.scope`, outside it, and there [`find`] says so and names
//! `systemd-run --user --scope` as the way in (as podman does through
//! systemd's D-Bus API).
//!
//! Where nothing qualifies (cgroup v1, hybrid hosts, no user session, the
//! controllers not delegated), limits stay refused with the reason
//! (`Hierarchy::Unavailable`).

use std::path::{Path, PathBuf};

use super::mountinfo::NEEDED;

/// The cgroup this process is in, from the text of `/proc/self/cgroup`:
/// the path of the `0::` (v2) line.
pub fn own_cgroup(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|l| l.strip_prefix("0::")).map(str::trim)
}

/// The delegated subtree of the v2 hierarchy mounted at `mount` for a
/// process in cgroup `own` (a path like `/user.slice/…`) whose effective
/// uid is `uid`; `owner` says who owns a directory (`None`: unreadable).
/// Returns the directory to use as the root, or why there is none.
pub fn find(mount: &Path, own: &str, uid: u32, owner: &dyn Fn(&Path) -> Option<u32>) -> Result<PathBuf, String> {
    let own_dir = mount.join(own.trim_start_matches('/'));
    if owner(&own_dir) != Some(uid) {
        return Err(format!(
            "berth runs without root in the cgroup {own}, which is not yours: systemd delegates a cgroup v2 \
             subtree to your user manager (user@UID.service), and berth must run inside it to place containers \
             there; start it with `systemd-run --user --scope berth …`"
        ));
    }
    let mut top = own_dir.clone();
    for dir in own_dir.ancestors().skip(1) {
        if !dir.starts_with(mount) || owner(dir) != Some(uid) {
            break;
        }
        top = dir.to_path_buf();
    }
    let offered = std::fs::read_to_string(top.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = NEEDED.iter().copied().filter(|c| !offered.split_whitespace().any(|o| o == *c)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "the cgroup v2 subtree delegated to you ({}) does not offer the {} controller{}: delegate them with \
             `systemctl edit user@.service` ([Service] Delegate=memory cpu pids) and log in again",
            top.display(),
            missing.join(", "),
            if missing.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;

    /// A fake cgroupfs: `dirs` relative to the mount, each owned by the uid
    /// given, with the controllers given.
    struct Fake {
        tmp: tempfile::TempDir,
        owners: BTreeMap<PathBuf, u32>,
    }

    impl Fake {
        fn new(dirs: &[(&str, u32, &str)]) -> Fake {
            let tmp = tempfile::tempdir().unwrap();
            let mut owners = BTreeMap::new();
            owners.insert(tmp.path().to_path_buf(), 0);
            for (dir, uid, controllers) in dirs {
                let path = tmp.path().join(dir);
                fs::create_dir_all(&path).unwrap();
                fs::write(path.join("cgroup.controllers"), controllers).unwrap();
                owners.insert(path, *uid);
            }
            Fake { tmp, owners }
        }

        fn find(&self, own: &str, uid: u32) -> Result<PathBuf, String> {
            find(self.tmp.path(), own, uid, &|p: &Path| self.owners.get(p).copied())
        }
    }

    const USER: &str = "user.slice/user-1000.slice/user@1000.service";
    const ALL: &str = "cpuset cpu io memory pids";

    fn session() -> Fake {
        Fake::new(&[
            ("user.slice", 0, ALL),
            ("user.slice/user-1000.slice", 0, ALL),
            ("user.slice/user-1000.slice/session-3.scope", 0, ALL),
            (USER, 1000, ALL),
            ("user.slice/user-1000.slice/user@1000.service/app.slice", 1000, ALL),
            ("user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope", 1000, ALL),
        ])
    }

    #[test]
    fn the_highest_directory_of_the_users_is_the_root() {
        let fake = session();
        let own = format!("/{USER}/app.slice/run-r1.scope");
        assert_eq!(fake.find(&own, 1000).unwrap(), fake.tmp.path().join(USER));
        // Already at the top of the subtree.
        assert_eq!(fake.find(&format!("/{USER}"), 1000).unwrap(), fake.tmp.path().join(USER));
    }

    #[test]
    fn a_session_outside_the_subtree_is_told_how_to_get_in() {
        let fake = session();
        let why = fake.find("/user.slice/user-1000.slice/session-3.scope", 1000).unwrap_err();
        assert!(why.contains("session-3.scope") && why.contains("systemd-run --user --scope"), "{why}");
        // Someone else's subtree is not ours either.
        assert!(fake.find(&format!("/{USER}/app.slice"), 1001).is_err());
    }

    #[test]
    fn missing_controllers_are_named() {
        let fake = Fake::new(&[
            ("user.slice", 0, ALL),
            ("user.slice/user-1000.slice", 0, ALL),
            (USER, 1000, "cpu pids"),
            ("user.slice/user-1000.slice/user@1000.service/app.slice", 1000, "cpu pids"),
        ]);
        let why = fake.find(&format!("/{USER}/app.slice"), 1000).unwrap_err();
        assert!(why.contains("memory controller:") && why.contains("Delegate=memory cpu pids"), "{why}");
    }

    #[test]
    fn the_v2_line_of_proc_self_cgroup() {
        let text =
            "12:pids:/user.slice\n1:name=systemd:/user.slice/x\n0::/user.slice/user-1000.slice/session-3.scope\n";
        assert_eq!(own_cgroup(text), Some("/user.slice/user-1000.slice/session-3.scope"));
        assert_eq!(own_cgroup("4:memory:/\n"), None);
    }
}
