//! Stopping, killing, starting and removing containers from the CLI: only
//! through signals and the files in the container's directory, never by
//! talking to a shim.
//!
//! Removal has one path for good, [`remove_for_good`] (`rm`, `down`, and
//! [`remove_on_exit`] for `--rm`): the container, then its project's
//! network namespace when it was the project's last container
//! ([`netns::release_if_unused`]). [`remove`] alone is for a container that
//! `up` replaces at once, in the same namespace.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cgroup::{self, Cgroup, CgroupPath};
use super::container::{self, Container, ContainerError};
use super::netns::{self, NetnsError};
use super::shim::{self, STOP_REQUESTED, ShimError};
use super::state::{self, State, StateError, Status};
use crate::store::{Store, StoreLock};
use nix::unistd::Pid;

/// Why a container could not be controlled.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("container {0} is running; stop it first, or remove it with -f")]
    Running(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {name}: cannot signal pid {pid}: {source}")]
    Signal { name: String, pid: i32, source: std::io::Error },
    #[error("container {name}: {source}")]
    State { name: String, source: StateError },
    #[error("container {name}: cannot write {file}: {source}")]
    Marker { name: String, file: &'static str, source: std::io::Error },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Shim(#[from] ShimError),
    #[error("container {name}: {source}")]
    Cgroup { name: String, source: cgroup::CgroupError },
    #[error("container {name} is removed, but {source}")]
    Netns { name: String, source: NetnsError },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The container's recorded state, `None` if it never started.
pub fn current_state(c: &Container) -> Result<Option<State>, ControlError> {
    match state::read_state(&c.paths.dir) {
        Ok(s) => Ok(Some(s)),
        Err(StateError::Missing { .. }) => Ok(None),
        Err(source) => Err(ControlError::State { name: c.record.name.clone(), source }),
    }
}

/// The container's init, if it is alive.
fn live_pid(st: &State) -> Option<Pid> {
    match (st.pid, st.pid_start) {
        (Some(pid), Some(start)) if state::process_alive(pid, start) => Some(Pid::from_raw(pid)),
        _ => None,
    }
}

/// Whether the container's process runs now.
pub fn is_running(c: &Container) -> Result<bool, ControlError> {
    Ok(current_state(c)?.as_ref().and_then(live_pid).is_some())
}

fn mark_stop(c: &Container) -> Result<(), ControlError> {
    std::fs::write(c.paths.dir.join(STOP_REQUESTED), b"").map_err(|source| ControlError::Marker {
        name: c.record.name.clone(),
        file: STOP_REQUESTED,
        source,
    })
}

/// Sends `signal` to the container's init (which forwards it to the command).
pub fn kill(c: &Container, signal: Signal) -> Result<(), ControlError> {
    let st = current_state(c)?;
    let pid = st.as_ref().and_then(live_pid).ok_or_else(|| ControlError::NotRunning(c.record.name.clone()))?;
    crate::sys::proc::kill(pid, signal).map_err(|source| ControlError::Signal {
        name: c.record.name.clone(),
        pid: pid.as_raw(),
        source,
    })
}

/// Stops the container: SIGTERM, then SIGKILL after `timeout`; no restart
/// follows. Returns whether it was running. Waits until its supervisor is
/// gone (it has recorded the exit and written its last files).
pub fn stop(c: &Container, timeout: Duration) -> Result<bool, ControlError> {
    let Some(st) = current_state(c)? else { return Ok(false) };
    let pid = live_pid(&st);
    if pid.is_none() && st.status != Status::Restarting {
        return Ok(false);
    }
    mark_stop(c)?;
    if let Some(pid) = pid {
        let _ = crate::sys::proc::kill(pid, Signal::SIGTERM);
        let start = st.pid_start.unwrap_or(0);
        if !wait_until(timeout, || !state::process_alive(pid.as_raw(), start)) {
            let _ = crate::sys::proc::kill(pid, Signal::SIGKILL);
            wait_until(Duration::from_secs(10), || !state::process_alive(pid.as_raw(), start));
        }
    }
    wait_for_supervisor(&st);
    Ok(true)
}

/// Waits (bounded) until the supervisor that owned `st` (shim or
/// foreground CLI) is gone: not only until it recorded the exit, since it
/// may still write into the container's directory (its last log lines, a
/// `--rm` removal), which raced a quick `rm` ("Directory not empty").
fn wait_for_supervisor(st: &State) {
    wait_until(Duration::from_secs(10), || !state::process_alive(st.shim_pid, st.shim_start));
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Starts a stopped container again under a new shim.
///
/// A container that another shim owns is left to it: one that shim is
/// starting (a concurrent `start`, or an `up` after a berth killed right
/// after spawning the shim) counts as started once it runs; one whose shim
/// is finishing after the last exit is started anew once that shim is gone.
pub fn start(c: &Container) -> Result<(), ControlError> {
    if is_running(c)? {
        return Err(ControlError::AlreadyRunning(c.record.name.clone()));
    }
    let _ = std::fs::remove_file(c.paths.dir.join(STOP_REQUESTED));
    let until = Instant::now() + OTHER_SHIM;
    loop {
        match shim::spawn(&c.paths.dir) {
            Err(ShimError::Busy { dir }) => {
                let left = until.saturating_duration_since(Instant::now());
                let settled = wait_until(left, || !shim::is_supervised(&dir) || is_running(c).unwrap_or(false));
                if is_running(c)? {
                    return Ok(());
                }
                if !settled {
                    return Err(ShimError::Busy { dir }.into());
                }
            }
            other => return Ok(other?),
        }
    }
}

/// How long [`start`] waits for a container's other shim to start it or go.
const OTHER_SHIM: Duration = Duration::from_secs(30);

/// Removes the container for good: [`remove`], then its project's network
/// namespace if no other container of the project is left. The caller holds
/// the store's exclusive lock (`lock`). Returns whether the namespace went.
pub fn remove_for_good(store: &Store, lock: &StoreLock, c: &Container, force: bool) -> Result<bool, ControlError> {
    remove(c, force)?;
    netns::release_if_unused(store, lock, &c.record)
        .map_err(|source| ControlError::Netns { name: c.record.name.clone(), source })
}

/// Removes a `--rm` container whose command has ended, from its supervisor
/// (shim or foreground CLI), which holds no lock. Like [`remove_for_good`];
/// only a container of a project takes the store's lock.
pub fn remove_on_exit(c: &Container) -> Result<bool, ControlError> {
    container::remove_dir(c)?;
    if netns::project_of(&c.record).is_none() && !c.record.labels.contains_key(netns::OWN_NETNS_LABEL) {
        return Ok(false);
    }
    // containers/<id>/ sits in the store's root.
    let Some(root) = c.paths.dir.parent().and_then(|d| d.parent()) else { return Ok(false) };
    let Some(store) = Store::open_existing(root)? else { return Ok(false) };
    let lock = store.lock_exclusive()?;
    netns::release_if_unused(&store, &lock, &c.record)
        .map_err(|source| ControlError::Netns { name: c.record.name.clone(), source })
}

/// Removes the container: with `force`, a running one is killed first.
/// Also cleans what a dead shim left: processes in the cgroup, the cgroup.
/// Keeps its project's network namespace: for a container replaced at once
/// (`up`); every other removal is [`remove_for_good`].
pub fn remove(c: &Container, force: bool) -> Result<(), ControlError> {
    if let Some(st) = &current_state(c)? {
        if live_pid(st).is_some() {
            if !force {
                return Err(ControlError::Running(c.record.name.clone()));
            }
            mark_stop(c)?;
            kill(c, Signal::SIGKILL)?;
        } else if state::process_alive(st.shim_pid, st.shim_start) {
            // A shim between two runs (waiting to restart) or finishing.
            mark_stop(c)?;
        }
        wait_for_supervisor(st);
    }
    let cg = |source| ControlError::Cgroup { name: c.record.name.clone(), source };
    let path = CgroupPath::new(&c.record.cgroup).map_err(cg)?;
    let hierarchy = cgroup::detect().map_err(cg)?;
    if let Ok(group) = Cgroup::open(&hierarchy, &path) {
        group.destroy().map_err(cg)?;
    }
    container::remove_dir(c)?;
    Ok(())
}
