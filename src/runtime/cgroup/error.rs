//! The cgroup module's one error type.
//!
//! Every variant names the file or directory it was working on and carries
//! the underlying cause, so a message read alone says what failed, where, and
//! what would be right.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while detecting, creating, driving or
/// removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read the mount table {}: {source}; is /proc mounted?", path.display())]
    ReadMountinfo { path: PathBuf, source: io::Error },

    #[error("{}: line {line} is not a mountinfo record ({reason})", path.display())]
    Mountinfo { path: PathBuf, line: usize, reason: &'static str },

    #[error(
        "no cgroup filesystem is mounted (looked in {}); mount cgroup2 at /sys/fs/cgroup, or cgroup v1 controllers under /sys/fs/cgroup/<controller>",
        path.display()
    )]
    NoHierarchy { path: PathBuf },

    #[error(
        "invalid cgroup path {path:?}: {reason}; expected relative components of letters, digits, '-', '_' or '.', such as \"berth/<container-id>\""
    )]
    InvalidPath { path: String, reason: &'static str },

    #[error("invalid resource limit: {what} is {value}; {expected}")]
    InvalidResource { what: &'static str, value: String, expected: &'static str },

    #[error(
        "the {controller} controller is needed for {purpose} but is not available ({detail}); enable it or drop the limit"
    )]
    ControllerMissing { controller: &'static str, purpose: &'static str, detail: String },

    #[error(
        "{limits} cannot be applied: {why}; or run without them (--limits=ignore, or BERTH_LIMITS=ignore, runs and warns)"
    )]
    NotDelegated { limits: String, why: String },

    #[error("{what} needs a cgroup, and there is none: {why}")]
    NoCgroup { what: &'static str, why: String },

    #[error("cannot move process {pid} into a cgroup: process ids are positive")]
    InvalidPid { pid: i32 },

    #[error("cgroup {} already exists (left over from an earlier run?); remove it before creating it again", path.display())]
    AlreadyExists { path: PathBuf },

    #[error("cgroup {} does not exist in any hierarchy berth uses", path.display())]
    NotFound { path: PathBuf },

    #[error("cannot create cgroup directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write { path: PathBuf, value: String, source: io::Error },

    #[error("cannot open {} for writing: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("{}: unexpected content {content:?}; expected {expected}", path.display())]
    Parse { path: PathBuf, content: String, expected: &'static str },

    #[error("cannot remove cgroup directory {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },

    #[error(
        "cannot remove cgroup {}: it still holds processes {pids:?}; stop them first (Cgroup::kill_all)",
        path.display()
    )]
    Busy { path: PathBuf, pids: Vec<i32> },

    #[error("cannot send SIGKILL to process {pid} of cgroup {}: {source}", path.display())]
    Signal { pid: i32, path: PathBuf, source: io::Error },

    #[error(
        "processes {pids:?} of cgroup {} are still alive {waited_ms} ms after SIGKILL; they may be stuck in the kernel (state D)",
        path.display()
    )]
    KillTimeout { path: PathBuf, pids: Vec<i32>, waited_ms: u128 },

    #[error(
        "{} did not reach state {state} within {waited_ms} ms; a process may be stuck in the kernel (state D)",
        path.display()
    )]
    StateTimeout { path: PathBuf, state: &'static str, waited_ms: u128 },

    #[error("{error}; cleaning up the half-made cgroup also failed: {cleanup}")]
    CleanupFailed { error: Box<CgroupError>, cleanup: Box<CgroupError> },
}
