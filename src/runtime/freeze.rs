//! Holding a running container still while its files are read (`berth
//! commit`, `berth export`): every process in its cgroup is frozen — v1
//! `freezer.state` = `FROZEN`, v2 `cgroup.freeze` = 1 — for as long as a
//! [`Frozen`] lives. Dropping it thaws the cgroup, so an error or a panic
//! on the way never leaves a container frozen; [`Frozen::thaw`] does the
//! same and reports a failure.
//!
//! A container that is not running has nothing to freeze:
//! [`freeze`] then returns `None` and its files are simply read.

use super::cgroup::{self, Cgroup, CgroupError, CgroupPath};
use super::container::Container;
use super::control::{self, ControlError};

/// Why a container could not be frozen or thawed.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error(transparent)]
    State(#[from] ControlError),
    #[error(
        "container {name}: cannot freeze it while its files are read: {source}; stop it first, or read it \
         running (`--pause=false`), accepting files that change meanwhile"
    )]
    Freeze { name: String, source: CgroupError },
    #[error(
        "container {name}: cannot thaw it after reading its files: {source}; its processes stay stopped until `berth stop {name}` or a retry"
    )]
    Thaw { name: String, source: CgroupError },
}

/// A running container's cgroup, frozen until this is dropped (or
/// [`Frozen::thaw`] is called).
#[derive(Debug)]
pub struct Frozen {
    name: String,
    cgroup: Cgroup,
    thawed: bool,
}

/// Freezes the container `c` if it is running and waits until all its
/// processes are stopped; `None` if it is not running.
pub fn freeze(c: &Container) -> Result<Option<Frozen>, FreezeError> {
    if !control::is_running(c)? {
        return Ok(None);
    }
    let name = c.record.name.clone();
    let fail = |source| FreezeError::Freeze { name: name.clone(), source };
    let path = CgroupPath::new(&c.record.cgroup).map_err(fail)?;
    let hierarchy = cgroup::detect().map_err(fail)?;
    let group = match Cgroup::open(&hierarchy, &path) {
        Ok(group) => group,
        // It exited just now, and its supervisor removed the cgroup.
        Err(CgroupError::NotFound { .. }) if !control::is_running(c)? => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    group.freeze().map_err(fail)?;
    Ok(Some(Frozen { name, cgroup: group, thawed: false }))
}

impl Frozen {
    /// The name of the frozen container.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the cgroup reads back as frozen now.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        self.cgroup.is_frozen()
    }

    /// Thaws the container now, reporting a failure.
    pub fn thaw(mut self) -> Result<(), FreezeError> {
        self.thawed = true;
        self.cgroup.thaw().map_err(|source| FreezeError::Thaw { name: self.name.clone(), source })
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            // Best effort on the error path; the error being returned says
            // what failed first.
            let _ = self.cgroup.thaw();
        }
    }
}
