//! cgroup v2: one directory in the unified hierarchy.
//!
//! A controller's files appear in a cgroup only when its parent lists the
//! controller in `cgroup.subtree_control`, so creating a cgroup enables
//! `memory`, `cpu` and `pids` (and `cpuset` when asked for) in the
//! hierarchy root and in every parent on the way down, as far as the root
//! offers them. The parents berth makes hold no processes, as v2 requires
//! of cgroups that delegate controllers. Freezing (`cgroup.freeze`) and
//! killing (`cgroup.kill`) are core files and need no controller.

use std::path::Path;

use super::error::CgroupError;
use super::{Cgroup, CgroupPath, FREEZE_TIMEOUT, Layout, Resources, Stats, fsio};

/// The controllers berth enables whenever the root offers them.
const USED: [&str; 3] = ["memory", "cpu", "pids"];

pub(super) fn create(root: &Path, path: &CgroupPath, resources: &Resources) -> Result<Cgroup, CgroupError> {
    let offered_file = root.join("cgroup.controllers");
    let offered = fsio::read(&offered_file)?;
    let offered: Vec<&str> = offered.split_whitespace().collect();
    resources.check_controllers(|c| offered.contains(&c), || format!("{} does not list it", offered_file.display()))?;
    let mut enable: Vec<&str> = USED.iter().copied().filter(|c| offered.contains(c)).collect();
    if resources.wants_cpuset() {
        enable.push("cpuset");
    }
    let leaf = fsio::make_path(root, path, |dir| delegate(dir, &enable))?;
    let cgroup = Cgroup { path: path.clone(), layout: Layout::V2 { root: root.to_path_buf() } };
    match apply(&leaf, resources) {
        Ok(()) => Ok(cgroup),
        Err(e) => Err(cgroup.undo(e)),
    }
}

/// Enables `controllers` for the children of `dir`, writing only those not
/// enabled yet (one per write, so an error names the controller).
pub(super) fn delegate(dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = fsio::read(&file)?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for controller in controllers {
        if !enabled.contains(controller) {
            fsio::write(&file, &format!("+{controller}"))?;
        }
    }
    Ok(())
}

pub(super) fn apply(dir: &Path, resources: &Resources) -> Result<(), CgroupError> {
    if let Some(limit) = resources.memory {
        fsio::write(&dir.join("memory.max"), &limit.to_string())?;
        // Present only when the kernel accounts swap.
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            fsio::write(&swap, "0")?;
        }
    }
    if let Some(cpu) = resources.cpu {
        let value = format!("{} {}", cpu.quota_us(), cpu.period_us());
        fsio::write(&dir.join("cpu.max"), &value)?;
    }
    if let Some(pids) = resources.pids {
        fsio::write(&dir.join("pids.max"), &pids.to_string())?;
    }
    if let Some(cpus) = &resources.cpuset_cpus {
        fsio::write(&dir.join("cpuset.cpus"), cpus.as_str())?;
    }
    if let Some(mems) = &resources.cpuset_mems {
        fsio::write(&dir.join("cpuset.mems"), mems.as_str())?;
    }
    Ok(())
}

pub(super) fn oom_kills(dir: &Path) -> Result<u64, CgroupError> {
    let file = dir.join("memory.events");
    let Some(text) = fsio::read_opt(&file)? else {
        return Err(CgroupError::ControllerMissing {
            controller: "memory",
            purpose: "counting OOM kills",
            detail: format!("{} is missing", file.display()),
        });
    };
    fsio::keyed(&file, &text, "oom_kill")?.ok_or(CgroupError::Parse {
        path: file,
        content: text,
        expected: "an \"oom_kill N\" line",
    })
}

/// Writes `cgroup.kill` when the kernel has it (Linux 5.14+). Returns
/// whether it did.
pub(super) fn kill(dir: &Path) -> Result<bool, CgroupError> {
    let file = dir.join("cgroup.kill");
    if !file.exists() {
        return Ok(false);
    }
    fsio::write(&file, "1")?;
    Ok(true)
}

pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.freeze");
    fsio::write(&file, if frozen { "1" } else { "0" })?;
    let reached = fsio::poll_until(FREEZE_TIMEOUT, || Ok(is_frozen(dir)? == frozen))?;
    if reached {
        return Ok(());
    }
    let state = if frozen { "frozen 1" } else { "frozen 0" };
    let error =
        CgroupError::StateTimeout { path: dir.join("cgroup.events"), state, waited_ms: FREEZE_TIMEOUT.as_millis() };
    if !frozen {
        return Err(error);
    }
    // Do not leave the cgroup half frozen.
    match fsio::write(&file, "0") {
        Ok(()) => Err(error),
        Err(cleanup) => Err(CgroupError::CleanupFailed { error: Box::new(error), cleanup: Box::new(cleanup) }),
    }
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let file = dir.join("cgroup.events");
    let text = fsio::read(&file)?;
    Ok(fsio::keyed(&file, &text, "frozen")? == Some(1))
}

pub(super) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    let events = dir.join("memory.events");
    let cpu = dir.join("cpu.stat");
    Ok(Stats {
        memory_usage: fsio::number_opt(&dir.join("memory.current"))?,
        memory_inactive_file: fsio::keyed_opt(&dir.join("memory.stat"), "inactive_file")?,
        memory_limit: fsio::limit_opt(&dir.join("memory.max"))?,
        oom_kills: fsio::keyed_opt(&events, "oom_kill")?,
        pids_current: fsio::number_opt(&dir.join("pids.current"))?,
        pids_limit: fsio::limit_opt(&dir.join("pids.max"))?,
        pids_refused: fsio::keyed_opt(&dir.join("pids.events"), "max")?,
        cpu_usage_us: fsio::keyed_opt(&cpu, "usage_usec")?,
        cpu_throttled_periods: fsio::keyed_opt(&cpu, "nr_throttled")?,
    })
}
