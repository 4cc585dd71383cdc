//! Holding a running container still while its files are read (`berth
//! commit`, `berth export`): every process in its cgroup is frozen — v1
//! `freezer.state` = `FROZEN`, v2 `cgroup.freeze` = 1 — for as long as a
//! [`Frozen`] lives. Dropping it thaws the cgroup, so an error or a panic
//! on the way never leaves a container frozen; [`Frozen::thaw`] does the
//! same and reports a failure.
//!
//! A container that is not running has nothing to freeze:
//! [`freeze`] then returns `None` and its files are simply read.
//!
//! Without a cgroup (berth without root where none is delegated) every
//! process of the container's PID namespace gets `SIGSTOP` instead, in
//! rounds until a round finds no new process and every one is stopped, and
//! `SIGCONT` when it is thawed (what podman cannot do on cgroup v1, where
//! it refuses to pause a rootless container). A process forked between two
//! rounds is caught by the next one.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::cgroup::{self, Cgroup, CgroupError, CgroupPath, Hierarchy};
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
    hold: Hold,
    thawed: bool,
}

/// How the container is held still.
#[derive(Debug)]
enum Hold {
    /// Its cgroup's freezer.
    Cgroup(Cgroup),
    /// `SIGSTOP` sent to these processes (no cgroup).
    Stopped(Vec<Pid>),
}

impl Hold {
    fn thaw(&self) -> Result<(), CgroupError> {
        match self {
            Hold::Cgroup(group) => group.thaw(),
            Hold::Stopped(pids) => {
                for &pid in pids {
                    let _ = crate::sys::proc::kill(pid, Signal::SIGCONT);
                }
                Ok(())
            }
        }
    }
}

/// How many rounds of `SIGSTOP` [`stop_all`] makes before giving up on a
/// container that keeps forking.
const STOP_ROUNDS: usize = 100;

/// Stops every process in the PID namespace of `init` with `SIGSTOP`, in
/// rounds, and waits until each is stopped; returns them all.
fn stop_all(init: Pid, why: &str) -> Result<Vec<Pid>, CgroupError> {
    let ns = crate::sys::ns::ns_inode(Some(init), "pid")
        .map_err(|e| CgroupError::NoCgroup { what: "stopping a container's processes", why: format!("{why}; {e}") })?;
    let mut stopped: Vec<Pid> = Vec::new();
    for _ in 0..STOP_ROUNDS {
        let members = pids_in_namespace(ns);
        let new: Vec<Pid> = members.iter().copied().filter(|p| !stopped.contains(p)).collect();
        if new.is_empty() && members.iter().all(|&p| is_stopped(p)) {
            return Ok(stopped);
        }
        for pid in new {
            if crate::sys::proc::kill(pid, Signal::SIGSTOP).is_ok() {
                stopped.push(pid);
            }
        }
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !members.iter().all(|&p| is_stopped(p)) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    for &pid in &stopped {
        let _ = crate::sys::proc::kill(pid, Signal::SIGCONT);
    }
    Err(CgroupError::NoCgroup {
        what: "stopping a container that keeps starting processes",
        why: format!("{why}; still new processes after {STOP_ROUNDS} rounds of SIGSTOP"),
    })
}

/// The processes (by `/proc`) whose PID namespace has inode `ns`.
fn pids_in_namespace(ns: u64) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw)
        .filter(|&p| crate::sys::ns::ns_inode(Some(p), "pid").is_ok_and(|i| i == ns))
        .collect()
}

/// Whether process `pid` is stopped (or gone, or a zombie: nothing to wait for).
fn is_stopped(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('T' | 't' | 'Z' | 'X') | None)
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
    if let Hierarchy::Unavailable { why } = &hierarchy {
        let Some(init) = control::current_state(c)?.and_then(|st| st.pid).map(Pid::from_raw) else {
            return Ok(None);
        };
        let pids = stop_all(init, why).map_err(fail)?;
        return Ok(Some(Frozen { name, hold: Hold::Stopped(pids), thawed: false }));
    }
    let group = match Cgroup::open(&hierarchy, &path) {
        Ok(group) => group,
        // It exited just now, and its supervisor removed the cgroup.
        Err(CgroupError::NotFound { .. }) if !control::is_running(c)? => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    group.freeze().map_err(fail)?;
    Ok(Some(Frozen { name, hold: Hold::Cgroup(group), thawed: false }))
}

impl Frozen {
    /// The name of the frozen container.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the cgroup reads back as frozen now.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match &self.hold {
            Hold::Cgroup(group) => group.is_frozen(),
            Hold::Stopped(pids) => Ok(pids.iter().all(|&p| is_stopped(p))),
        }
    }

    /// Thaws the container now, reporting a failure.
    pub fn thaw(mut self) -> Result<(), FreezeError> {
        self.thawed = true;
        self.hold.thaw().map_err(|source| FreezeError::Thaw { name: self.name.clone(), source })
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            // Best effort on the error path; the error being returned says
            // what failed first.
            let _ = self.hold.thaw();
        }
    }
}
