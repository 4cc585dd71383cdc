//! `berth stats`: CPU, memory and task usage of containers, read from their
//! cgroups (v1 or v2, through [`cgroup`]) the way Docker computes them.
//!
//! - **CPU %** needs two readings: the CPU time the cgroup used between them
//!   over the wall-clock time between them, times 100 (so a container busy
//!   on two CPUs shows 200%). A [`Monitor`] keeps each container's last
//!   reading; the first [`Monitor::read`] waits one interval after
//!   [`Monitor::new`] took the first.
//! - **MEM USAGE** is the memory charged to the cgroup less its inactive
//!   page cache (`inactive_file` in `memory.stat`), as Docker's CLI shows it;
//!   **LIMIT** is the cgroup's limit, or the host's memory without one;
//!   **MEM %** is usage over limit.
//! - **PIDS** is the number of tasks in the cgroup.
//!
//! A container that is not running (or stops meanwhile) reads as zeros,
//! as in Docker.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cgroup::{self, Cgroup, CgroupError, CgroupPath, Hierarchy};
use super::container::Container;
use super::control::{self, ControlError};

/// Where the host's total memory is read, for containers without a limit.
pub const MEMINFO: &str = "/proc/meminfo";

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("container {name}: {source}")]
    Cgroup { name: String, source: CgroupError },
    #[error("cannot find the cgroup hierarchy: {0}")]
    Detect(CgroupError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("cannot read the host's memory size from {path}: {why}")]
    MemInfo { path: String, why: String },
}

/// One container's usage at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reading {
    pub id: String,
    pub name: String,
    /// Percent of one CPU used since the previous reading.
    pub cpu_percent: f64,
    /// Bytes in use, inactive page cache left out.
    pub memory_usage: u64,
    /// The limit in bytes, or the host's memory when there is none.
    pub memory_limit: u64,
    pub memory_percent: f64,
    pub pids: u64,
}

/// What one look at a cgroup gives.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub at: Option<Instant>,
    /// CPU time used so far, in microseconds.
    pub cpu_us: u64,
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    pub pids: u64,
}

/// Turns the previous and the current sample of a container into a reading.
pub fn reading(id: &str, name: &str, before: &Sample, now: &Sample, host_memory: u64) -> Reading {
    let cpu_percent = match (before.at, now.at) {
        (Some(t0), Some(t1)) if t1 > t0 && now.cpu_us >= before.cpu_us => {
            (now.cpu_us - before.cpu_us) as f64 / (t1 - t0).as_micros() as f64 * 100.0
        }
        _ => 0.0,
    };
    let memory_limit = now.memory_limit.unwrap_or(host_memory);
    let memory_percent = if memory_limit == 0 { 0.0 } else { now.memory_usage as f64 / memory_limit as f64 * 100.0 };
    Reading {
        id: id.to_owned(),
        name: name.to_owned(),
        cpu_percent,
        memory_usage: now.memory_usage,
        memory_limit,
        memory_percent,
        pids: now.pids,
    }
}

/// The sample of a cgroup's statistics taken at `at`.
pub fn sample(stats: &cgroup::Stats, at: Instant) -> Sample {
    let charged = stats.memory_usage.unwrap_or(0);
    Sample {
        at: Some(at),
        cpu_us: stats.cpu_usage_us.unwrap_or(0),
        memory_usage: charged.saturating_sub(stats.memory_inactive_file.unwrap_or(0)),
        memory_limit: stats.memory_limit,
        pids: stats.pids_current.unwrap_or(0),
    }
}

/// The `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

struct Watched {
    id: String,
    name: String,
    /// `None` while the container is not running.
    cgroup: Option<Cgroup>,
    last: Sample,
}

/// Watches containers' cgroups and gives a [`Reading`] of each per interval.
pub struct Monitor {
    watched: Vec<Watched>,
    interval: Duration,
    host_memory: u64,
}

impl Monitor {
    /// Takes the first sample of each of `containers`; `interval` is the
    /// time between readings.
    pub fn new(containers: &[Container], interval: Duration) -> Result<Monitor, StatsError> {
        let hierarchy = cgroup::detect().map_err(StatsError::Detect)?;
        let host_memory = host_memory(Path::new(MEMINFO))?;
        let mut watched = Vec::new();
        for c in containers {
            let cgroup = open(&hierarchy, c)?;
            let name = c.record.name.clone();
            let mut w = Watched { id: c.record.id.short().to_owned(), name, cgroup, last: Sample::default() };
            w.last = look(&mut w)?;
            watched.push(w);
        }
        Ok(Monitor { watched, interval, host_memory })
    }

    /// Waits until one interval has passed since the last sample, samples
    /// again and returns each container's reading, in the order given.
    pub fn read(&mut self) -> Result<Vec<Reading>, StatsError> {
        let last = self.watched.iter().filter_map(|w| w.last.at).max();
        if let Some(last) = last {
            // Measurement, not synchronisation: CPU % is usage per interval.
            std::thread::sleep(self.interval.saturating_sub(last.elapsed()));
        }
        let mut readings = Vec::new();
        for w in &mut self.watched {
            let now = look(w)?;
            readings.push(reading(&w.id, &w.name, &w.last, &now, self.host_memory));
            w.last = now;
        }
        Ok(readings)
    }
}

/// The running ones of `containers`: what `stats` shows when no container
/// is named.
pub fn running(containers: Vec<Container>) -> Result<Vec<Container>, StatsError> {
    let mut running = Vec::new();
    for c in containers {
        if control::is_running(&c)? {
            running.push(c);
        }
    }
    Ok(running)
}

/// The container's cgroup when it is running.
fn open(h: &Hierarchy, c: &Container) -> Result<Option<Cgroup>, StatsError> {
    if !control::is_running(c)? {
        return Ok(None);
    }
    let name = || c.record.name.clone();
    let path = CgroupPath::new(&c.record.cgroup).map_err(|source| StatsError::Cgroup { name: name(), source })?;
    match Cgroup::open(h, &path) {
        Ok(group) => Ok(Some(group)),
        // Stopped between the two looks.
        Err(CgroupError::NotFound { .. }) => Ok(None),
        Err(source) => Err(StatsError::Cgroup { name: name(), source }),
    }
}

/// A sample of `w` now; zeros once its cgroup is gone.
fn look(w: &mut Watched) -> Result<Sample, StatsError> {
    let at = Instant::now();
    let Some(group) = &w.cgroup else {
        return Ok(Sample { at: Some(at), ..Sample::default() });
    };
    if !group.paths().iter().all(|d| d.is_dir()) {
        w.cgroup = None;
        return Ok(Sample { at: Some(at), ..Sample::default() });
    }
    let stats = group.stats().map_err(|source| StatsError::Cgroup { name: w.name.clone(), source })?;
    Ok(sample(&stats, at))
}

fn host_memory(meminfo: &Path) -> Result<u64, StatsError> {
    let err = |why: String| StatsError::MemInfo { path: meminfo.display().to_string(), why };
    let text = std::fs::read_to_string(meminfo).map_err(|e| err(e.to_string()))?;
    mem_total(&text).ok_or_else(|| err("no \"MemTotal: N kB\" line".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_cpu_time_over_wall_time() {
        let t0 = Instant::now();
        let before = Sample { at: Some(t0), cpu_us: 1_000, ..Sample::default() };
        let now = Sample { at: Some(t0 + Duration::from_secs(1)), cpu_us: 501_000, ..Sample::default() };
        let r = reading("abc", "web", &before, &now, 1 << 30);
        assert!((r.cpu_percent - 50.0).abs() < 1e-9, "{r:?}");
        // Two CPUs busy: 200%.
        let busy = Sample { cpu_us: 2_001_000, ..now };
        assert!((reading("abc", "web", &before, &busy, 1).cpu_percent - 200.0).abs() < 1e-9);
        // No earlier sample: no rate yet.
        assert_eq!(reading("abc", "web", &Sample::default(), &now, 1).cpu_percent, 0.0);
    }

    #[test]
    fn memory_leaves_inactive_cache_out_and_falls_back_to_the_host_size() {
        let stats = cgroup::Stats {
            memory_usage: Some(3 << 20),
            memory_inactive_file: Some(1 << 20),
            memory_limit: None,
            pids_current: Some(4),
            ..cgroup::Stats::default()
        };
        let now = sample(&stats, Instant::now());
        let r = reading("abc", "web", &Sample::default(), &now, 8 << 20);
        assert_eq!((r.memory_usage, r.memory_limit, r.pids), (2 << 20, 8 << 20, 4));
        assert!((r.memory_percent - 25.0).abs() < 1e-9);
        let limited = Sample { memory_limit: Some(4 << 20), ..now };
        assert!((reading("a", "b", &Sample::default(), &limited, 8 << 20).memory_percent - 50.0).abs() < 1e-9);
    }

    #[test]
    fn mem_total_reads_meminfo() {
        let text = "MemTotal:       24683904 kB\nMemFree:        22289000 kB\n";
        assert_eq!(mem_total(text), Some(24683904 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }
}
