//! cgroup v1: one directory per hierarchy, limits in each controller's own
//! files.
//!
//! berth joins `memory`, `cpu`, `cpuacct`, `pids`, `freezer` and `devices`
//! wherever they are mounted, and `cpuset` only when a cpuset is asked for
//! (a new v1 cpuset starts with no CPUs and no memory nodes, so every level
//! berth makes copies its parent's before anything can join it). Controllers
//! mounted together (`cpu,cpuacct`) share one directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::CgroupError;
use super::{Cgroup, CgroupPath, FREEZE_TIMEOUT, Layout, Resources, Stats, fsio};

/// The controllers berth joins whenever they are mounted.
const USED: [&str; 6] = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// Docker's default device allowlist, written to `devices.allow` after
/// `devices.deny` got `a`: creating any node (`m`) is allowed, since the
/// default capability set keeps `CAP_MKNOD`, but only these may be opened.
pub(super) const DEFAULT_DEVICES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // /dev/null
    "c 1:5 rwm",   // /dev/zero
    "c 1:7 rwm",   // /dev/full
    "c 1:8 rwm",   // /dev/random
    "c 1:9 rwm",   // /dev/urandom
    "c 5:0 rwm",   // /dev/tty
    "c 5:1 rwm",   // /dev/console
    "c 5:2 rwm",   // /dev/ptmx
    "c 136:* rwm", // /dev/pts/*
];

/// One hierarchy's part of a cgroup: the hierarchy's mount point and the
/// controllers berth uses there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Dir {
    pub(super) mount: PathBuf,
    pub(super) controllers: Vec<String>,
}

impl Dir {
    pub(super) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Groups the mounted controllers among `names` by mount point.
fn group(controllers: &BTreeMap<String, PathBuf>, names: &[&str]) -> Vec<Dir> {
    let mut dirs: Vec<Dir> = Vec::new();
    for name in names {
        let Some(mount) = controllers.get(*name) else { continue };
        match dirs.iter_mut().find(|d| &d.mount == mount) {
            Some(dir) => dir.controllers.push((*name).to_owned()),
            None => dirs.push(Dir { mount: mount.clone(), controllers: vec![(*name).to_owned()] }),
        }
    }
    dirs
}

/// The directory of `controller` for `path`, if the cgroup uses it.
fn dir_of(path: &CgroupPath, dirs: &[Dir], controller: &str) -> Option<PathBuf> {
    dirs.iter().find(|d| d.has(controller)).map(|d| path.under(&d.mount))
}

/// Like [`dir_of`], for a controller an operation cannot do without.
fn need(
    path: &CgroupPath,
    dirs: &[Dir],
    controller: &'static str,
    purpose: &'static str,
) -> Result<PathBuf, CgroupError> {
    dir_of(path, dirs, controller).ok_or_else(|| CgroupError::ControllerMissing {
        controller,
        purpose,
        detail: format!("cgroup {path} has no v1 {controller} directory"),
    })
}

/// The hierarchies in which `path` exists.
pub(super) fn existing(controllers: &BTreeMap<String, PathBuf>, path: &CgroupPath) -> Vec<Dir> {
    let mut names = USED.to_vec();
    names.push("cpuset");
    let mut dirs = group(controllers, &names);
    dirs.retain(|d| path.under(&d.mount).is_dir());
    dirs
}

pub(super) fn create(
    controllers: &BTreeMap<String, PathBuf>,
    path: &CgroupPath,
    resources: &Resources,
) -> Result<Cgroup, CgroupError> {
    resources.check_controllers(|c| controllers.contains_key(c), || "no cgroup v1 hierarchy has it mounted".into())?;
    let mut names = USED.to_vec();
    if resources.wants_cpuset() {
        names.push("cpuset");
    }
    let undo = |made: &[Dir], error| {
        let cgroup = Cgroup { path: path.clone(), layout: Layout::V1(made.to_vec()) };
        cgroup.undo(error)
    };
    let mut made: Vec<Dir> = Vec::new();
    for dir in group(controllers, &names) {
        let cpuset = dir.has("cpuset");
        let mount = dir.mount.clone();
        let leaf = fsio::make_path(&mount, path, |at| if cpuset && at != mount { inherit_cpuset(at) } else { Ok(()) });
        let leaf = match leaf {
            Ok(leaf) => leaf,
            Err(e) => return Err(undo(&made, e)),
        };
        made.push(dir);
        if cpuset && let Err(e) = inherit_cpuset(&leaf) {
            return Err(undo(&made, e));
        }
    }
    match apply(path, &made, resources) {
        Ok(()) => Ok(Cgroup { path: path.clone(), layout: Layout::V1(made) }),
        Err(e) => Err(undo(&made, e)),
    }
}

/// Gives a new cpuset directory its parent's CPUs and memory nodes.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else { return Ok(()) };
    for name in ["cpuset.cpus", "cpuset.mems"] {
        if fsio::read(&dir.join(name))?.trim().is_empty() {
            let value = fsio::read(&parent.join(name))?;
            fsio::write(&dir.join(name), value.trim())?;
        }
    }
    Ok(())
}

/// Writes the device allowlist and `resources` into a new cgroup.
pub(super) fn apply(path: &CgroupPath, dirs: &[Dir], resources: &Resources) -> Result<(), CgroupError> {
    if let Some(dir) = dir_of(path, dirs, "devices") {
        fsio::write(&dir.join("devices.deny"), "a")?;
        for rule in DEFAULT_DEVICES {
            fsio::write(&dir.join("devices.allow"), rule)?;
        }
    }
    if let Some(limit) = resources.memory {
        let dir = need(path, dirs, "memory", "the memory limit")?;
        // A new cgroup has no swap limit, so memory goes first (memsw may
        // never be below it); the equal memsw limit then allows no swap.
        fsio::write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            fsio::write(&memsw, &limit.to_string())?;
        }
    }
    if let Some(cpu) = resources.cpu {
        let dir = need(path, dirs, "cpu", "the CPU quota")?;
        fsio::write(&dir.join("cpu.cfs_period_us"), &cpu.period_us().to_string())?;
        fsio::write(&dir.join("cpu.cfs_quota_us"), &cpu.quota_us().to_string())?;
    }
    if let Some(pids) = resources.pids {
        let dir = need(path, dirs, "pids", "the pids limit")?;
        fsio::write(&dir.join("pids.max"), &pids.to_string())?;
    }
    if resources.wants_cpuset() {
        let dir = need(path, dirs, "cpuset", "the cpuset")?;
        if let Some(cpus) = &resources.cpuset_cpus {
            fsio::write(&dir.join("cpuset.cpus"), cpus.as_str())?;
        }
        if let Some(mems) = &resources.cpuset_mems {
            fsio::write(&dir.join("cpuset.mems"), mems.as_str())?;
        }
    }
    Ok(())
}

pub(super) fn oom_kills(path: &CgroupPath, dirs: &[Dir]) -> Result<u64, CgroupError> {
    let file = need(path, dirs, "memory", "counting OOM kills")?.join("memory.oom_control");
    let text = fsio::read(&file)?;
    fsio::keyed(&file, &text, "oom_kill")?.ok_or(CgroupError::Parse {
        path: file,
        content: text,
        expected: "an \"oom_kill N\" line (Linux 4.13 or later)",
    })
}

pub(super) fn set_frozen(path: &CgroupPath, dirs: &[Dir], frozen: bool) -> Result<(), CgroupError> {
    let purpose = if frozen { "freezing" } else { "thawing" };
    let file = need(path, dirs, "freezer", purpose)?.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    fsio::write(&file, want)?;
    let reached = fsio::poll_until(FREEZE_TIMEOUT, || {
        if fsio::read(&file)?.trim() == want {
            return Ok(true);
        }
        // Still FREEZING: asking again makes the kernel retry tasks that
        // were busy (or newly forked) the first time.
        fsio::write(&file, want)?;
        Ok(false)
    })?;
    if reached {
        return Ok(());
    }
    let error = CgroupError::StateTimeout { path: file.clone(), state: want, waited_ms: FREEZE_TIMEOUT.as_millis() };
    if !frozen {
        return Err(error);
    }
    // Do not leave the cgroup half frozen.
    match fsio::write(&file, "THAWED") {
        Ok(()) => Err(error),
        Err(cleanup) => Err(CgroupError::CleanupFailed { error: Box::new(error), cleanup: Box::new(cleanup) }),
    }
}

pub(super) fn is_frozen(path: &CgroupPath, dirs: &[Dir]) -> Result<bool, CgroupError> {
    let file = need(path, dirs, "freezer", "reading the freezer state")?.join("freezer.state");
    Ok(fsio::read(&file)?.trim() == "FROZEN")
}

pub(super) fn stats(path: &CgroupPath, dirs: &[Dir]) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    if let Some(dir) = dir_of(path, dirs, "memory") {
        stats.memory_usage = fsio::number_opt(&dir.join("memory.usage_in_bytes"))?;
        stats.memory_inactive_file = fsio::keyed_opt(&dir.join("memory.stat"), "total_inactive_file")?;
        stats.memory_limit = fsio::limit_opt(&dir.join("memory.limit_in_bytes"))?;
        stats.oom_kills = fsio::keyed_opt(&dir.join("memory.oom_control"), "oom_kill")?;
    }
    if let Some(dir) = dir_of(path, dirs, "pids") {
        stats.pids_current = fsio::number_opt(&dir.join("pids.current"))?;
        stats.pids_limit = fsio::limit_opt(&dir.join("pids.max"))?;
        stats.pids_refused = fsio::keyed_opt(&dir.join("pids.events"), "max")?;
    }
    if let Some(dir) = dir_of(path, dirs, "cpuacct") {
        stats.cpu_usage_us = fsio::number_opt(&dir.join("cpuacct.usage"))?.map(|ns| ns / 1_000);
    }
    if let Some(dir) = dir_of(path, dirs, "cpu") {
        stats.cpu_throttled_periods = fsio::keyed_opt(&dir.join("cpu.stat"), "nr_throttled")?;
    }
    Ok(stats)
}
