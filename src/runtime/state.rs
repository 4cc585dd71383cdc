//! A container's `state.json`: what its shim last recorded, and what is
//! really true now.
//!
//! The shim is the only writer; it rewrites the whole file atomically
//! (temp file in the same directory, fsync, rename, fsync of the directory),
//! so a reader sees the old state or the new one, never a mix. Readers (the
//! CLI: `ps`, `logs -f`, `stop`) never trust a pid alone: a process is
//! identified by its pid *and* its start time (field 22 of `/proc/PID/stat`,
//! clock ticks since boot), so a pid the kernel reused for another process is
//! never taken for the container or its shim ([`process_alive`]).
//!
//! A state that says `running` is only as true as its shim is alive: if the
//! shim died (killed, OOM, a crash), nobody collects the exit status or
//! applies the restart policy. [`observed_status`] reports such a container
//! as `exited` (its process is gone too) or `dead` (its process is left
//! running unsupervised), with the reason.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::logs::Timestamp;
use crate::store::{StoreError, atomic_write};

/// The file name of the state in a container's directory.
pub const STATE_FILE: &str = "state.json";

/// Everything that can go wrong reading or writing a container's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{} does not exist: the container is still being created, or its directory is not a container's", path.display())]
    Missing { path: PathBuf },

    #[error("cannot read container state {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("container state {} is not valid ({source}); the shim writes it whole, so the file was changed by something else", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },

    #[error("cannot encode the state of container {id}: {source}")]
    Encode { id: String, source: serde_json::Error },

    #[error("cannot write container state {}: {source}", path.display())]
    Write { path: PathBuf, source: Box<StoreError> },

    #[error("cannot read the start time of process {pid} from {}: {reason}", path.display())]
    ProcStat { pid: i32, path: PathBuf, reason: String },
}

/// The lifecycle of a container, as `docker ps` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Set up but its process not started yet.
    Created,
    Running,
    /// Frozen by the cgroup freezer.
    Paused,
    /// Exited and waiting for its restart-policy delay.
    Restarting,
    Exited,
    /// Unusable: its shim is gone while its process may still run, or
    /// removal failed halfway.
    Dead,
}

impl Status {
    /// The lowercase name: `running`, `exited`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a shim is expected to be looking after the container.
    pub fn is_supervised(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused | Status::Restarting)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content of `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub status: Status,
    /// The container's first process (berth's init), in the host's pid namespace.
    pub pid: Option<i32>,
    /// The start time of `pid`, in clock ticks since boot.
    pub pid_start: Option<u64>,
    pub shim_pid: i32,
    /// The start time of `shim_pid`, in clock ticks since boot.
    pub shim_start: u64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub restart_count: u32,
    /// The user asked for the container to stop: no restart policy applies.
    #[serde(default)]
    pub stop_requested: bool,
    /// Why the container could not be started or supervised, if it could not.
    #[serde(default)]
    pub error: Option<String>,
}

impl State {
    /// The state a shim records first: created, nothing started yet.
    pub fn created(id: &str, shim_pid: i32, shim_start: u64) -> State {
        State {
            id: id.to_owned(),
            status: Status::Created,
            pid: None,
            pid_start: None,
            shim_pid,
            shim_start,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            stop_requested: false,
            error: None,
        }
    }
}

impl State {
    /// The container's first process started as `pid` (start time `pid_start`).
    pub fn running(&mut self, pid: i32, pid_start: u64) {
        self.status = Status::Running;
        self.pid = Some(pid);
        self.pid_start = Some(pid_start);
        self.started_at = Some(Timestamp::now());
        self.finished_at = None;
        self.exit_code = None;
        self.oom_killed = false;
        self.error = None;
    }

    /// The container exited with `code`.
    pub fn exited(&mut self, code: i32, oom_killed: bool) {
        self.status = Status::Exited;
        self.exit_code = Some(code);
        self.oom_killed = oom_killed;
        self.finished_at = Some(Timestamp::now());
    }

    /// The container could not be started (or supervised): `why`.
    pub fn failed(&mut self, code: i32, why: String) {
        self.exited(code, false);
        self.error = Some(why);
    }
}

/// Reads `DIR/state.json`.
pub fn read_state(container_dir: &Path) -> Result<State, StateError> {
    let path = container_dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::Missing { path }),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| StateError::Parse { path, source })
}

/// Replaces `DIR/state.json` atomically: temp file in `DIR`, fsync, rename,
/// fsync of `DIR`.
pub fn write_state(container_dir: &Path, state: &State) -> Result<(), StateError> {
    let mut bytes =
        serde_json::to_vec_pretty(state).map_err(|source| StateError::Encode { id: state.id.clone(), source })?;
    bytes.push(b'\n');
    let path = container_dir.join(STATE_FILE);
    atomic_write(container_dir, &path, &bytes).map_err(|source| StateError::Write { path, source: Box::new(source) })
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), to record
/// next to the pid.
pub fn process_start_time(pid: i32) -> Result<u64, StateError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let text = std::fs::read_to_string(&path).map_err(|e| StateError::ProcStat {
        pid,
        path: path.clone(),
        reason: e.to_string(),
    })?;
    parse_stat(&text).map(|stat| stat.start).ok_or_else(|| StateError::ProcStat {
        pid,
        path,
        reason: "unexpected format".to_owned(),
    })
}

/// Whether the process `pid` that started at `start` is still running. A
/// pid now used by another process, and a zombie (exited, not yet reaped),
/// are not alive.
pub fn process_alive(pid: i32, start: u64) -> bool {
    process_alive_in(Path::new("/proc"), pid, start)
}

/// [`process_alive`] against a `/proc` mounted at `proc_root`.
pub fn process_alive_in(proc_root: &Path, pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) else {
        return false;
    };
    parse_stat(&text).is_some_and(|stat| stat.start == start && !matches!(stat.state, 'Z' | 'X' | 'x'))
}

struct ProcStat {
    state: char,
    start: u64,
}

/// The state (field 3) and start time (field 22) of a `/proc/PID/stat` line.
/// The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcStat { state, start })
}

/// The status a reader should show, and why it differs from the recorded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub status: Status,
    pub stale: Option<Stale>,
}

/// Why a recorded status is not the true one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// The shim is gone and so is the container's process: it ended without
    /// anyone recording how.
    ShimGone { shim_pid: i32, recorded: Status },
    /// The shim is gone but the container's process still runs: nobody
    /// keeps its logs, exit status or restart policy.
    Orphaned { shim_pid: i32, pid: i32 },
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::ShimGone { shim_pid, recorded } => {
                write!(f, "shim (pid {shim_pid}) died while the container was {recorded}; its exit status is unknown")
            }
            Stale::Orphaned { shim_pid, pid } => write!(
                f,
                "shim (pid {shim_pid}) died but the container's process (pid {pid}) still runs unsupervised; stop or remove the container"
            ),
        }
    }
}

/// What is true of the container now, given what its shim last recorded.
pub fn observed_status(state: &State) -> Observed {
    observed_status_with(state, &process_alive)
}

/// [`observed_status`] with `alive(pid, start)` telling whether a process lives.
pub fn observed_status_with(state: &State, alive: &dyn Fn(i32, u64) -> bool) -> Observed {
    let as_recorded = Observed { status: state.status, stale: None };
    if !state.status.is_supervised() || alive(state.shim_pid, state.shim_start) {
        return as_recorded;
    }
    match (state.pid, state.pid_start) {
        (Some(pid), Some(start)) if alive(pid, start) => {
            Observed { status: Status::Dead, stale: Some(Stale::Orphaned { shim_pid: state.shim_pid, pid }) }
        }
        _ => Observed {
            status: Status::Exited,
            stale: Some(Stale::ShimGone { shim_pid: state.shim_pid, recorded: state.status }),
        },
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
