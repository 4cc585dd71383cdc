//! Project network namespaces: `projects/NAME.netns` in the store, a
//! network namespace kept alive by a bind mount (as `ip netns add` keeps
//! one), which every container labelled [`PROJECT_LABEL`]` = NAME` that
//! asked for the project's network joins.
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
    #[error("removing a project's network namespace needs the store's exclusive lock, but a shared one is held")]
    NeedsExclusiveLock,
}

/// Where the network namespace of `project` is kept.
pub fn path(store: &Store, project: &str) -> PathBuf {
    store.projects_dir().join(format!("{project}.netns"))
}

/// The project a container belongs to, if any.
pub fn project_of(record: &Record) -> Option<&str> {
    record.labels.get(PROJECT_LABEL).map(String::as_str)
}

/// Makes the network namespace of `project` unless it is there; returns
/// its path. A plain file in its place (what an interrupted removal
/// leaves) is replaced. The caller holds the store's exclusive lock.
pub fn ensure(store: &Store, project: &str) -> Result<PathBuf, NetnsError> {
    let at = path(store, project);
    let make = |source| NetnsError::Make { project: project.to_owned(), path: at.clone(), source };
    if crate::sys::ns::is_persistent_ns(&at).map_err(make)? {
        return Ok(at);
    }
    crate::sys::ns::remove_persistent_netns(&at).map_err(make)?;
    std::fs::create_dir_all(store.projects_dir()).map_err(make)?;
    crate::sys::ns::persistent_netns(&at).map_err(make)?;
    Ok(at)
}

/// Removes the network namespace of `project` (unmounted and deleted),
/// whoever still uses it; returns whether there was one.
pub fn remove(store: &Store, lock: &StoreLock, project: &str) -> Result<bool, NetnsError> {
    if lock.mode() != LockMode::Exclusive {
        return Err(NetnsError::NeedsExclusiveLock);
    }
    let at = path(store, project);
    let there = at.symlink_metadata().is_ok();
    crate::sys::ns::remove_persistent_netns(&at).map_err(|source| NetnsError::Remove {
        project: project.to_owned(),
        path: at.clone(),
        source,
    })?;
    Ok(there)
}

/// After the container `removed` is gone: if it belonged to a project that
/// has a network namespace and no container of that project is left,
/// removes the namespace. Returns whether it did. Costs nothing for a
/// container of no project, and one listing of the containers otherwise.
/// The caller holds the store's exclusive lock (see the module page).
pub fn release_if_unused(store: &Store, lock: &StoreLock, removed: &Record) -> Result<bool, NetnsError> {
    let Some(project) = project_of(removed) else { return Ok(false) };
    if path(store, project).symlink_metadata().is_err() {
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
