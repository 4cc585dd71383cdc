//! The limits a cgroup enforces, in berth's own small types, and their
//! conversion from an OCI runtime spec's `linux.resources`.
//!
//! Only what berth applies is modelled: memory (with no swap beyond it),
//! CPU bandwidth (quota per period), the number of tasks, and optionally a
//! cpuset. Values are checked when they are made, so creating a cgroup never
//! writes a value the kernel would refuse for being out of range.

use oci_spec::runtime::LinuxResources;

use super::error::CgroupError;

/// The CFS period berth uses when none is given: 100 ms, the kernel's default.
pub const DEFAULT_CPU_PERIOD_US: u64 = 100_000;

/// The smallest memory limit berth accepts: 1 MiB (a container could not
/// even start below that).
pub const MIN_MEMORY: u64 = 1 << 20;

/// The smallest pids limit berth accepts: berth's init (PID 1) and the
/// command it starts. (With 1, init cannot fork the command at all.)
pub const MIN_PIDS: u64 = 2;

/// The smallest number of CPUs: a CPU quota of 1 ms, the kernel's least,
/// per [`DEFAULT_CPU_PERIOD_US`].
pub const MIN_CPUS: f64 = 0.01;

/// Limits for one cgroup. `None` means "no limit".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory in bytes. Swap is capped at the same total, so the container
    /// gets no swap beyond its memory limit.
    pub memory: Option<u64>,
    /// CPU bandwidth.
    pub cpu: Option<CpuMax>,
    /// Maximum number of tasks (processes and threads).
    pub pids: Option<u64>,
    /// CPUs the container may run on (cpuset), such as `0-1,3`.
    pub cpuset_cpus: Option<CpuList>,
    /// Memory nodes the container may allocate from (cpuset).
    pub cpuset_mems: Option<CpuList>,
}

impl Resources {
    /// The limits set, named as a user asks for them ("memory, pids"), or
    /// `None` when there is no limit at all.
    pub fn named_limits(&self) -> Option<String> {
        let named = [
            (self.memory.is_some(), "memory"),
            (self.cpu.is_some(), "cpus"),
            (self.pids.is_some(), "pids"),
            (self.cpuset_cpus.is_some() || self.cpuset_mems.is_some(), "cpuset"),
        ];
        let set: Vec<&str> = named.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
        (!set.is_empty()).then(|| format!("the limit{} {}", if set.len() > 1 { "s" } else { "" }, set.join(", ")))
    }

    /// Checks the values that plain integers can get wrong.
    pub(crate) fn check(&self) -> Result<(), CgroupError> {
        if let Some(memory) = self.memory
            && memory < MIN_MEMORY
        {
            return Err(CgroupError::InvalidResource {
                what: "the memory limit",
                value: format!("{memory} bytes"),
                expected: "at least 1 MiB",
            });
        }
        if let Some(pids) = self.pids
            && pids < MIN_PIDS
        {
            return Err(CgroupError::InvalidResource {
                what: "the pids limit",
                value: pids.to_string(),
                expected: "at least 2, berth's init and the command (or no limit)",
            });
        }
        Ok(())
    }

    /// Checks that every controller a limit needs is `available`; `detail`
    /// says where berth looked, for the error.
    pub(crate) fn check_controllers(
        &self,
        available: impl Fn(&str) -> bool,
        detail: impl Fn() -> String,
    ) -> Result<(), CgroupError> {
        let required = [
            ("memory", self.memory.is_some(), "the memory limit"),
            ("cpu", self.cpu.is_some(), "the CPU quota"),
            ("pids", self.pids.is_some(), "the pids limit"),
            ("cpuset", self.wants_cpuset(), "the cpuset"),
        ];
        for (controller, wanted, purpose) in required {
            if wanted && !available(controller) {
                return Err(CgroupError::ControllerMissing { controller, purpose, detail: detail() });
            }
        }
        Ok(())
    }

    /// Whether a cpuset is asked for.
    pub(crate) fn wants_cpuset(&self) -> bool {
        self.cpuset_cpus.is_some() || self.cpuset_mems.is_some()
    }
}

/// A CFS bandwidth limit: `quota_us` of CPU time per `period_us` of wall time
/// (a quota of twice the period is two full CPUs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuMax {
    quota_us: u64,
    period_us: u64,
}

impl CpuMax {
    /// A quota and a period in microseconds. The kernel accepts periods from
    /// 1 ms to 1 s and quotas of at least 1 ms.
    pub fn new(quota_us: u64, period_us: u64) -> Result<CpuMax, CgroupError> {
        if !(1_000..=1_000_000).contains(&period_us) {
            return Err(CgroupError::InvalidResource {
                what: "the CPU period",
                value: format!("{period_us} µs"),
                expected: "between 1000 µs (1 ms) and 1000000 µs (1 s)",
            });
        }
        if quota_us < 1_000 {
            return Err(CgroupError::InvalidResource {
                what: "the CPU quota",
                value: format!("{quota_us} µs"),
                expected: "at least 1000 µs (1 ms) per period",
            });
        }
        Ok(CpuMax { quota_us, period_us })
    }

    /// A fractional number of CPUs, such as `0.5`, over the default period.
    pub fn from_cpus(cpus: f64) -> Result<CpuMax, CgroupError> {
        let quota = cpus * DEFAULT_CPU_PERIOD_US as f64;
        if !quota.is_finite() || quota < 1_000.0 || quota > u64::MAX as f64 {
            return Err(CgroupError::InvalidResource {
                what: "the number of CPUs",
                value: cpus.to_string(),
                expected: "a number of at least 0.01",
            });
        }
        CpuMax::new(quota.round() as u64, DEFAULT_CPU_PERIOD_US)
    }

    /// CPU time per period, in microseconds.
    pub fn quota_us(&self) -> u64 {
        self.quota_us
    }

    /// The period, in microseconds.
    pub fn period_us(&self) -> u64 {
        self.period_us
    }
}

/// A kernel list of CPU or memory-node numbers: `0`, `0-3`, `0-1,4,6-7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(String);

impl CpuList {
    /// Checks the list syntax (numbers and ranges separated by commas).
    pub fn new(list: &str) -> Result<CpuList, CgroupError> {
        let bad = || CgroupError::InvalidResource {
            what: "a cpuset list",
            value: format!("{list:?}"),
            expected: "numbers and ranges separated by commas, such as \"0-1,3\"",
        };
        for item in list.split(',') {
            let (low, high) = item.split_once('-').unwrap_or((item, item));
            let number = |s: &str| -> Result<u32, CgroupError> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse().map_err(|_| bad())
            };
            if number(low)? > number(high)? {
                return Err(bad());
            }
        }
        Ok(CpuList(list.to_owned()))
    }

    /// The list as the kernel reads it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&LinuxResources> for Resources {
    type Error = CgroupError;

    /// Takes the memory limit, the CPU quota and period, the cpuset and the
    /// pids limit. Non-positive memory and pids limits mean "no limit", as
    /// in runc; a quota without a period uses 100 ms. Swap, shares, block
    /// I/O, hugepages and device rules of the spec are not applied here.
    fn try_from(spec: &LinuxResources) -> Result<Resources, CgroupError> {
        let memory = spec
            .memory()
            .as_ref()
            .and_then(|m| m.limit())
            .and_then(|limit| u64::try_from(limit).ok())
            .filter(|&limit| limit > 0);
        let cpu_spec = spec.cpu().as_ref();
        let cpu = match cpu_spec.and_then(|c| c.quota()).filter(|&q| q > 0) {
            Some(quota) => {
                let period = cpu_spec.and_then(|c| c.period()).unwrap_or(DEFAULT_CPU_PERIOD_US);
                Some(CpuMax::new(quota.unsigned_abs(), period)?)
            }
            None => None,
        };
        let list = |s: Option<&String>| s.map(|s| CpuList::new(s)).transpose();
        let resources = Resources {
            memory,
            cpu,
            pids: spec.pids().as_ref().and_then(|p| u64::try_from(p.limit()).ok()).filter(|&limit| limit > 0),
            cpuset_cpus: list(cpu_spec.and_then(|c| c.cpus().as_ref()))?,
            cpuset_mems: list(cpu_spec.and_then(|c| c.mems().as_ref()))?,
        };
        resources.check()?;
        Ok(resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};

    #[test]
    fn from_oci_resources() {
        let spec = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(64i64 << 20).build().unwrap())
            .cpu(LinuxCpuBuilder::default().quota(20_000i64).cpus("0-1").build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(20i64).build().unwrap())
            .build()
            .unwrap();
        let r = Resources::try_from(&spec).unwrap();
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.cpu, Some(CpuMax::new(20_000, 100_000).unwrap()));
        assert_eq!(r.pids, Some(20));
        assert_eq!(r.cpuset_cpus.as_ref().map(CpuList::as_str), Some("0-1"));
        assert_eq!(r.cpuset_mems, None);
    }

    #[test]
    fn unlimited_oci_values_mean_no_limit() {
        let spec = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1i64).build().unwrap())
            .cpu(LinuxCpuBuilder::default().quota(-1i64).period(50_000u64).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(-1i64).build().unwrap())
            .build()
            .unwrap();
        assert_eq!(Resources::try_from(&spec).unwrap(), Resources::default());
        let empty = LinuxResourcesBuilder::default().build().unwrap();
        assert_eq!(Resources::try_from(&empty).unwrap(), Resources::default());
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(CpuMax::new(500, 100_000).is_err());
        assert!(CpuMax::new(50_000, 999).is_err());
        assert!(CpuMax::new(50_000, 1_000_001).is_err());
        assert_eq!(CpuMax::from_cpus(0.5).unwrap(), CpuMax::new(50_000, 100_000).unwrap());
        assert_eq!(CpuMax::from_cpus(2.0).unwrap().quota_us(), 200_000);
        assert!(CpuMax::from_cpus(0.001).is_err());
        assert!(CpuMax::from_cpus(f64::NAN).is_err());
        let tiny = Resources { memory: Some(4096), ..Resources::default() };
        assert!(tiny.check().is_err());
        let no_pids = Resources { pids: Some(0), ..Resources::default() };
        assert!(no_pids.check().is_err());
    }

    #[test]
    fn cpu_lists() {
        for good in ["0", "0-3", "0-1,4,6-7"] {
            assert_eq!(CpuList::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "a", "3-1", "0,,1", "-1", "0-", " 0"] {
            assert!(CpuList::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
