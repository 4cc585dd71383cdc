//! Running one container and watching it until it exits. The shim uses this
//! for detached containers; a foreground `berth run` uses it in the CLI
//! process itself (no shim, no copy of the output when it is not kept).
//!
//! One run: a fresh cgroup with the spec's limits, the container launched
//! into it (the child waits until it is in the cgroup), published ports
//! proxied into its network namespace and, when that namespace has a
//! bridge, forwarded by the kernel too (`network::dnat`: the proxy holds
//! the host sockets and serves what DNAT does not), then a blocking wait
//! for its init to exit; afterwards the DNAT elements are withdrawn, the
//! OOM counter is read and the cgroup destroyed. State is recorded by the
//! caller, which knows whether a restart follows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::cgroup::{self, Cgroup, CgroupError, CgroupPath, Hierarchy, Resources};
use super::container::{Container, Paths};
use super::network::{NetworkError, dnat};
use super::ports::{PortError, ProxySet};
use super::process::{self, InitExe, Launch, ProcessError, Stdio};
use super::rootfs::Rootfs;
use nix::unistd::Pid;

/// Why a container could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("container {name}: cannot read its spec {}: {source}", path.display())]
    Spec { name: String, path: PathBuf, source: oci_spec::OciSpecError },
    #[error("container {name}: {source}")]
    Cgroup { name: String, source: CgroupError },
    #[error("container {name}: {source}")]
    Start { name: String, source: ProcessError },
    #[error("container {name}: {source}")]
    Ports { name: String, source: PortError },
    #[error("container {name}: published ports: {source}")]
    Dnat { name: String, source: NetworkError },
    #[error("container {name}: cannot wait for pid {pid}: {source}")]
    Wait { name: String, pid: i32, source: std::io::Error },
}

impl SuperviseError {
    /// 127 or 126 when the command itself could not be executed, as a shell says.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            SuperviseError::Start { source, .. } => source.exit_code(),
            _ => None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, or 128+N for a signal, as a shell reports it.
    pub code: i32,
    pub oom_killed: bool,
    pub ran_for: Duration,
}

/// A container ready to run: its spec read, its cgroup place decided.
pub struct Prepared {
    pub container: Container,
    pub spec: Spec,
    hierarchy: Hierarchy,
    cgroup_path: CgroupPath,
    resources: Resources,
}

/// A container that is running.
pub struct Running {
    pub pid: Pid,
    pub pid_start: u64,
    started: Instant,
    cgroup: Cgroup,
    proxies: Option<ProxySet>,
    dnat: Option<dnat::Published>,
}

impl Prepared {
    pub fn new(container: &Container) -> Result<Prepared, SuperviseError> {
        let name = container.record.name.clone();
        let path = container.paths.spec();
        let spec = Spec::load(&path).map_err(|source| SuperviseError::Spec { name: name.clone(), path, source })?;
        let cg = |source| SuperviseError::Cgroup { name: name.clone(), source };
        let hierarchy = cgroup::detect().map_err(cg)?;
        let cgroup_path = CgroupPath::new(&container.record.cgroup).map_err(cg)?;
        let resources = match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            // Asked for with `--limits=ignore` where no cgroup can apply them.
            Some(_) if container.record.limits_ignored && matches!(hierarchy, Hierarchy::Unavailable { .. }) => {
                Resources::default()
            }
            Some(r) => Resources::try_from(r).map_err(cg)?,
            None => Resources::default(),
        };
        Ok(Prepared { container: container.clone(), spec, hierarchy, cgroup_path, resources })
    }

    fn paths(&self) -> &Paths {
        &self.container.paths
    }

    /// Starts the container once. Nothing is left behind on error.
    pub fn start(&self, init: &InitExe, stdio: Stdio) -> Result<Running, SuperviseError> {
        let name = &self.container.record.name;
        let cg = |source| SuperviseError::Cgroup { name: name.clone(), source };
        // A cgroup left by a run that was killed with its shim goes first.
        if let Ok(old) = Cgroup::open(&self.hierarchy, &self.cgroup_path) {
            old.destroy().map_err(cg)?;
        }
        let cgroup = Cgroup::create(&self.hierarchy, &self.cgroup_path, &self.resources).map_err(cg)?;
        let rootfs = Rootfs {
            lowers: self.container.record.lowers.clone(),
            upper: self.paths().upper(),
            work: self.paths().work(),
            target: self.paths().rootfs(),
        };
        let joiner = cgroup.joiner().map_err(cg)?;
        let before_start =
            |pid: Pid| joiner.join(pid.as_raw()).map_err(|e| format!("join the container's cgroup: {e}"));
        let launched =
            process::launch(Launch { spec: &self.spec, rootfs: &rootfs, stdio, init, before_start: &before_start });
        let pid = match launched {
            Ok(pid) => pid,
            Err(source) => {
                let _ = cgroup.destroy();
                return Err(SuperviseError::Start { name: name.clone(), source });
            }
        };
        let pid_start = super::state::process_start_time(pid.as_raw()).unwrap_or(0);
        let mut running = Running { pid, pid_start, started: Instant::now(), cgroup, proxies: None, dnat: None };
        let ports = &self.container.record.ports;
        if !ports.is_empty() {
            let netns = PathBuf::from(format!("/proc/{}/ns/net", pid.as_raw()));
            let published = ProxySet::start(ports, &netns)
                .map_err(|source| SuperviseError::Ports { name: name.clone(), source })
                .and_then(|set| {
                    let bound = set.published();
                    running.proxies = Some(set);
                    let Some(joined) = self.joined_netns() else { return Ok(None) };
                    dnat::publish(&joined, &bound).map_err(|source| SuperviseError::Dnat { name: name.clone(), source })
                });
            match published {
                Ok(dnat) => running.dnat = dnat,
                Err(e) => {
                    drop(running.proxies.take());
                    let _ = running.cgroup.destroy();
                    let _ = crate::sys::proc::wait_exit(pid);
                    return Err(e);
                }
            }
        }
        Ok(running)
    }

    /// The network namespace file the container joins (a project's or its
    /// own), if any: the one a bridge may be attached to.
    fn joined_netns(&self) -> Option<PathBuf> {
        let namespaces = self.spec.linux().as_ref()?.namespaces().as_ref()?;
        namespaces.iter().find(|n| n.typ() == LinuxNamespaceType::Network)?.path().clone()
    }

    /// Waits for the container's init to exit, then cleans up the run.
    pub fn wait(&self, running: Running) -> Result<Exit, SuperviseError> {
        let name = &self.container.record.name;
        let exit = crate::sys::proc::wait_exit(running.pid).map_err(|source| SuperviseError::Wait {
            name: name.clone(),
            pid: running.pid.as_raw(),
            source,
        })?;
        Ok(self.finish(running, exit.code()))
    }

    fn finish(&self, running: Running, code: i32) -> Exit {
        if let Some(published) = running.dnat {
            // Left behind on failure, `fsck --repair` removes it (no proxy holds its port).
            if let Err(e) = published.withdraw() {
                eprintln!("berth: container {}: {e}", self.container.record.name);
            }
        }
        if let Some(proxies) = running.proxies {
            proxies.stop(Duration::from_millis(200));
        }
        let oom_killed = running.cgroup.oom_kills().unwrap_or(0) > 0;
        let _ = running.cgroup.destroy();
        Exit { code, oom_killed, ran_for: running.started.elapsed() }
    }
}
