//! Project network namespaces: `projects/NAME.netns` in the store, a
//! network namespace kept alive by a bind mount (as `ip netns add` keeps
//! one), which every container labelled [`PROJECT_LABEL`]` = NAME` that
//! asked for the project's network joins; it reaches the outside through
//! the project's bridge as root, or a user-mode helper (pasta or
//! slirp4netns) rootless (`runtime::network`, attached by `up`).
//! Envs with `network = "isolated"` share a second one,
//! `projects/NAME.isolated-netns`, which has loopback only. (The extension
//! tells them apart: a project name may contain dots, never `-netns`
//! after its last one.)
//!
//! # Lifetime
//!
//! `up` makes the namespace before it creates the project's containers
//! ([`ensure`]); it goes when the project's last container goes
//! ([`release_if_unused`], called by every removal for good:
//! `control::remove_for_good` for `rm` and `down`, `control::remove_on_exit`
//! for `--rm`), or with the whole project ([`remove`], `down`). A container
//! replaced by `up` (removed, then made anew) keeps it.
//!
//! # Why a concurrent `up` never loses its namespace
//!
//! Both sides run under the store's exclusive lock: `up` holds it from
//! [`ensure`] until the new container's record is written, and a release
//! holds it from its look at the records to the unmount. So a release sees
//! either no record of the project (and `up` after it makes the namespace
//! anew) or the new record (and keeps the namespace). A container joins
//! the namespace by its path only when its shim starts it, after its
//! record exists; a release never removes a namespace a recorded container
//! of the project could still join.

use std::path::PathBuf;

use super::container::{self, ContainerError, Record};
use crate::store::{Store, StoreLock};
use crate::sys::lock::LockMode;

/// The label that says which project a container belongs to.
pub const PROJECT_LABEL: &str = "org.berth.project";

/// Why a project's network namespace could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("project {project}: cannot make its network namespace {}: {source}", path.display())]
    Make { project: String, path: PathBuf, source: std::io::Error },
    #[error(
        "project {project}: cannot remove its network namespace {}: {source}; `berth fsck --repair` retries",
        path.display()
    )]
    Remove { project: String, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] super::network::NetworkError),
    #[error("removing a project's network namespace needs the store's exclusive lock, but a shared one is held")]
    NeedsExclusiveLock,
}

/// Which of a project's two namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `network = "project"`: shared, with outbound access (as root, or
    /// rootless with a helper installed).
    Project,
    /// `network = "isolated"`: shared, loopback only.
    Isolated,
}

impl Kind {
    /// The namespace file's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Project => "netns",
            Kind::Isolated => "isolated-netns",
        }
    }

    /// The kind whose files have the extension `ext`.
    pub fn of_extension(ext: &str) -> Option<Kind> {
        [Kind::Project, Kind::Isolated].into_iter().find(|k| k.extension() == ext)
    }
}

/// Where the network namespace of `project` is kept.
pub fn path(store: &Store, project: &str) -> PathBuf {
    path_of(store, project, Kind::Project)
}

/// Where the namespace of `kind` of `project` is kept.
pub fn path_of(store: &Store, project: &str, kind: Kind) -> PathBuf {
    store.projects_dir().join(format!("{project}.{}", kind.extension()))
}

/// The project a container belongs to, if any.
pub fn project_of(record: &Record) -> Option<&str> {
    record.labels.get(PROJECT_LABEL).map(String::as_str)
}

/// Makes the network namespace of `kind` of `project` unless it is there;
/// returns its path. A plain file in its place (what an interrupted removal
/// leaves) is replaced. The caller holds the store's exclusive lock.
pub fn ensure(store: &Store, project: &str, kind: Kind) -> Result<PathBuf, NetnsError> {
    let at = path_of(store, project, kind);
    let make = |source| NetnsError::Make { project: project.to_owned(), path: at.clone(), source };
    if crate::sys::ns::is_persistent_ns(&at).map_err(make)? {
        return Ok(at);
    }
    crate::sys::ns::remove_persistent_netns(&at).map_err(make)?;
    std::fs::create_dir_all(store.projects_dir()).map_err(make)?;
    crate::sys::ns::persistent_netns(&at).map_err(make)?;
    Ok(at)
}

/// Removes the network namespaces of `project` (unmounted and deleted),
/// whoever still uses them, and the project network attached to the
/// first (bridge, veth, rules, subnet); returns whether there was one.
pub fn remove(store: &Store, lock: &StoreLock, project: &str) -> Result<bool, NetnsError> {
    if lock.mode() != LockMode::Exclusive {
        return Err(NetnsError::NeedsExclusiveLock);
    }
    let mut there = super::network::detach(&path(store, project))?;
    for kind in [Kind::Project, Kind::Isolated] {
        there |= remove_file(&path_of(store, project, kind), project)?;
    }
    Ok(there)
}

/// Unmounts and deletes one namespace file of `project`; whether it was there.
pub fn remove_file(at: &std::path::Path, project: &str) -> Result<bool, NetnsError> {
    let there = at.symlink_metadata().is_ok();
    crate::sys::ns::remove_persistent_netns(at).map_err(|source| NetnsError::Remove {
        project: project.to_owned(),
        path: at.to_path_buf(),
        source,
    })?;
    Ok(there)
}

/// The label naming the network namespace of a lone container's own
/// (`berth run --network bridge`): a path in [`own_dir`].
pub const OWN_NETNS_LABEL: &str = "org.berth.netns";

/// Where the namespaces of lone containers with a network are kept:
/// `STORE/netns/`.
pub fn own_dir(store: &Store) -> PathBuf {
    store.root().join("netns")
}

/// Makes a namespace for one container of no project, with a network of
/// its own (`runtime::network`: bridge, veth, subnet, masquerading), as
/// Docker's default bridge gives each container; returns its path, which
/// the container's record names with [`OWN_NETNS_LABEL`]. The caller holds
/// the store's exclusive lock, and calls [`release_own`] if the container
/// is not made after all.
pub fn make_own(store: &Store) -> Result<PathBuf, NetnsError> {
    let token = super::container::ContainerId::random().map_err(|source| NetnsError::Make {
        project: "(berth run)".into(),
        path: own_dir(store),
        source,
    })?;
    let at = own_dir(store).join(format!("{}.netns", &token.as_str()[..16]));
    let make = |source| NetnsError::Make { project: "(berth run)".into(), path: at.clone(), source };
    std::fs::create_dir_all(own_dir(store)).map_err(make)?;
    crate::sys::ns::persistent_netns(&at).map_err(make)?;
    if let Err(e) = super::network::attach(&at, "(berth run)") {
        let _ = release_own(store, &at);
        return Err(e.into());
    }
    Ok(at)
}

/// Removes a namespace [`make_own`] made, and its network; whether there
/// was one. A path outside [`own_dir`] is left alone.
pub fn release_own(store: &Store, at: &std::path::Path) -> Result<bool, NetnsError> {
    if at.parent() != Some(own_dir(store).as_path()) {
        return Ok(false);
    }
    let mut there = super::network::detach(at)?;
    there |= remove_file(at, "(berth run)")?;
    Ok(there)
}

/// Creates the container of `opts` in a namespace of its own with a
/// network ([`make_own`]), its `/etc/resolv.conf` made for that network;
/// the namespace goes again when creating fails.
/// The caller holds the store's exclusive lock.
pub fn create_with_own_network(
    store: &Store,
    mut opts: super::create::RunOptions,
) -> Result<container::Container, OwnNetworkError> {
    let at = make_own(store)?;
    opts.network = super::spec::NetworkMode::Join(at.clone());
    opts.labels.insert(OWN_NETNS_LABEL.to_owned(), at.display().to_string());
    let resolv_conf = super::network::resolv_conf(Some(&at));
    super::create::create(store, &opts, &resolv_conf).map_err(|e| {
        let _ = release_own(store, &at);
        OwnNetworkError::Create(Box::new(e))
    })
}

/// Why [`create_with_own_network`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OwnNetworkError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Create(Box<super::create::CreateError>),
}

/// After the container `removed` is gone: if it belonged to a project that
/// has a network namespace and no container of that project is left,
/// removes the namespace. Returns whether it did. Costs nothing for a
/// container of no project, and one listing of the containers otherwise.
/// The caller holds the store's exclusive lock (see the module page).
pub fn release_if_unused(store: &Store, lock: &StoreLock, removed: &Record) -> Result<bool, NetnsError> {
    if let Some(own) = removed.labels.get(OWN_NETNS_LABEL) {
        return release_own(store, std::path::Path::new(own));
    }
    let Some(project) = project_of(removed) else { return Ok(false) };
    let kinds = [Kind::Project, Kind::Isolated];
    if kinds.iter().all(|k| path_of(store, project, *k).symlink_metadata().is_err()) {
        return Ok(false); // no namespace (network = "host" or "none" only)
    }
    let left = container::list(&store.containers_dir())?;
    if left.iter().any(|c| c.record.id != removed.id && project_of(&c.record) == Some(project)) {
        return Ok(false);
    }
    remove(store, lock, project)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::container::EtcFiles;
    use crate::store::testutil::temp_store;

    fn container_of(store: &Store, project: Option<&str>, name: &str) -> container::Container {
        let mut record = Record::example(name);
        if let Some(p) = project {
            record.labels.insert(PROJECT_LABEL.into(), p.into());
        }
        container::create(&store.containers_dir(), &record, &EtcFiles::new(name, &[], "")).unwrap()
    }

    #[test]
    fn the_namespace_goes_with_the_projects_last_container_only() {
        let (_dir, store) = temp_store();
        let a = container_of(&store, Some("p"), "p-a");
        let b = container_of(&store, Some("p"), "p-b");
        let other = container_of(&store, Some("q"), "q-a");
        let loose = container_of(&store, None, "loose");
        std::fs::create_dir_all(store.projects_dir()).unwrap();
        // A plain file stands in for the bind mount (tests/down.rs mounts one).
        let ns = path(&store, "p");
        std::fs::write(&ns, b"").unwrap();
        let lock = store.lock_exclusive().unwrap();
        let gone = |c: &container::Container| {
            container::remove_dir(c).unwrap();
            release_if_unused(&store, &lock, &c.record).unwrap()
        };
        assert!(!gone(&loose), "a container of no project");
        assert!(!gone(&other), "project q has no namespace");
        assert!(!gone(&a) && ns.exists(), "p-b is left");
        assert!(gone(&b) && !ns.exists(), "p-b was the last");
    }

    #[test]
    fn removing_needs_the_exclusive_lock() {
        let (_dir, store) = temp_store();
        let shared = store.lock_shared().unwrap();
        assert!(matches!(remove(&store, &shared, "p"), Err(NetnsError::NeedsExclusiveLock)));
    }
}
