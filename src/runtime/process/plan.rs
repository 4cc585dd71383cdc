//! What the container's first process will do, worked out in the parent
//! from the spec: argument and environment vectors, credentials as numbers,
//! capabilities as masks, rlimits clamped to ours, namespace files opened.
//! Every mistake in the spec is reported here, before a process exists, and
//! the child only carries the plan out.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{Capabilities, LinuxNamespaceType, LinuxSeccomp, PosixRlimitType, Process, Spec};

use super::ProcessError;
use crate::runtime::mounts::MountPlan;
use crate::sys::caps;
use crate::sys::exec::CStrArray;
use crate::sys::proc::{self as sysproc, Rlimit};

/// Capability sets as masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Credentials, limits and the exec of one process in a container; shared
/// by the container's first process and `exec_in`.
pub(super) struct ProcessPlan {
    /// The user's command and its arguments.
    pub argv: CStrArray,
    /// berth's init: `["berth", "__init", ("--exec",) "--", args…]`.
    pub init_argv: CStrArray,
    pub envp: CStrArray,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub caps: CapMasks,
    pub no_new_privs: bool,
    /// The seccomp filter, compiled.
    pub seccomp: Option<crate::runtime::seccomp::Filter>,
    /// `(resource, soft, hard)`, already clamped to the caller's hard limit.
    pub rlimits: Vec<(Rlimit, u64, u64)>,
    pub terminal: bool,
}

fn mask(name: &str, set: &Option<Capabilities>) -> Result<u64, ProcessError> {
    let mut m = 0u64;
    for cap in set.iter().flatten() {
        let n = caps::number(&cap.to_string()).ok_or_else(|| ProcessError::Spec {
            what: format!("capability {name}"),
            reason: format!("CAP_{cap} is not known to this build (remove it from the spec)"),
        })?;
        m |= 1 << n;
    }
    Ok(m)
}

fn resource(t: PosixRlimitType) -> Rlimit {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => Rlimit::RLIMIT_CPU,
        T::RlimitFsize => Rlimit::RLIMIT_FSIZE,
        T::RlimitData => Rlimit::RLIMIT_DATA,
        T::RlimitStack => Rlimit::RLIMIT_STACK,
        T::RlimitCore => Rlimit::RLIMIT_CORE,
        T::RlimitRss => Rlimit::RLIMIT_RSS,
        T::RlimitNproc => Rlimit::RLIMIT_NPROC,
        T::RlimitNofile => Rlimit::RLIMIT_NOFILE,
        T::RlimitMemlock => Rlimit::RLIMIT_MEMLOCK,
        T::RlimitAs => Rlimit::RLIMIT_AS,
        T::RlimitLocks => Rlimit::RLIMIT_LOCKS,
        T::RlimitSigpending => Rlimit::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Rlimit::RLIMIT_MSGQUEUE,
        T::RlimitNice => Rlimit::RLIMIT_NICE,
        T::RlimitRtprio => Rlimit::RLIMIT_RTPRIO,
        T::RlimitRttime => Rlimit::RLIMIT_RTTIME,
    }
}

/// Clamps a requested limit to `our_hard`: an unprivileged process cannot
/// raise its hard limit, and berth never tries (nor would it on a host where
/// even root may not).
pub(super) fn clamp_rlimit(soft: u64, hard: u64, our_hard: u64) -> (u64, u64) {
    let hard = hard.min(our_hard);
    (soft.min(hard), hard)
}

fn bad(what: &str) -> impl FnOnce(std::io::Error) -> ProcessError + '_ {
    move |e| ProcessError::Spec { what: what.to_string(), reason: e.to_string() }
}

impl ProcessPlan {
    pub(super) fn new(
        p: &Process,
        exec_mode: bool,
        seccomp: Option<&LinuxSeccomp>,
    ) -> Result<ProcessPlan, ProcessError> {
        let args = p.args().clone().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            return Err(ProcessError::Spec {
                what: "process.args".into(),
                reason: "no command given (the spec or the image must name one)".into(),
            });
        }
        let mut argv: Vec<String> = vec!["berth".into(), "__init".into()];
        if exec_mode {
            argv.push("--exec".into());
        }
        argv.push("--".into());
        argv.extend(args.iter().cloned());
        let cwd = p.cwd().clone();
        if !cwd.is_absolute() {
            return Err(ProcessError::Spec {
                what: "process.cwd".into(),
                reason: format!("{} is not an absolute path", cwd.display()),
            });
        }
        // No capabilities object means no capabilities (runc would keep all
        // of the caller's; berth prefers the safe reading).
        let c = p.capabilities().clone().unwrap_or_else(|| {
            let empty = Some(Capabilities::new());
            let mut none = oci_spec::runtime::LinuxCapabilities::default();
            none.set_bounding(empty.clone());
            none.set_effective(empty.clone());
            none.set_permitted(empty.clone());
            none.set_inheritable(empty.clone());
            none.set_ambient(empty);
            none
        });
        let caps = CapMasks {
            bounding: mask("bounding", c.bounding())?,
            effective: mask("effective", c.effective())?,
            permitted: mask("permitted", c.permitted())?,
            inheritable: mask("inheritable", c.inheritable())?,
            ambient: mask("ambient", c.ambient())?,
        };
        let mut rlimits = Vec::new();
        for r in p.rlimits().iter().flatten() {
            let res = resource(r.typ());
            let (_, our_hard) = sysproc::get_rlimit(res).map_err(bad("process.rlimits"))?;
            let (soft, hard) = clamp_rlimit(r.soft(), r.hard(), our_hard);
            rlimits.push((res, soft, hard));
        }
        Ok(ProcessPlan {
            argv: CStrArray::new(&args).map_err(bad("process.args"))?,
            init_argv: CStrArray::new(&argv).map_err(bad("process.args"))?,
            envp: CStrArray::new(p.env().iter().flatten()).map_err(bad("process.env"))?,
            cwd,
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            caps,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            seccomp: seccomp.map(crate::runtime::seccomp::compile).transpose()?,
            rlimits,
            terminal: p.terminal().unwrap_or(false),
        })
    }
}

/// A namespace to join: the open file, its type, and its path for messages.
pub(super) struct Join {
    pub fd: OwnedFd,
    pub flag: CloneFlags,
    pub path: PathBuf,
}

/// The container's first process: namespaces, mounts, and its process.
pub(super) struct ContainerPlan {
    pub process: ProcessPlan,
    /// Clone into a new PID namespace (else: the caller's, or `pid_join`'s).
    pub new_pid: bool,
    pub pid_join: Option<Join>,
    /// Namespaces to join by path (other than PID), in order.
    pub joins: Vec<Join>,
    /// `CLONE_NEW*` flags to unshare after joining.
    pub unshare: CloneFlags,
    pub hostname: Option<String>,
    pub mounts: MountPlan,
    pub readonly_root: bool,
    /// Execute the command in place of berth's init: it is PID 1 itself
    /// (`spec::NO_INIT`).
    pub no_init: bool,
    /// A user namespace of its own: the `uid_map` and `gid_map` texts the
    /// parent writes (`linux.uidMappings`, `linux.gidMappings`).
    pub user_maps: Option<(String, String)>,
}

/// An OCI id mapping list as `/proc/PID/uid_map` text.
fn map_text(maps: &[oci_spec::runtime::LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    use LinuxNamespaceType as T;
    match t {
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// Opens a namespace file to join.
pub(super) fn open_ns(path: &Path, flag: CloneFlags) -> Result<Join, ProcessError> {
    let fd =
        std::fs::File::open(path).map_err(|source| ProcessError::Namespace { path: path.to_path_buf(), source })?;
    Ok(Join { fd: fd.into(), flag, path: path.to_path_buf() })
}

impl ContainerPlan {
    pub(super) fn new(spec: &Spec) -> Result<ContainerPlan, ProcessError> {
        let process = spec.process().as_ref().ok_or_else(|| ProcessError::Spec {
            what: "process".into(),
            reason: "the spec has no process to run".into(),
        })?;
        let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        let process = ProcessPlan::new(process, false, seccomp)?;
        let mut plan = ContainerPlan {
            process,
            new_pid: false,
            pid_join: None,
            joins: Vec::new(),
            unshare: CloneFlags::empty(),
            hostname: spec.hostname().clone(),
            mounts: MountPlan::new(spec)?,
            readonly_root: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
            no_init: crate::runtime::spec::runs_without_init(spec),
            user_maps: None,
        };
        let linux = spec.linux().as_ref();
        let mut has_mnt = false;
        for ns in linux.and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
            let f = flag(ns.typ());
            let uid_maps = linux.and_then(|l| l.uid_mappings().as_ref()).filter(|m| !m.is_empty());
            let gid_maps = linux.and_then(|l| l.gid_mappings().as_ref()).filter(|m| !m.is_empty());
            if f == CloneFlags::CLONE_NEWUSER
                && ns.path().is_none()
                && let (Some(uids), Some(gids)) = (uid_maps, gid_maps)
            {
                plan.user_maps = Some((map_text(uids), map_text(gids)));
                continue;
            }
            if f == CloneFlags::CLONE_NEWUSER || f.bits() == libc::CLONE_NEWTIME {
                return Err(ProcessError::Unsupported {
                    what: format!("a {} namespace", ns.typ()),
                    hint: "berth makes a user namespace only with linux.uidMappings and gidMappings, never joins \
                           one, and makes no time namespace; remove it"
                        .into(),
                });
            }
            has_mnt |= f == CloneFlags::CLONE_NEWNS;
            match (ns.path(), f) {
                (Some(_), CloneFlags::CLONE_NEWNS) => {
                    return Err(ProcessError::Unsupported {
                        what: "joining an existing mount namespace".into(),
                        hint: "a container needs its own mount namespace for its root; use exec_in to enter a \
                               running container"
                            .into(),
                    });
                }
                (Some(path), CloneFlags::CLONE_NEWPID) => plan.pid_join = Some(open_ns(path, f)?),
                (Some(path), f) => plan.joins.push(open_ns(path, f)?),
                (None, CloneFlags::CLONE_NEWPID) => plan.new_pid = true,
                (None, f) => plan.unshare |= f,
            }
        }
        let own_uts = plan.unshare.contains(CloneFlags::CLONE_NEWUTS)
            || plan.joins.iter().any(|j| j.flag == CloneFlags::CLONE_NEWUTS);
        if plan.hostname.is_some() && !own_uts {
            return Err(ProcessError::Unsupported {
                what: "a hostname without a UTS namespace".into(),
                hint: "setting it would rename the host; add {\"type\": \"uts\"} to linux.namespaces".into(),
            });
        }
        if !has_mnt {
            return Err(ProcessError::Unsupported {
                what: "a container without a mount namespace".into(),
                hint: "the root filesystem is mounted in the container's own mount namespace; add \
                       {\"type\": \"mount\"} to linux.namespaces"
                    .into(),
            });
        }
        Ok(plan)
    }

    /// True when the container gets a fresh network namespace (bring `lo` up).
    pub(super) fn new_net(&self) -> bool {
        self.unshare.contains(CloneFlags::CLONE_NEWNET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits_are_never_raised_above_our_hard_limit() {
        assert_eq!(clamp_rlimit(1024, 4096, 2048), (1024, 2048));
        assert_eq!(clamp_rlimit(8192, 8192, 2048), (2048, 2048));
        assert_eq!(clamp_rlimit(10, 20, u64::MAX), (10, 20));
    }

    #[test]
    fn spec_mistakes_are_caught_before_any_process_exists() {
        let mut spec = crate::runtime::spec::default_spec(&Default::default());
        assert!(matches!(ContainerPlan::new(&spec), Err(ProcessError::Spec { .. })));
        let mut p = spec.process().clone().unwrap();
        p.set_args(Some(vec!["true".into()]));
        p.set_cwd("relative".into());
        spec.set_process(Some(p));
        let e = ContainerPlan::new(&spec).err().unwrap().to_string();
        assert!(e.contains("process.cwd"), "{e}");
    }

    #[test]
    fn default_spec_plans_dockers_namespaces_and_caps() {
        let req = crate::runtime::spec::SpecRequest { args: vec!["true".into()], ..Default::default() };
        let plan = ContainerPlan::new(&crate::runtime::spec::default_spec(&req)).unwrap();
        assert!(plan.new_pid && plan.new_net());
        let want = CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWCGROUP;
        assert_eq!(plan.unshare, want);
        let m = crate::runtime::spec::default_capabilities_mask();
        assert_eq!(plan.process.caps, CapMasks { bounding: m, effective: m, permitted: m, inheritable: 0, ambient: 0 });
        assert!(!plan.process.no_new_privs);
    }
}
