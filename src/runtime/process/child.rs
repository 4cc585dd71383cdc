//! The child side of a container start. It runs in berth's init binary,
//! freshly executed from the sealed memfd (see the overview in
//! `runtime::process`), with this fd contract:
//! 0–2 the container's stdio, 3 the error pipe ([`wire`]), 4 the sync pipe
//! (one byte arrives once the parent ran `before_start`), 5 the
//! [`Config`] as JSON.
//!
//! [`create`] and [`exec`] run in the first process (the "stage"): they
//! join what must be joined before a clone, clone the container's process
//! as a sibling (a child of berth's parent process), report its pid and
//! exit. The sibling then sets up the container and ends up in init's
//! reaper ([`create`]) or in the user's command ([`exec`]). Failures are
//! written to the error pipe with the step's name, and the process exits.

use std::convert::Infallible;
use std::fmt::Display;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Process, Spec};

use super::plan::{ContainerPlan, Join, ProcessPlan, open_ns};
use super::wire;
use crate::runtime::rootfs::Rootfs;
use crate::sys::exec::{self, exit_now};
use crate::sys::mount::{self as sysmount, MsFlags};
use crate::sys::ns::{self, Forked};
use crate::sys::proc as sysproc;
use crate::sys::{caps, fs as sysfs, pty, scoped, seccomp as sysseccomp};

/// fd of the error pipe in the stage and the container's process.
pub(crate) const ERR_FD: RawFd = wire::INIT_ERROR_FD;
/// fd of the sync pipe's read end.
pub(crate) const SYNC_FD: RawFd = 4;
/// fd of the configuration memfd.
pub(crate) const CONFIG_FD: RawFd = 5;

/// What the stage is to do, sent by the parent as JSON on [`CONFIG_FD`].
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum Config {
    Create {
        spec: Box<Spec>,
        rootfs: Rootfs,
        /// The user namespace to join (`--userns=auto`), made and mapped by
        /// the parent: `/proc/PID/ns/user` of its holder.
        #[serde(default)]
        userns: Option<std::path::PathBuf>,
        /// The spec's `linux.seccomp`, compiled by the parent (the spec
        /// sent here has it removed).
        #[serde(default)]
        filter: Option<crate::runtime::seccomp::Filter>,
    },
    Exec {
        target: i32,
        process: Box<Process>,
        /// The container's `linux.seccomp`, compiled by the parent.
        #[serde(default)]
        filter: Option<crate::runtime::seccomp::Filter>,
    },
}

/// A failed step, as it will be reported.
pub(crate) struct Failure {
    step: String,
    errno: i32,
    message: String,
}

/// Errors that know their errno.
pub(crate) trait Errno: Display {
    fn errno(&self) -> Option<i32>;
}

impl Errno for std::io::Error {
    fn errno(&self) -> Option<i32> {
        self.raw_os_error()
    }
}
impl Errno for crate::runtime::mounts::MountError {
    fn errno(&self) -> Option<i32> {
        self.raw_os_error()
    }
}
impl Errno for crate::runtime::rootfs::RootfsError {
    fn errno(&self) -> Option<i32> {
        self.raw_os_error()
    }
}
impl Errno for super::ProcessError {
    fn errno(&self) -> Option<i32> {
        None
    }
}

pub(crate) fn at<E: Errno>(step: impl Into<String>) -> impl FnOnce(E) -> Failure {
    let step = step.into();
    move |e| Failure { step, errno: e.errno().unwrap_or(0), message: e.to_string() }
}

/// Reports `f` on the error pipe and exits.
pub(crate) fn fail(f: Failure) -> ! {
    wire::send_setup_failure(ERR_FD, &f.step, f.errno, &f.message);
    exit_now(1)
}

/// Reads the configuration from [`CONFIG_FD`], if there is one.
pub(crate) fn read_config() -> Option<Config> {
    if !sysproc::fd_is_open(CONFIG_FD) {
        return None;
    }
    let mut file = std::fs::File::from(exec::take_raw(CONFIG_FD));
    let mut text = Vec::new();
    if let Err(e) = file.read_to_end(&mut text) {
        fail(at("reading the container's configuration")(e));
    }
    match serde_json::from_slice(&text) {
        Ok(config) => Some(config),
        Err(e) => fail(at("parsing the container's configuration")(std::io::Error::other(e))),
    }
}

fn wait_for_go() {
    let mut file = std::fs::File::from(exec::take_raw(SYNC_FD));
    let mut byte = [0u8; 1];
    // End of file: the parent gave up (before_start failed, or it died).
    if !matches!(file.read(&mut byte), Ok(1)) {
        exit_now(1);
    }
}

fn clone_and_report(flags: CloneFlags) -> bool {
    match ns::clone_sibling(flags) {
        Ok(Forked::Parent(pid)) => {
            wire::send_pid(ERR_FD, pid.as_raw());
            exit_now(0)
        }
        Ok(Forked::Child) => true,
        Err(e) => fail(at(format!("clone3({flags:?})"))(e)),
    }
}

/// `launch`'s stage: joins a PID namespace if asked, clones the container's
/// first process, which sets the container up and becomes its init.
pub(crate) fn create(
    spec: &Spec,
    rootfs: &Rootfs,
    userns: Option<&Path>,
    filter: Option<crate::runtime::seccomp::Filter>,
) -> ! {
    let mut plan = ContainerPlan::new(spec).unwrap_or_else(|e| fail(at("checking the spec")(e)));
    plan.process.seccomp = filter;
    let premounted = match userns {
        Some(path) => {
            // Namespaces to join (a project's network) belong to the host's
            // user namespace: joined while still real root, since the
            // container's root has no capability over them.
            join_all(&plan).unwrap_or_else(|f| fail(f));
            // Binding a port below 1024 takes a capability over the
            // network namespace's owner, the host's user namespace, which
            // the container's root lacks: let every user bind them there.
            if plan.joins.iter().any(|j| j.flag == CloneFlags::CLONE_NEWNET) {
                ns::allow_low_ports().unwrap_or_else(|e| {
                    fail(at("setting net.ipv4.ip_unprivileged_port_start = 0 in the network namespace")(e))
                });
            }
            enter_user_namespace(path, rootfs).unwrap_or_else(|f| fail(f));
            true
        }
        None => false,
    };
    if let Some(j) = &plan.pid_join {
        ns::setns(j.fd.as_fd(), j.flag)
            .unwrap_or_else(|e| fail(at(format!("joining the PID namespace {}", j.path.display()))(e)));
    }
    clone_and_report(if plan.new_pid { CloneFlags::CLONE_NEWPID } else { CloneFlags::empty() });
    // A container never outlives its supervisor (shim or foreground berth):
    // nobody would keep its logs, status or restart policy. Set before the
    // go-ahead, so a supervisor that died earlier shows as end of file there.
    sysproc::die_with_parent().unwrap_or_else(|e| fail(at("prctl(PR_SET_PDEATHSIG)")(e)));
    wait_for_go();
    match container(&plan, rootfs, premounted) {
        // The command itself is PID 1: nothing reaps orphans or forwards
        // signals, as in Docker without --init.
        Ok(()) if plan.no_init => crate::runtime::init::exec_command(&plan.process.argv, Some(ERR_FD)),
        Ok(()) => crate::runtime::init::reap(&plan.process.argv, Some(ERR_FD)),
        Err(f) => fail(f),
    }
}

/// `--userns=auto`, in the stage while it is still real root: a private
/// mount namespace of the host's user namespace, each image layer replaced
/// there by an idmapped copy of itself (host uid 0 shows as the container's
/// root, host id `base`), the overlay mounted over them as real root (so
/// the `trusted.overlay.*` xattrs of root's layers are read as always),
/// then the container's user namespace joined. The container's own mount
/// namespace, made later inside the user namespace, starts as a copy of
/// this one: the overlay comes along, locked to it.
fn enter_user_namespace(path: &Path, rootfs: &Rootfs) -> Result<(), Failure> {
    let userns = std::fs::File::open(path).map_err(at(format!("opening the user namespace {}", path.display())))?;
    ns::unshare(CloneFlags::CLONE_NEWNS).map_err(at("unshare(CLONE_NEWNS) for the idmapped layers"))?;
    sysmount::set_propagation(Path::new("/"), MsFlags::MS_REC | MsFlags::MS_PRIVATE)
        .map_err(at("making all mounts private (MS_REC|MS_PRIVATE on /)"))?;
    for lower in &rootfs.lowers {
        let tree = sysmount::idmapped_clone(lower, userns.as_fd()).map_err(at(format!(
            "an idmapped mount of the layer {} (Linux 5.12+, on a filesystem that supports them)",
            lower.display()
        )))?;
        sysmount::move_mount_to(tree.as_fd(), lower)
            .map_err(at(format!("mounting the idmapped layer on {}", lower.display())))?;
    }
    rootfs.mount().map_err(at("mounting the root filesystem"))?;
    ns::setns(userns.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(at(format!("joining the user namespace {}", path.display())))?;
    // Host root has no id in the namespace: become its root (host id
    // `base`), or every file made from here on would fail with EOVERFLOW.
    let groups = settable_groups(&[]);
    sysproc::set_ids(0, 0, groups.as_deref()).map_err(at("becoming root of the user namespace (setresuid/setresgid 0)"))
}

/// The supplementary groups this process can take of `wanted`, as podman
/// does: `None` (leave them as they are) where the user namespace denies
/// `setgroups` (berth without root and no subordinate range: they show as
/// the overflow group inside), else the groups the namespace's gid map has
/// an id for; the others are skipped, since the kernel refuses to set them.
fn settable_groups(wanted: &[u32]) -> Option<Vec<u32>> {
    if sysproc::setgroups_denied() {
        return None;
    }
    let unmapped = match crate::sys::userns::own_gid_map() {
        Ok(map) => crate::runtime::userns::unmapped(&map, wanted),
        Err(_) => Vec::new(),
    };
    Some(wanted.iter().copied().filter(|g| !unmapped.contains(g)).collect())
}

/// Joins every namespace the spec names by path.
fn join_all(plan: &ContainerPlan) -> Result<(), Failure> {
    for j in &plan.joins {
        ns::setns(j.fd.as_fd(), j.flag).map_err(at(format!("joining the namespace {}", j.path.display())))?;
    }
    Ok(())
}

fn container(plan: &ContainerPlan, rootfs: &Rootfs, premounted: bool) -> Result<(), Failure> {
    sysproc::set_dumpable(false).map_err(at("prctl(PR_SET_DUMPABLE)"))?;
    if !premounted {
        join_all(plan)?;
    }
    ns::unshare(plan.unshare).map_err(at(format!("unshare({:?})", plan.unshare)))?;
    if plan.new_net() {
        ns::loopback_up().map_err(at("bringing up lo in the new network namespace"))?;
    }
    sysmount::set_propagation(Path::new("/"), MsFlags::MS_REC | MsFlags::MS_PRIVATE)
        .map_err(at("making all mounts private (MS_REC|MS_PRIVATE on /)"))?;
    if premounted {
        // The overlay came with the copy of the stage's mount namespace,
        // locked there; pivot_root refuses a locked mount, so it gets a
        // bind of itself on top, which this namespace owns.
        let target = &rootfs.target;
        sysmount::mount(Some(target), target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
            .map_err(at(format!("bind-mounting the root filesystem {} on itself", target.display())))?;
    } else {
        rootfs.mount().map_err(at("mounting the root filesystem"))?;
    }
    let console = plan.process.terminal.then(|| exec::borrow_raw(0));
    plan.mounts.apply_in_root(&rootfs.target, console).map_err(at("mounting"))?;
    sysproc::chdir(&rootfs.target).map_err(at(format!("chdir to the new root {}", rootfs.target.display())))?;
    sysmount::pivot_root_here().map_err(at("pivot_root"))?;
    sysproc::chdir(Path::new("/")).map_err(at("chdir / after pivot_root"))?;
    plan.mounts.apply_after_pivot().map_err(at("masking paths"))?;
    let root = sysfs::open_dir(Path::new("/")).map_err(at("opening /"))?;
    // The working directory is made while the root can still be written,
    // as Docker makes it for a read-only container.
    scoped::mkdir_all(root.as_fd(), &plan.process.cwd, 0o755)
        .map_err(at(format!("creating the working directory {}", plan.process.cwd.display())))?;
    if plan.readonly_root {
        let keep = sysmount::mount_flags_of(Path::new("/")).map_err(at("reading the root's mount flags"))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep;
        sysmount::mount(None, Path::new("/"), None, flags, None).map_err(at("remounting the root read-only"))?;
    }
    if let Some(name) = &plan.hostname {
        sysproc::set_hostname(name).map_err(at(format!("sethostname({name:?})")))?;
    }
    process(&plan.process, root)
}

/// Turns this process into the configured one: new session (and the
/// terminal as its controlling terminal), resource limits, capability
/// bounding set, uid/gid/groups, capability sets, no_new_privs, seccomp
/// filter, working directory resolved inside the root, every fd above 3
/// close-on-exec.
///
/// The filter goes on last when `no_new_privs` is set (the fewest calls of
/// berth's own run under it); without it, installing a filter needs
/// CAP_SYS_ADMIN, so it goes on before the capabilities are dropped, and
/// the calls that drop them must be allowed by the profile (Docker's
/// allows them), as with runc.
fn process(p: &ProcessPlan, root: OwnedFd) -> Result<(), Failure> {
    sysproc::setsid().map_err(at("setsid"))?;
    if p.terminal {
        pty::set_controlling_terminal(exec::borrow_raw(0)).map_err(at("ioctl(TIOCSCTTY) on the terminal"))?;
    }
    for &(res, soft, hard) in &p.rlimits {
        sysproc::set_rlimit(res, soft, hard).map_err(at(format!("setrlimit({res:?}, {soft}, {hard})")))?;
    }
    let install = |f: &crate::runtime::seccomp::Filter| {
        sysseccomp::install_filter(&f.program, f.flags).map_err(at("installing the seccomp filter"))
    };
    if let (Some(filter), false) = (&p.seccomp, p.no_new_privs) {
        install(filter)?;
    }
    caps::limit_bounding(p.caps.bounding).map_err(at("dropping capabilities from the bounding set"))?;
    caps::set_keepcaps(true).map_err(at("prctl(PR_SET_KEEPCAPS)"))?;
    let groups = settable_groups(&p.groups);
    sysproc::set_ids(p.uid, p.gid, groups.as_deref())
        .map_err(at(format!("setting uid {} gid {} groups {:?}", p.uid, p.gid, groups)))?;
    caps::set_sets(p.caps.effective, p.caps.inheritable, p.caps.permitted).map_err(at("capset"))?;
    caps::set_ambient(p.caps.ambient).map_err(at("setting ambient capabilities"))?;
    if p.no_new_privs {
        sysproc::set_no_new_privs().map_err(at("prctl(PR_SET_NO_NEW_PRIVS)"))?;
        if let Some(filter) = &p.seccomp {
            install(filter)?;
        }
    }
    let cwd = sysfs::resolve_dir_in_root(root.as_fd(), &p.cwd)
        .map_err(at(format!("resolving the working directory {} in the container", p.cwd.display())))?;
    sysproc::fchdir(cwd.as_fd()).map_err(at(format!("chdir {}", p.cwd.display())))?;
    drop((cwd, root));
    exec::cloexec_from(ERR_FD + 1).map_err(at("close_range(4.., CLOSE_RANGE_CLOEXEC)"))?;
    exec::set_cloexec(exec::borrow_raw(ERR_FD), true).map_err(at("fcntl(FD_CLOEXEC) on the error pipe"))
}

/// `exec_in`'s stage: joins every namespace of `target` (the mount
/// namespace after the others but the user namespace: it changes `/`), clones the new process into the PID
/// namespace, which takes on the process's credentials and executes the
/// command directly (keeping its pid, which the parent waits for).
pub(crate) fn exec(target: i32, process_spec: &Process, filter: Option<crate::runtime::seccomp::Filter>) -> ! {
    let mut plan = ProcessPlan::new(process_spec, true, None).unwrap_or_else(|e| fail(at("checking the process")(e)));
    plan.seccomp = filter;
    let joins = target_namespaces(target).unwrap_or_else(|e| fail(at("opening the container's namespaces")(e)));
    for j in &joins {
        ns::setns(j.fd.as_fd(), j.flag)
            .unwrap_or_else(|e| fail(at(format!("joining the namespace {}", j.path.display()))(e)));
    }
    drop(joins);
    clone_and_report(CloneFlags::empty());
    wait_for_go();
    let run = || -> Result<Infallible, Failure> {
        let root = sysfs::open_dir(Path::new("/")).map_err(at("opening the container's /"))?;
        process(&plan, root)?;
        crate::runtime::init::exec_command(&plan.argv, Some(ERR_FD))
    };
    match run() {
        Ok(never) => match never {},
        Err(f) => fail(f),
    }
}

/// Opens `/proc/TARGET/ns/*` in the order they are joined.
pub(super) fn target_namespaces(target: i32) -> Result<Vec<Join>, super::ProcessError> {
    let mut joins = Vec::new();
    for (name, flag) in [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        joins.push(open_ns(Path::new(&format!("/proc/{target}/ns/{name}")), flag)?);
    }
    // A container with a user namespace of its own (`--userns=auto`): join
    // it last, so that the command gets its capabilities there, not ours,
    // and after the others while still real root: some (a project's
    // network namespace) belong to the host's user namespace, over which
    // the container's root has no capability.
    let theirs = ns::ns_inode(Some(nix::unistd::Pid::from_raw(target)), "user");
    if theirs.is_ok() && theirs.ok() != ns::ns_inode(None, "user").ok() {
        joins.push(open_ns(Path::new(&format!("/proc/{target}/ns/user")), CloneFlags::CLONE_NEWUSER)?);
    }
    Ok(joins)
}

/// In the forked process, before anything else: puts the stdio fds on
/// 0–2, the error pipe on 3, the sync pipe on 4, the configuration on 5,
/// marks everything else close-on-exec and executes berth's init from the
/// sealed memfd.
pub(super) fn exec_stage(
    fds: [BorrowedFd<'_>; 6],
    init: BorrowedFd<'_>,
    argv: &exec::CStrArray,
    envp: &exec::CStrArray,
) -> ! {
    let err_now = std::os::fd::AsRawFd::as_raw_fd(&fds[3]);
    let report = |step: &str, e: std::io::Error| -> ! {
        wire::send_setup_failure(err_now, step, e.raw_os_error().unwrap_or(0), &e.to_string());
        exit_now(1)
    };
    // Copy every fd above the numbers about to be filled, so that no dup3
    // onto 0..=5 can close a source.
    let mut high: [Option<OwnedFd>; 7] = Default::default();
    for (slot, fd) in high.iter_mut().zip(fds.iter().chain([&init])) {
        *slot = Some(exec::dup_above(*fd, 10).unwrap_or_else(|e| report("duplicating fds", e)));
    }
    for (n, fd) in high[..6].iter().flatten().enumerate() {
        exec::dup_onto(fd.as_fd(), n as RawFd).unwrap_or_else(|e| report("dup3 onto fds 0-5", e));
    }
    exec::cloexec_from(6).unwrap_or_else(|e| report("close_range(6.., CLOSE_RANGE_CLOEXEC)", e));
    let Some(init) = &high[6] else { exit_now(1) };
    let e = exec::exec_fd(init.as_fd(), argv, envp);
    wire::send_setup_failure(
        ERR_FD,
        "executing berth's init (sealed memfd)",
        e.raw_os_error().unwrap_or(0),
        &e.to_string(),
    );
    exit_now(1)
}
