//! `berth exec`: another command in a running container — every namespace
//! of its init joined, its cgroup joined, the same capabilities and
//! `no_new_privs` as the container's command — supervised by the CLI, which
//! exits with the command's status. A command that fails after the
//! container's pids limit refused a fork (joining the cgroup is not limited,
//! so the command starts, but cannot fork) is reported as
//! [`ExecError::PidsLimit`], with its status.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::Spec;

use super::cgroup::{self, Cgroup, CgroupPath};
use super::container::Container;
use super::control::{self, ControlError};
use super::process::{self, InitExe, Stdio};
use super::spec::{self, ResolvedUser};
use super::tty;
use nix::unistd::Pid;

/// What `berth exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    /// `KEY=VALUE`, added to the container's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    /// Discard the command's output (health checks).
    pub quiet: bool,
    /// Kill the command (SIGKILL) if it has not ended after this long.
    pub timeout: Option<std::time::Duration>,
}

/// Why a command could not be run in a container.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("container {name}: cannot read its spec {}: {source}", path.display())]
    Spec { name: String, path: PathBuf, source: oci_spec::OciSpecError },
    #[error("container {name}: {source}")]
    User { name: String, source: spec::SpecError },
    #[error("container {name}: {source}")]
    Cgroup { name: String, source: cgroup::CgroupError },
    #[error("container {name}: {source}")]
    Start { name: String, source: process::ProcessError },
    /// The command failed while the container's pids limit refused forks:
    /// what the command itself said (e.g. `sh: can't fork`) does not name
    /// the cause. `code` is the command's exit status.
    #[error(
        "container {name}: the command exited with {code} after its pids limit ({limit} processes and threads) refused a fork or clone (EAGAIN, \"Resource temporarily unavailable\"); raise the limit (--pids-limit, or limits.pids in berth.toml) or end processes in the container"
    )]
    PidsLimit { name: String, limit: u64, code: i32 },
    #[error("container {name}: the command did not end within {after:?}; it was killed")]
    TimedOut { name: String, after: std::time::Duration },
    #[error("container {name}: {what}: {source}")]
    Io { name: String, what: &'static str, source: std::io::Error },
}

/// Runs `opts.args` in the running container `c`; returns its exit code.
pub fn exec(c: &Container, opts: &ExecOptions) -> Result<i32, ExecError> {
    let name = c.record.name.clone();
    let io = |what: &'static str| {
        let name = name.clone();
        move |source| ExecError::Io { name, what, source }
    };
    let st = control::current_state(c)?.ok_or_else(|| ControlError::NotRunning(name.clone()))?;
    let target = match (st.pid, st.pid_start) {
        (Some(pid), Some(start)) if super::state::process_alive(pid, start) => Pid::from_raw(pid),
        _ => return Err(ControlError::NotRunning(name.clone()).into()),
    };
    let path = c.paths.spec();
    let spec = Spec::load(&path).map_err(|source| ExecError::Spec { name: name.clone(), path, source })?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(opts.args.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    if let Some(user) = &opts.user {
        let root = PathBuf::from(format!("/proc/{}/root", target.as_raw()));
        let resolved: ResolvedUser =
            spec::resolve_user(&root, user).map_err(|source| ExecError::User { name: name.clone(), source })?;
        let mut u = process.user().clone();
        u.set_uid(resolved.uid);
        u.set_gid(resolved.gid);
        u.set_additional_gids(Some(resolved.additional_gids.clone()));
        process.set_user(u);
        if spec::home_from_passwd(&spec) {
            // The container's HOME is its user's; this user has its own.
            spec::merge_env(&mut env, &[spec::home_entry(&resolved)]);
        }
    }
    spec::merge_env(&mut env, &opts.env);
    if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    process.set_env(Some(env));
    if let Some(dir) = &opts.workdir {
        process.set_cwd(PathBuf::from(dir));
    }
    process.set_terminal(Some(opts.tty));

    let cg = |source| ExecError::Cgroup { name: name.clone(), source };
    let hierarchy = cgroup::detect().map_err(cg)?;
    let group = Cgroup::open(&hierarchy, &CgroupPath::new(&c.record.cgroup).map_err(cg)?).map_err(cg)?;
    let joiner = group.joiner().map_err(cg)?;
    let refused_before = group.stats().ok().and_then(|s| s.pids_refused);
    let before_start = |pid: Pid| joiner.join(pid.as_raw()).map_err(|e| format!("join the container's cgroup: {e}"));
    let init = InitExe::current().map_err(|source| ExecError::Start { name: name.clone(), source })?;

    let mut master = None;
    let stdio = if opts.tty {
        let (m, stdio) = tty::open_terminal().map_err(io("open a pseudo-terminal"))?;
        master = Some(m);
        stdio
    } else {
        let mut stdio = Stdio::inherit(opts.interactive).map_err(io("duplicate berth's stdio"))?;
        if opts.quiet {
            let null =
                || -> std::io::Result<OwnedFd> { Ok(std::fs::File::options().write(true).open("/dev/null")?.into()) };
            (stdio.stdout, stdio.stderr) =
                (null().map_err(io("open /dev/null"))?, null().map_err(io("open /dev/null"))?);
        }
        stdio
    };
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let pid = process::exec_in(target, &process, seccomp, stdio, &init, &before_start)
        .map_err(|source| ExecError::Start { name: name.clone(), source })?;

    let companions = tty::Companions::start(pid, master, opts.interactive).map_err(io("catch signals"))?;
    let exit = match opts.timeout {
        None => crate::sys::proc::wait_exit(pid).map(Some),
        Some(after) => crate::sys::proc::wait_exit_within(pid, after),
    };
    let exit = match exit {
        Ok(Some(exit)) => match pids_limit_reached(&group, refused_before, exit.code()) {
            Some(limit) => Err(ExecError::PidsLimit { name: name.clone(), limit, code: exit.code() }),
            None => Ok(exit.code()),
        },
        Ok(None) => {
            // Still unreaped, so the pid is still this command's.
            let _ = crate::sys::proc::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = crate::sys::proc::wait_exit(pid);
            Err(ExecError::TimedOut { name: name.clone(), after: opts.timeout.unwrap_or_default() })
        }
        Err(e) => Err(io("wait for the command")(e)),
    };
    companions.finish();
    exit
}

/// The container's pids limit, if the command failed (`code` non-zero) and
/// the limit refused a fork or clone in the container while it ran (its
/// `pids.events` count grew past `before`).
fn pids_limit_reached(group: &Cgroup, before: Option<u64>, code: i32) -> Option<u64> {
    if code == 0 {
        return None;
    }
    let after = group.stats().ok()?;
    (after.pids_refused? > before?).then_some(after.pids_limit?)
}
