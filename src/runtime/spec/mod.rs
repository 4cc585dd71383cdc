//! The OCI runtime spec berth runs every container from, built with
//! Docker's defaults ([`default_spec`]), and users resolved against an
//! image's `/etc/passwd` and `/etc/group` ([`process_user`], the one rule for
//! the user, groups and `$HOME` of every process berth starts in a container).
//!
//! [`SpecRequest`] is what the rest of berth decides about a container
//! (command, environment, user, hostname, network mode, limits, volumes);
//! [`default_spec`] is pure and adds everything Docker would: the default
//! capability set, namespaces, `/proc`, `/dev`, `/sys` and friends, masked
//! and read-only paths, the standard device nodes. `runtime::process`
//! consumes the result; nothing there depends on how it was built, so a
//! hand-written `config.json` runs the same way.

mod defaults;
mod user;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxCpu, LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, Mount, PosixRlimitBuilder,
    PosixRlimitType, Process, Root, Spec, User,
};

pub use defaults::{DEFAULT_CAPABILITIES, DEFAULT_PATH, default_capabilities_mask};
pub use user::{ResolvedUser, process_user, resolve_user, resolve_user_in_layers};

/// The spec annotation that says `$HOME` in `process.env` is the user's
/// home directory from the image's `/etc/passwd` (neither the image nor the
/// user set it), so a process run as another user (`exec -u`) gets that
/// user's home instead, as Docker does.
pub const HOME_FROM_PASSWD: &str = "org.berth.home-from-passwd";

/// The spec annotation that says the command itself is the container's
/// PID 1 (`init = false`, `--no-init`): berth's init does not run, so
/// nothing reaps orphans or forwards signals, as in Docker without
/// `--init`.
pub const NO_INIT: &str = "org.berth.no-init";

/// What went wrong while resolving a user against an image.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("user {user:?}: cannot read {file} in the image at {root}: {source}")]
    ReadFile { user: String, file: &'static str, root: PathBuf, source: std::io::Error },
    #[error("user {user:?}: no such user in {root}/etc/passwd (give a user name listed there, or a numeric uid)")]
    UnknownUser { user: String, root: PathBuf },
    #[error("user {user:?}: no such group {group:?} in {root}/etc/group (give a group listed there, or a numeric gid)")]
    UnknownGroup { user: String, group: String, root: PathBuf },
    #[error("user {user:?}: expected USER, UID, USER:GROUP or UID:GID")]
    BadUser { user: String },
}

/// How the container is networked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A fresh network namespace with only `lo`, up.
    #[default]
    New,
    /// Same as [`NetworkMode::New`] (Docker's `--network none`).
    None,
    /// Join an existing network namespace (a bind-mounted namespace file or
    /// `/proc/PID/ns/net`), e.g. the one the project's envs share.
    Join(PathBuf),
    /// No network namespace: the host's network.
    Host,
}

impl Resources {
    /// The limits set, named as a user asks for them ("memory, pids"), or
    /// `None` when there is none.
    pub fn named(&self) -> Option<String> {
        let named = [
            (self.memory_bytes.is_some(), "memory"),
            (self.cpu_quota.is_some(), "cpus"),
            (self.pids.is_some(), "pids"),
        ];
        let set: Vec<&str> = named.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
        (!set.is_empty()).then(|| set.join(", "))
    }

    /// `cpus` (0.5 = half a CPU) as a quota per the kernel's default period.
    pub fn set_cpus(&mut self, cpus: f64) {
        self.cpu_period = Some(100_000);
        self.cpu_quota = Some((cpus * 100_000.0).round() as i64);
    }
}

/// Resource limits, written to `linux.resources` for the cgroup code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds (the kernel's default is 100000).
    pub cpu_period: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
}

/// A host path bind-mounted into the container (a volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    pub readonly: bool,
}

/// A resource limit requested for the container's processes. The runtime
/// clamps both values to its own hard limit: it never raises one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimitRequest {
    pub kind: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

/// Host files bind-mounted over the container's `/etc/hosts`,
/// `/etc/hostname` and `/etc/resolv.conf`, as Docker does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: Option<PathBuf>,
    pub hostname: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
}

/// Everything about a container that is not a Docker default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecRequest {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries; `PATH` (Docker's default), `HOME` (the user's,
    /// see [`ResolvedUser::home_dir`]) and `HOSTNAME` (and `TERM=xterm` with
    /// a terminal) are added when missing.
    pub env: Vec<String>,
    /// Working directory inside the container; `/` when `None`.
    pub cwd: Option<PathBuf>,
    /// The user, already resolved (see [`process_user`]). The default is
    /// uid 0 with no home: resolve root too, so that it gets `/root`.
    pub user: ResolvedUser,
    pub hostname: Option<String>,
    /// Run the command on a terminal (stdin, stdout and stderr are one pty).
    pub terminal: bool,
    pub network: NetworkMode,
    pub resources: Resources,
    pub etc: EtcFiles,
    /// Volumes, mounted after the standard mounts (with `tmpfs`, parents
    /// before what is under them).
    pub mounts: Vec<BindMount>,
    /// tmpfs mounts (`--tmpfs`).
    pub tmpfs: Vec<crate::runtime::tmpfs::Tmpfs>,
    /// Run the command as PID 1, without berth's init ([`NO_INIT`]).
    pub no_init: bool,
    pub rlimits: Vec<RlimitRequest>,
    /// Mount the root filesystem read-only.
    pub readonly_rootfs: bool,
}

/// Builds the OCI runtime spec for `req` with Docker's defaults.
pub fn default_spec(req: &SpecRequest) -> Spec {
    let mut spec = Spec::default();
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(req.readonly_rootfs));
    spec.set_root(Some(root));
    spec.set_hostname(req.hostname.clone());
    spec.set_process(Some(process(req)));
    spec.set_mounts(Some(mounts(req)));
    spec.set_hooks(None);
    let annotations: std::collections::HashMap<String, String> =
        [(HOME_FROM_PASSWD, !has_key(&req.env, "HOME")), (NO_INIT, req.no_init)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(key, _)| (key.to_owned(), "true".to_owned()))
            .collect();
    spec.set_annotations((!annotations.is_empty()).then_some(annotations));

    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_namespaces(Some(namespaces(&req.network)));
    linux.set_resources(Some(resources(&req.resources)));
    linux.set_devices(Some(defaults::devices()));
    linux.set_masked_paths(Some(defaults::MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
    linux.set_readonly_paths(Some(defaults::READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_cgroups_path(None);
    linux.set_seccomp(None);
    linux.set_rootfs_propagation(None);
    spec.set_linux(Some(linux));
    spec
}

/// Adds `KEY=VALUE` entries to `env`, each replacing an earlier entry of
/// the same key (`docker run -e` over an image's `Env`).
pub fn merge_env(env: &mut Vec<String>, entries: &[String]) {
    for entry in entries {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        env.retain(|e| !has_key(std::slice::from_ref(e), key));
        env.push(entry.clone());
    }
}

/// `HOME=…` for `user` (see [`ResolvedUser::home_dir`]).
pub fn home_entry(user: &ResolvedUser) -> String {
    format!("HOME={}", user.home_dir().display())
}

/// Whether `spec` runs its command without berth's init ([`NO_INIT`]).
pub fn runs_without_init(spec: &Spec) -> bool {
    annotation_set(spec, NO_INIT)
}

fn annotation_set(spec: &Spec, key: &str) -> bool {
    spec.annotations().as_ref().is_some_and(|a| a.get(key).is_some_and(|v| v == "true"))
}

/// Whether `$HOME` in `spec` came from the user's `/etc/passwd` entry (see
/// [`HOME_FROM_PASSWD`]) rather than from the image or the user.
pub fn home_from_passwd(spec: &Spec) -> bool {
    annotation_set(spec, HOME_FROM_PASSWD)
}

/// Whether `env` (`KEY=VALUE` entries) sets `key`.
pub fn has_key(env: &[String], key: &str) -> bool {
    env.iter().any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
}

fn environment(req: &SpecRequest) -> Vec<String> {
    let mut env = Vec::with_capacity(req.env.len() + 4);
    if !has_key(&req.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if let Some(host) = &req.hostname
        && !has_key(&req.env, "HOSTNAME")
    {
        env.push(format!("HOSTNAME={host}"));
    }
    if req.terminal && !has_key(&req.env, "TERM") {
        env.push("TERM=xterm".to_string());
    }
    if !has_key(&req.env, "HOME") {
        env.push(home_entry(&req.user));
    }
    env.extend(req.env.iter().cloned());
    env
}

fn process(req: &SpecRequest) -> Process {
    let mut user = User::default();
    user.set_uid(req.user.uid);
    user.set_gid(req.user.gid);
    user.set_additional_gids(Some(req.user.additional_gids.clone()));

    let mut p = Process::default();
    p.set_terminal(Some(req.terminal));
    p.set_user(user);
    p.set_args(Some(req.args.clone()));
    p.set_env(Some(environment(req)));
    p.set_cwd(req.cwd.clone().unwrap_or_else(|| PathBuf::from("/")));
    // Docker's default: off (setuid programs such as sudo work); on with
    // `--security-opt no-new-privileges`.
    p.set_no_new_privileges(Some(false));
    p.set_capabilities(Some(defaults::capabilities()));
    let rlimits = req
        .rlimits
        .iter()
        .map(|r| {
            // PosixRlimit has no setters; its builder has a default for every
            // field, so building cannot fail.
            PosixRlimitBuilder::default()
                .typ(r.kind)
                .soft(r.soft)
                .hard(r.hard)
                .build()
                .expect("PosixRlimitBuilder has a default for every field")
        })
        .collect();
    p.set_rlimits(Some(rlimits));
    p
}

fn namespaces(network: &NetworkMode) -> Vec<LinuxNamespace> {
    use LinuxNamespaceType as T;
    let mut out = Vec::new();
    let mut push = |typ, path: Option<PathBuf>| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns.set_path(path);
        out.push(ns);
    };
    push(T::Mount, None);
    push(T::Pid, None);
    push(T::Uts, None);
    push(T::Ipc, None);
    match network {
        NetworkMode::New | NetworkMode::None => push(T::Network, None),
        NetworkMode::Join(path) => push(T::Network, Some(path.clone())),
        NetworkMode::Host => {}
    }
    push(T::Cgroup, None);
    out
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

fn bind(source: &std::path::Path, dest: &std::path::Path, readonly: bool) -> Mount {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".to_string());
    }
    let mut m = Mount::default();
    m.set_destination(dest.to_path_buf());
    m.set_typ(Some("bind".to_string()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(options));
    m
}

fn mounts(req: &SpecRequest) -> Vec<Mount> {
    let mut out: Vec<Mount> = defaults::MOUNTS.iter().map(|m| mount(m.0, m.1, m.2, m.3)).collect();
    for (file, dest) in [
        (&req.etc.hosts, "/etc/hosts"),
        (&req.etc.hostname, "/etc/hostname"),
        (&req.etc.resolv_conf, "/etc/resolv.conf"),
    ] {
        if let Some(file) = file {
            out.push(bind(file, std::path::Path::new(dest), false));
        }
    }
    let mut user: Vec<Mount> = req.mounts.iter().map(|m| bind(&m.source, &m.destination, m.readonly)).collect();
    for t in &req.tmpfs {
        let options = t.mount_options();
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        user.push(mount(&t.destination.to_string_lossy(), "tmpfs", "tmpfs", &options));
    }
    // Parents before what is under them, as Docker orders them (stable:
    // volumes before a tmpfs at the same depth).
    user.sort_by_key(|m| m.destination().components().count());
    out.extend(user);
    out
}

fn resources(r: &Resources) -> LinuxResources {
    let mut res = LinuxResources::default();
    res.set_devices(Some(defaults::device_rules()));
    if let Some(limit) = r.memory_bytes {
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(limit));
        res.set_memory(Some(mem));
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let mut cpu = LinuxCpu::default();
        cpu.set_quota(r.cpu_quota);
        cpu.set_period(r.cpu_period);
        res.set_cpu(Some(cpu));
    }
    if let Some(limit) = r.pids {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        res.set_pids(Some(pids));
    }
    res
}
