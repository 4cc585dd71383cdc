//! Resource limits and process control through cgroups, v1 and v2.
//!
//! # How it fits together
//!
//! [`detect`] reads the mount table once and returns a [`Hierarchy`]: either
//! the cgroup v2 mount (when it offers `memory`, `cpu` and `pids`) or the
//! mount point of every cgroup v1 controller (see `mountinfo` for the
//! choice on hybrid hosts). Everything else takes that value as a
//! parameter, so tests point it at a temporary directory.
//!
//! A [`Cgroup`] is one logical cgroup named by a [`CgroupPath`] such as
//! `berth/<container-id>`, relative to each hierarchy's root. On v2 it is one
//! directory; on v1 it is one directory per hierarchy berth uses (memory,
//! cpu, cpuacct, pids, freezer, devices, and cpuset only when a cpuset is
//! asked for), co-mounted controllers sharing one. [`Cgroup::create`] makes
//! the directories and writes the [`Resources`]; [`Cgroup::open`] finds an
//! existing one for `exec`, `top` and `rm`.
//!
//! # v1 and v2 differences callers see
//!
//! - Devices: on v1 the cgroup denies every device except Docker's default
//!   list (plus `mknod` of any node, which is harmless without access). v2
//!   controls devices with eBPF programs, which berth does not load, so
//!   [`Cgroup::devices_enforced`] is false there and the caller must drop
//!   `CAP_MKNOD` instead.
//! - Swap: v1 sets `memory.memsw.limit_in_bytes` to the memory limit, v2 sets
//!   `memory.swap.max` to 0; either way there is no swap beyond the limit
//!   (when the kernel accounts swap at all).
//! - Killing: v2 writes `cgroup.kill` (Linux 5.14+). Otherwise berth freezes
//!   the cgroup, sends `SIGKILL` to every listed process, thaws it, and
//!   repeats until the cgroup is empty: frozen processes cannot fork or exit,
//!   so no process escapes and no listed id is reused meanwhile.
//!
//! # Ordering with the cgroup namespace
//!
//! A container's first process must join its cgroup before it unshares the
//! cgroup namespace, or the namespace root would be the cgroup it was
//! started in. Either the parent calls [`Cgroup::add_process`] while the
//! child waits, or the child itself uses a [`Joiner`] opened beforehand,
//! which neither allocates nor locks and so is safe between `fork` and
//! `exec`.

pub mod delegated;
mod error;
mod fsio;
mod join;
mod mountinfo;
mod path;
mod resources;
mod v1;
mod v2;

#[cfg(test)]
mod tests_fake;
#[cfg(test)]
mod tests_kernel;

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::time::Duration;

pub use error::CgroupError;
pub use join::Joiner;
pub use mountinfo::{Hierarchy, detect, detect_from};
pub use path::CgroupPath;
pub use resources::{CpuList, CpuMax, DEFAULT_CPU_PERIOD_US, MIN_CPUS, MIN_MEMORY, MIN_PIDS, Resources};

use crate::sys;

/// Why this process can apply no limit (berth without root and no cgroup
/// delegated to it), or `None` when it can.
pub fn unavailable() -> Option<String> {
    match detect() {
        Ok(Hierarchy::Unavailable { why }) => Some(why),
        _ => None,
    }
}

/// How long [`Cgroup::freeze`] and [`Cgroup::thaw`] wait for the state to
/// read back.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`Cgroup::kill_all`] waits for the last process to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Usage and limits for `ps`, `top` and `stats`. A field is `None` when its
/// controller is not used for this cgroup (or, for limits, when there is no
/// limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory charged to the cgroup, page cache included, in bytes.
    pub memory_usage: Option<u64>,
    /// Page cache not recently used (`inactive_file` of `memory.stat`):
    /// what `stats` leaves out of the usage, as Docker does.
    pub memory_inactive_file: Option<u64>,
    /// The memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// Processes killed by the OOM killer inside the cgroup.
    pub oom_kills: Option<u64>,
    /// Tasks (processes and threads) in the cgroup.
    pub pids_current: Option<u64>,
    /// The task limit.
    pub pids_limit: Option<u64>,
    /// Forks and clones the task limit refused (`pids.events` `max`).
    pub pids_refused: Option<u64>,
    /// CPU time used, in microseconds.
    pub cpu_usage_us: Option<u64>,
    /// Periods in which the CPU quota stopped the cgroup.
    pub cpu_throttled_periods: Option<u64>,
}

/// One logical cgroup: a directory per v1 hierarchy berth uses, or one v2
/// directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    path: CgroupPath,
    layout: Layout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Layout {
    V1(Vec<v1::Dir>),
    V2 {
        root: PathBuf,
    },
    /// No cgroup ([`Hierarchy::Unavailable`]): nothing to join, nothing to
    /// read, nothing to remove; freezing is refused with `why`.
    None {
        why: String,
    },
}

impl Cgroup {
    /// Makes the cgroup `path` in every hierarchy berth uses and applies
    /// `resources`. Parents may exist; the cgroup itself must not. A limit
    /// whose controller is missing is an error; on failure, what was made
    /// is removed again.
    pub fn create(h: &Hierarchy, path: &CgroupPath, resources: &Resources) -> Result<Cgroup, CgroupError> {
        resources.check()?;
        match h {
            Hierarchy::V1 { controllers } => v1::create(controllers, path, resources),
            Hierarchy::V2 { root } => v2::create(root, path, resources),
            Hierarchy::Unavailable { why } => match resources.named_limits() {
                Some(limits) => Err(CgroupError::NotDelegated { limits, why: why.clone() }),
                None => Ok(Cgroup { path: path.clone(), layout: Layout::None { why: why.clone() } }),
            },
        }
    }

    /// Finds the existing cgroup `path`.
    pub fn open(h: &Hierarchy, path: &CgroupPath) -> Result<Cgroup, CgroupError> {
        let layout = match h {
            Hierarchy::V1 { controllers } => Layout::V1(v1::existing(controllers, path)),
            Hierarchy::V2 { root } => Layout::V2 { root: root.clone() },
            Hierarchy::Unavailable { why } => {
                return Ok(Cgroup { path: path.clone(), layout: Layout::None { why: why.clone() } });
            }
        };
        let cgroup = Cgroup { path: path.clone(), layout };
        let dirs = cgroup.paths();
        if dirs.is_empty() || !dirs.iter().all(|d| d.is_dir()) {
            let path = dirs.into_iter().next().unwrap_or_else(|| PathBuf::from(path.to_string()));
            return Err(CgroupError::NotFound { path });
        }
        Ok(cgroup)
    }

    /// The cgroup's name below the hierarchy roots.
    pub fn path(&self) -> &CgroupPath {
        &self.path
    }

    /// Every directory of this cgroup (one on v2).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1(dirs) => dirs.iter().map(|d| self.path.under(&d.mount)).collect(),
            Layout::V2 { root } => vec![self.path.under(root)],
            Layout::None { .. } => Vec::new(),
        }
    }

    /// Whether the cgroup restricts device access (v1 `devices`). When it
    /// does not, the caller should drop `CAP_MKNOD`.
    pub fn devices_enforced(&self) -> bool {
        match &self.layout {
            Layout::V1(dirs) => dirs.iter().any(|d| d.has("devices")),
            Layout::V2 { .. } | Layout::None { .. } => false,
        }
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::InvalidPid { pid });
        }
        for dir in self.paths() {
            fsio::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Opens every `cgroup.procs` of the cgroup for a later [`Joiner::join`].
    pub fn joiner(&self) -> Result<Joiner, CgroupError> {
        let mut files = Vec::new();
        for dir in self.paths() {
            let path = dir.join("cgroup.procs");
            let file =
                OpenOptions::new().write(true).open(&path).map_err(|source| CgroupError::Open { path, source })?;
            files.push(file);
        }
        Ok(Joiner { files })
    }

    /// The processes in the cgroup and its child cgroups, sorted.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in self.paths() {
            for sub in fsio::tree(&dir)? {
                pids.extend(fsio::read_pids(&sub.join("cgroup.procs"))?);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// How many processes the OOM killer has killed in the cgroup.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        match &self.layout {
            Layout::V1(dirs) => v1::oom_kills(&self.path, dirs),
            Layout::V2 { root } => v2::oom_kills(&self.path.under(root)),
            Layout::None { .. } => Ok(0),
        }
    }

    /// Stops every process in the cgroup and waits until the kernel says all
    /// are stopped.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(dirs) => v1::set_frozen(&self.path, dirs, true),
            Layout::V2 { root } => v2::set_frozen(&self.path.under(root), true),
            Layout::None { why } => Err(CgroupError::NoCgroup { what: "freezing a container", why: why.clone() }),
        }
    }

    /// Lets the processes of a frozen cgroup run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(dirs) => v1::set_frozen(&self.path, dirs, false),
            Layout::V2 { root } => v2::set_frozen(&self.path.under(root), false),
            Layout::None { why } => Err(CgroupError::NoCgroup { what: "freezing a container", why: why.clone() }),
        }
    }

    /// Whether the cgroup is frozen (fully: a cgroup still freezing is not).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match &self.layout {
            Layout::V1(dirs) => v1::is_frozen(&self.path, dirs),
            Layout::V2 { root } => v2::is_frozen(&self.path.under(root)),
            Layout::None { why } => Err(CgroupError::NoCgroup { what: "freezing a container", why: why.clone() }),
        }
    }

    /// Kills every process in the cgroup (and its child cgroups) and waits
    /// until none is left. The calling process is never killed: should it be
    /// a member, it stays (and [`Cgroup::remove`] will report it).
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        if let Layout::V2 { root } = &self.layout
            && !self.procs()?.contains(&own_pid())
            && v2::kill(&self.path.under(root))?
        {
            return self.wait_empty(false);
        }
        self.wait_empty(true)
    }

    /// Waits for the cgroup to empty; with `signal`, each round freezes (when
    /// possible), kills every listed process and thaws.
    fn wait_empty(&self, signal: bool) -> Result<(), CgroupError> {
        let mut left = Vec::new();
        // Freezing is given up for good once it sticks (a task in state D),
        // so that a stuck freeze does not eat the whole timeout every round.
        let mut freezer = self.has_freezer();
        let emptied = fsio::poll_until(KILL_TIMEOUT, || {
            left = self.procs()?;
            left.retain(|&p| p != own_pid());
            if left.is_empty() {
                return Ok(true);
            }
            if signal {
                freezer = self.signal_round(freezer)?;
            }
            Ok(false)
        })?;
        if emptied {
            return Ok(());
        }
        Err(CgroupError::KillTimeout {
            path: self.paths().into_iter().next().unwrap_or_default(),
            pids: left,
            waited_ms: KILL_TIMEOUT.as_millis(),
        })
    }

    /// One round of freeze (with `freezer`), SIGKILL to everyone listed,
    /// thaw. Returns whether freezing worked, for the next round.
    fn signal_round(&self, freezer: bool) -> Result<bool, CgroupError> {
        // Without a freezer the kill still goes out; later rounds catch
        // processes forked meanwhile.
        let frozen = freezer && self.freeze().is_ok();
        let mut result = Ok(frozen);
        for pid in self.procs()? {
            if pid == own_pid() {
                continue;
            }
            if let Err(source) = sys::signal::sigkill(pid) {
                let path = self.paths().into_iter().next().unwrap_or_default();
                result = Err(CgroupError::Signal { pid, path, source });
                break;
            }
        }
        if frozen {
            self.thaw()?;
        }
        result
    }

    fn has_freezer(&self) -> bool {
        match &self.layout {
            Layout::V1(dirs) => dirs.iter().any(|d| d.has("freezer")),
            Layout::V2 { root } => self.path.under(root).join("cgroup.freeze").exists(),
            Layout::None { .. } => false,
        }
    }

    /// Removes the cgroup's directories (and any child cgroups), then the
    /// parents its path names that are left empty. Directories already gone
    /// are fine, so removing twice succeeds. Processes still in it make this
    /// fail with [`CgroupError::Busy`]: call [`Cgroup::kill_all`] first, or
    /// use [`Cgroup::destroy`].
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mounts: Vec<PathBuf> = match &self.layout {
            Layout::V1(dirs) => dirs.iter().map(|d| d.mount.clone()).collect(),
            Layout::V2 { root } => vec![root.clone()],
            Layout::None { .. } => Vec::new(),
        };
        for mount in &mounts {
            fsio::remove_tree(&self.path.under(mount))?;
        }
        for mount in &mounts {
            fsio::remove_parents(mount, &self.path)?;
        }
        Ok(())
    }

    /// Kills everything in the cgroup, then removes it.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let exists = self.paths().iter().any(|d| d.is_dir());
        if exists {
            self.kill_all()?;
        }
        self.remove()
    }

    /// Usage and limits, for `ps` and `top`.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.layout {
            Layout::V1(dirs) => v1::stats(&self.path, dirs),
            Layout::V2 { root } => v2::stats(&self.path.under(root)),
            Layout::None { .. } => Ok(Stats::default()),
        }
    }

    /// Removes what [`Cgroup::create`] made after `error`, keeping both errors
    /// if that fails too.
    fn undo(&self, error: CgroupError) -> CgroupError {
        match self.remove() {
            Ok(()) => error,
            Err(cleanup) => CgroupError::CleanupFailed { error: Box::new(error), cleanup: Box::new(cleanup) },
        }
    }
}

/// This process's id, as cgroup files list it.
fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}
