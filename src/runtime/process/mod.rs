//! Starting processes in containers: [`launch`] creates a container and
//! runs its command under berth's init as PID 1; [`exec_in`] runs another
//! command inside a running container.
//!
//! # How a process is started
//!
//! The parent (a shim, or the CLI for a foreground run) plans everything
//! first (`plan`): spec mistakes, missing bind sources and namespace files
//! are errors before any process exists. Then:
//!
//! 1. **fork** (glibc's, so the allocator works in the child of a threaded
//!    parent). The child only moves fds into place (0–2 stdio, 3 error
//!    pipe, 4 sync pipe, 5 the `child::Config` JSON in a memfd), marks
//!    the rest close-on-exec and **executes berth's init from the sealed
//!    memfd** ([`InitExe`]) — while the host's root, and so the dynamic
//!    loader a non-static berth needs, is still visible.
//! 2. In that fresh image (the "stage"): join a PID namespace given by path
//!    (`exec_in`: all of the target's namespaces), then
//!    **clone3(CLONE_PARENT [| CLONE_NEWPID])**: the container's process, a
//!    *sibling*, i.e. a direct child of the parent, which can `waitpid` it.
//!    The stage sends its pid on the error pipe and exits.
//! 3. The parent runs `before_start(pid)` (put it in its cgroups) while the
//!    child blocks on the sync pipe, then releases it. Namespaces other
//!    than PID are created only now, so the cgroup namespace is rooted at
//!    the container's cgroup.
//! 4. The child sets up the container (see `runtime`'s overview) and turns
//!    into init ([`crate::runtime::init`]), which forks and executes the
//!    user's command; `exec_in`'s child executes the command itself.
//! 5. The parent reads the error pipe to end of file: nothing means the
//!    command was executed (the last write end closed with that exec); a
//!    record means a failure, and the parent kills and reaps the child and
//!    returns the error ([`ProcessError::Setup`] naming the step, or
//!    [`ProcessError::Exec`] with exit code 127 or 126).
//!
//! Why not exec init at the end, after `pivot_root`? berth is dynamically
//! linked: the container's root has no (or another) `ld.so` and glibc.
//! Executing first also means no process holding a copy of the parent's
//! memory, fds or threads' locks ever enters the container.

pub(crate) mod child;
mod init_exe;
mod plan;
pub(crate) mod wire;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

pub use init_exe::InitExe;

use self::child::Config;
use self::plan::{ContainerPlan, ProcessPlan};
use crate::runtime::mounts::MountError;
use crate::runtime::rootfs::Rootfs;
use crate::sys::exec;
use crate::sys::ns::{self, Forked};
use crate::sys::proc as sysproc;

/// Why a container process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("invalid spec: {what}: {reason}")]
    Spec { what: String, reason: String },
    #[error("the spec's seccomp profile (linux.seccomp): {0}")]
    Seccomp(#[from] crate::runtime::seccomp::CompileError),
    #[error("{what} is not supported: {hint}")]
    Unsupported { what: String, hint: String },
    #[error(transparent)]
    Mounts(#[from] MountError),
    #[error("opening the namespace {path} to join: {source} (give a /proc/PID/ns/* file or a bind mount of one)")]
    Namespace { path: PathBuf, source: io::Error },
    #[error("copying berth's binary {path} into a sealed memfd: {source}")]
    InitExe { path: PathBuf, source: io::Error },
    #[error("{step}: {source}")]
    Io { step: &'static str, source: io::Error },
    #[error("preparing container process {pid} (before_start): {message}")]
    BeforeStart { pid: i32, message: String },
    #[error("starting the container: {step}: {message}")]
    Setup { step: String, message: String, errno: i32 },
    #[error("exec {command:?}: {reason}")]
    Exec { command: String, reason: String, errno: i32, code: i32 },
    #[error("the container's first process did not report back: {detail}")]
    Protocol { detail: String },
    #[error("{first}; cleaning up the half-started process {pid} also failed: {cleanup}")]
    Cleanup { first: Box<ProcessError>, pid: i32, cleanup: io::Error },
}

impl ProcessError {
    /// The exit code a shell would give: 127 (not found) or 126 (not
    /// executable) when the command could not be executed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ProcessError::Exec { code, .. } => Some(*code),
            ProcessError::Cleanup { first, .. } => first.exit_code(),
            _ => None,
        }
    }
}

/// The container's standard streams. For a terminal, all three are the pty
/// slave and `spec.process.terminal` is true (the child then makes it its
/// controlling terminal).
#[derive(Debug)]
pub struct Stdio {
    /// `None` is `/dev/null`.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Stdio {
    /// berth's own standard streams, duplicated (stdin only when `stdin`,
    /// else `/dev/null`): a foreground command writes straight to the user.
    pub fn inherit(stdin: bool) -> io::Result<Stdio> {
        let own = |fd| exec::borrow_raw(fd).try_clone_to_owned();
        Ok(Stdio { stdin: if stdin { Some(own(0)?) } else { None }, stdout: own(1)?, stderr: own(2)? })
    }

    /// All three streams on the terminal `slave`.
    pub fn terminal(slave: OwnedFd) -> io::Result<Stdio> {
        Ok(Stdio { stdin: Some(slave.try_clone()?), stdout: slave.try_clone()?, stderr: slave })
    }
}

/// What [`launch`] needs.
pub struct Launch<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Rootfs,
    pub stdio: Stdio,
    pub init: &'a InitExe,
    /// Runs in the parent while the child waits, before any namespace but
    /// PID exists, with the child's host pid (e.g. to put it in its
    /// cgroups). An error aborts the start.
    pub before_start: &'a dyn Fn(Pid) -> Result<(), String>,
}

/// Creates a container per `l.spec` and starts its command under berth's
/// init. Returns the host pid of the container's PID 1 (a child of the
/// caller, to be waited for) once the command has been executed.
pub fn launch(l: Launch<'_>) -> Result<Pid, ProcessError> {
    let plan = ContainerPlan::new(l.spec)?;
    let holder = match &plan.user_maps {
        Some((uids, gids)) => Some(user_namespace(uids, gids)?),
        None => None,
    };
    let userns = holder.as_ref().map(|h| std::path::PathBuf::from(format!("/proc/{}/ns/user", h.pid())));
    // The filter goes compiled; the child need not compile it again.
    let mut spec = l.spec.clone();
    if let Some(linux) = spec.linux().clone() {
        let mut linux = linux;
        linux.set_seccomp(None);
        spec.set_linux(Some(linux));
    }
    let filter = plan.process.seccomp.clone();
    let config = Config::Create { spec: Box::new(spec), rootfs: l.rootfs.clone(), userns, filter };
    let started = start(l.stdio, l.before_start, l.init, &plan.process, &config);
    // The container's processes hold the namespace from here on.
    if let Some(holder) = holder {
        holder.abandon();
    }
    started
}

/// A new user namespace with the id maps `uids` and `gids` (as
/// `/proc/PID/uid_map` text), held by a forked process until the container
/// has joined it.
fn user_namespace(uids: &str, gids: &str) -> Result<crate::sys::userns::Holder, ProcessError> {
    let holder = crate::sys::userns::fork_holder(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(io_err("making the container's user namespace"))?;
    let pid = holder.pid();
    let written = crate::sys::userns::write_map(pid, "uid_map", uids)
        .and_then(|()| crate::sys::userns::write_map(pid, "gid_map", gids));
    if let Err(source) = written {
        holder.abandon();
        return Err(ProcessError::Io { step: "writing the id maps of the container's user namespace", source });
    }
    Ok(holder)
}

/// Runs `process` inside the running container whose PID 1 (or any
/// member) is `target`: joins its cgroup, IPC, UTS, network, PID and mount
/// namespaces, applies the process's rlimits, uid/gid/groups, capabilities,
/// no_new_privs, seccomp filter (`seccomp`: the container's
/// `linux.seccomp`) and working directory, and executes its command. Returns
/// the new process's host pid, a child of the caller, once the command has
/// been executed.
pub fn exec_in(
    target: Pid,
    process: &Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    stdio: Stdio,
    init: &InitExe,
    before_start: &dyn Fn(Pid) -> Result<(), String>,
) -> Result<Pid, ProcessError> {
    let plan = ProcessPlan::new(process, true, seccomp)?;
    // Opened here too, so that a target that is gone is reported as such.
    drop(child::target_namespaces(target.as_raw())?);
    let config =
        Config::Exec { target: target.as_raw(), process: Box::new(process.clone()), filter: plan.seccomp.clone() };
    start(stdio, before_start, init, &plan, &config)
}

fn io_err(step: &'static str) -> impl FnOnce(io::Error) -> ProcessError {
    move |source| ProcessError::Io { step, source }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ProcessError> {
    let (r, w) = io::pipe().map_err(io_err("creating a pipe"))?;
    Ok((r.into(), w.into()))
}

/// The parent's side of the protocol in the module overview.
fn start(
    stdio: Stdio,
    before_start: &dyn Fn(Pid) -> Result<(), String>,
    init: &InitExe,
    plan: &ProcessPlan,
    config: &Config,
) -> Result<Pid, ProcessError> {
    let json = serde_json::to_vec(config).map_err(|e| ProcessError::Io {
        step: "encoding the container's configuration",
        source: io::Error::other(e),
    })?;
    let config = exec::memfd_with(c"berth-config", &json).map_err(io_err("writing the configuration to a memfd"))?;
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin = match stdio.stdin {
        Some(fd) => fd,
        None => File::open("/dev/null").map_err(io_err("opening /dev/null for stdin"))?.into(),
    };
    let mid = match ns::fork().map_err(io_err("fork"))? {
        Forked::Child => {
            let fds = [
                stdin.as_fd(),
                stdio.stdout.as_fd(),
                stdio.stderr.as_fd(),
                err_w.as_fd(),
                sync_r.as_fd(),
                config.as_fd(),
            ];
            child::exec_stage(fds, init.fd(), &plan.init_argv, &plan.envp)
        }
        Forked::Parent(mid) => mid,
    };
    drop((stdin, stdio.stdout, stdio.stderr, err_w, sync_r, config));
    let mut err_r = File::from(err_r);
    let first = wire::read_pid(&mut err_r);
    // The stage exits right after reporting; reap it.
    let _ = sysproc::wait_exit(mid);
    let pid = match first {
        Ok(Ok(pid)) => Pid::from_raw(pid),
        Ok(Err(report)) => return Err(report_error(report)),
        Err(e) => return Err(ProcessError::Protocol { detail: e.to_string() }),
    };
    if let Err(message) = before_start(pid) {
        return Err(abort(pid, ProcessError::BeforeStart { pid: pid.as_raw(), message }));
    }
    let mut sync_w = File::from(sync_w);
    if let Err(e) = sync_w.write_all(b"G") {
        return Err(abort(pid, ProcessError::Protocol { detail: format!("releasing the child: {e}") }));
    }
    drop(sync_w);
    match wire::read_outcome(&mut err_r) {
        Ok(None) => Ok(pid),
        Ok(Some(report)) => Err(abort(pid, report_error(report))),
        Err(e) => Err(abort(pid, ProcessError::Protocol { detail: e.to_string() })),
    }
}

/// Kills and reaps a half-started child, keeping both errors if that fails.
fn abort(pid: Pid, first: ProcessError) -> ProcessError {
    let cleanup = sysproc::kill(pid, nix::sys::signal::Signal::SIGKILL).and_then(|()| sysproc::wait_exit(pid));
    match cleanup {
        Ok(_) => first,
        Err(cleanup) => ProcessError::Cleanup { first: Box::new(first), pid: pid.as_raw(), cleanup },
    }
}

fn report_error(r: wire::Report) -> ProcessError {
    match r {
        wire::Report::Setup { step, errno, message } => ProcessError::Setup { step, message, errno },
        wire::Report::Exec { errno, command } => ProcessError::Exec {
            reason: crate::runtime::init::exec_failure_reason(errno, command.as_bytes()).to_string(),
            command,
            errno,
            code: crate::runtime::init::exec_exit_code(errno),
        },
    }
}
