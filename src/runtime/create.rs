//! Creating a container: image from the store, its config merged with what
//! the user asked for (Docker's rules), an OCI runtime spec written to
//! `config.json`, and the container's directory with its record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::image::Config;

use super::container::{self, Container, ContainerError, ContainerId, EtcFiles, Record};
use super::spec::{self, BindMount, NetworkMode, Resources, SpecError, SpecRequest};
use crate::store::{ImageError, Store, StoreError};

/// What `berth run` (and later `berth up`) asks for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The image, as `berth images` names it or by id.
    pub image: String,
    pub name: Option<String>,
    /// Replaces the image's `Cmd` when not empty.
    pub command: Vec<String>,
    /// Replaces the image's `Entrypoint` (and drops its `Cmd`, as Docker does).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE`, added to and overriding the image's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Published ports.
    pub ports: Vec<super::ports::PortMapping>,
    pub resources: Resources,
    pub network: NetworkMode,
    pub hostname: Option<String>,
    /// Host names that resolve to 127.0.0.1 inside (the project's envs).
    pub aliases: Vec<String>,
    pub restart: String,
    pub auto_remove: bool,
    pub tty: bool,
    pub interactive: bool,
    pub volumes: Vec<BindMount>,
    pub labels: BTreeMap<String, String>,
    /// Run by the shim while the container runs (`berth ps` shows it).
    pub health: Option<super::health::HealthCheck>,
    /// What to do with limits no cgroup can apply (rootless).
    pub limits: LimitPolicy,
    /// The container's user namespace; `None`: the store's default
    /// ([`super::defaults::RunDefaults`]).
    pub userns: Option<UsernsMode>,
    /// `--security-opt` (seccomp profile, no_new_privs), capabilities,
    /// `--privileged`.
    pub security: super::security::SecurityOptions,
    /// `--read-only`: the root filesystem cannot be written; `/tmp`,
    /// `/var/tmp` and `/run` get a tmpfs unless a volume or tmpfs is there.
    pub read_only: bool,
    /// `--tmpfs`.
    pub tmpfs: Vec<super::tmpfs::Tmpfs>,
    /// `--no-init`: the command is PID 1 itself.
    pub no_init: bool,
}

/// Where a read-only container gets a tmpfs (podman's `--read-only-tmpfs`),
/// executable as there: programs write and run things in them.
const READ_ONLY_TMPFS: [&str; 3] = ["/tmp", "/var/tmp", "/run"];

/// `opts`' tmpfs mounts, with those a read-only root needs added.
fn tmpfs_mounts(opts: &RunOptions) -> Vec<super::tmpfs::Tmpfs> {
    let mut out = opts.tmpfs.clone();
    if opts.read_only {
        for dest in READ_ONLY_TMPFS {
            let dest_path = std::path::Path::new(dest);
            let taken = out.iter().any(|t| t.destination == dest_path)
                || opts.volumes.iter().any(|v| v.destination == dest_path);
            if !taken {
                out.push(super::tmpfs::Tmpfs { options: vec!["exec".to_owned()], ..super::tmpfs::Tmpfs::at(dest) });
            }
        }
    }
    out
}

pub use super::userns_auto::{AUTO_BASE, AUTO_SIZE, UsernsMode};

/// The lowest `--userns=auto` range that neither the host-wide record nor a
/// container in `containers` uses, recorded for the container that will
/// live in `owner`.
fn allocate_auto_range(containers: &std::path::Path, owner: &std::path::Path) -> Result<u32, CreateError> {
    let used: std::collections::BTreeSet<u32> =
        container::list(containers)?.iter().filter_map(|c| c.record.userns_base).collect();
    Ok(super::userns_auto::Ranges::host().allocate(owner, &used)?)
}

/// The first directory from `/` down to `path` that others may not search
/// (no `o+x`), if any: the container's root of `--userns=auto` is another
/// user on the host and must walk to its root filesystem.
fn closed_ancestor(path: &std::path::Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::path::absolute(path).ok()?;
    path.ancestors()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 == 0))
        .map(std::path::Path::to_path_buf)
}

/// Adds a user namespace mapping container ids `0..AUTO_SIZE` to host ids
/// `base..` to `spec`.
fn add_user_namespace(spec: &mut oci_spec::runtime::Spec, base: u32) {
    use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType};
    let map = LinuxIdMappingBuilder::default().container_id(0u32).host_id(base).size(AUTO_SIZE).build().expect("a map");
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::User).build().expect("a namespace"));
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    spec.set_linux(Some(linux));
}

/// What to do with `resources` where no cgroup can apply them (berth
/// without root, no delegated cgroup): never drop them silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LimitPolicy {
    /// Refuse to create the container, saying why and what would work.
    #[default]
    Apply,
    /// Run without them; the caller warns ([`limits_warning`]).
    Ignore,
}

/// Why a container could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Image(#[from] Box<ImageError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    User(#[from] SpecError),
    #[error(
        "image {0} has no command to run; give one after the image name, as in `berth run {0} sh`, or set --entrypoint"
    )]
    NoCommand(String),
    #[error("cannot write the spec {}: {source}", path.display())]
    WriteSpec { path: PathBuf, source: oci_spec::OciSpecError },
    #[error("cannot create a container id: {0}")]
    Random(std::io::Error),
    #[error(transparent)]
    Limits(#[from] super::cgroup::CgroupError),
    #[error(transparent)]
    Range(#[from] super::userns_auto::RangeError),
    #[error(transparent)]
    Defaults(#[from] super::defaults::DefaultsError),
    #[error(
        "--userns=auto needs root: berth without root already runs every container in your own user namespace; leave it out"
    )]
    AutoNeedsRoot,
    #[error(
        "--userns=auto: the container's root, an unprivileged host id, cannot reach the store through {}, which \
         others may not search; `chmod o+x {}` (0711 is enough), as for podman's and Docker's remapped storage",
        dir.display(), dir.display()
    )]
    Unreachable { dir: PathBuf },
    #[error(transparent)]
    Seccomp(#[from] super::seccomp::SeccompError),
    #[error(
        "image {image}: user {user:?} needs {ids}, which berth's user namespace has no id for: without root, ids \
         other than 0 come from your subordinate range in /etc/subuid and /etc/subgid, and you have none (or too \
         small a one); ask for one with `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \
         $USER`, or run as root inside (--user 0)"
    )]
    Unmapped { image: String, user: String, ids: String },
    #[error("cannot give {} to the container's root (host uid {base}): {source}", path.display())]
    Chown { path: PathBuf, base: u32, source: std::io::Error },
}

/// The warning for a container whose limits are not applied
/// ([`LimitPolicy::Ignore`] where no cgroup is available), or `None`.
pub fn limits_warning(c: &Container, resources: &Resources) -> Option<String> {
    let limits = resources.named()?;
    let why = super::cgroup::unavailable()?;
    c.record.limits_ignored.then(|| format!("container {}: the limits {limits} are not applied: {why}", c.record.name))
}

/// Whether `opts`' limits can be applied; `Ok(true)` when they are to be
/// ignored (no cgroup, [`LimitPolicy::Ignore`]).
fn check_limits(opts: &RunOptions) -> Result<bool, CreateError> {
    let (Some(limits), Some(why)) = (opts.resources.named(), super::cgroup::unavailable()) else {
        return Ok(false);
    };
    match opts.limits {
        LimitPolicy::Ignore => Ok(true),
        LimitPolicy::Apply => {
            Err(super::cgroup::CgroupError::NotDelegated { limits: format!("the limits {limits}"), why }.into())
        }
    }
}

/// Creates a container from `opts` in `store`. The caller holds the store's
/// exclusive lock.
pub fn create(store: &Store, opts: &RunOptions, host_resolv_conf: &str) -> Result<Container, CreateError> {
    let limits_ignored = check_limits(opts)?;
    let seccomp = opts.security.profile()?;
    let image = store.resolve_image(&opts.image).map_err(Box::new)?;
    let mut lowers = store.unpacked_layers(&image).map_err(Box::new)?;
    lowers.reverse(); // overlayfs wants the top layer first
    let config = image.config.config().clone().unwrap_or_default();
    let args = command(&config, opts).ok_or_else(|| CreateError::NoCommand(opts.image.clone()))?;
    let user_text = opts.user.clone().or_else(|| config.user().clone().filter(|u| !u.is_empty()));
    let user = spec::process_user(&lowers, user_text.as_deref())?;
    let missing = super::userns::missing_ids(user.uid, user.gid);
    if !missing.is_empty() {
        let user = user_text.unwrap_or_else(|| "0".to_owned());
        return Err(CreateError::Unmapped { image: opts.image.clone(), user, ids: missing.join(", ") });
    }

    let id = ContainerId::random().map_err(CreateError::Random)?;
    let containers = store.containers_dir();
    let userns = match opts.userns {
        Some(mode) => mode,
        // A default, like an env's `userns`, means the store's namespace
        // without root; only an explicit --userns=auto is refused there.
        None => super::userns_auto::for_env(super::defaults::RunDefaults::read(store.root())?.userns),
    };
    let userns_base = match userns {
        UsernsMode::Host => None,
        UsernsMode::Auto if super::userns::rootless() => return Err(CreateError::AutoNeedsRoot),
        UsernsMode::Auto => {
            closed_ancestor(&containers).map_or(Ok(()), |dir| Err(CreateError::Unreachable { dir }))?;
            Some(allocate_auto_range(&containers, &containers.join(id.as_str()))?)
        }
    };
    let name = container::choose_name(&containers, &id, opts.name.as_deref())?;
    let hostname = opts.hostname.clone().unwrap_or_else(|| id.short().to_owned());
    let record = Record {
        id: id.clone(),
        name,
        image: opts.image.clone(),
        image_digest: image.manifest_digest.clone(),
        created: crate::store::rfc3339(std::time::SystemTime::now()),
        command: args.clone(),
        lowers,
        ports: opts.ports.clone(),
        restart: if opts.restart.is_empty() { "no".to_owned() } else { opts.restart.clone() },
        auto_remove: opts.auto_remove,
        tty: opts.tty,
        interactive: opts.interactive,
        cgroup: format!("berth/{id}"),
        labels: opts.labels.clone(),
        health: opts.health.clone(),
        limits_ignored,
        userns_base,
        security: opts.security.clone(),
        read_only: opts.read_only,
        tmpfs: opts.tmpfs.clone(),
        no_init: opts.no_init,
    };
    let etc = EtcFiles::new(&hostname, &opts.aliases, host_resolv_conf);
    let created = container::create(&containers, &record, &etc)?;

    let request = SpecRequest {
        args,
        env: environment(&config, &opts.env),
        cwd: opts.workdir.clone().or_else(|| config.working_dir().clone().filter(|w| !w.is_empty())).map(PathBuf::from),
        user,
        hostname: Some(hostname),
        terminal: opts.tty,
        network: opts.network.clone(),
        resources: opts.resources.clone(),
        etc: spec::EtcFiles {
            hosts: Some(created.paths.etc().join("hosts")),
            hostname: Some(created.paths.etc().join("hostname")),
            resolv_conf: Some(created.paths.etc().join("resolv.conf")),
        },
        mounts: opts.volumes.clone(),
        tmpfs: tmpfs_mounts(opts),
        rlimits: Vec::new(),
        readonly_rootfs: opts.read_only,
        no_init: opts.no_init,
    };
    let mut oci = spec::default_spec(&request);
    super::hardening::apply(&mut oci, &opts.security, seccomp.as_ref());
    if let Some(base) = userns_base {
        add_user_namespace(&mut oci, base);
        // The overlay's root and the files the container writes belong to
        // its root, host id `base`.
        for path in [created.paths.upper(), created.paths.work()] {
            if let Err(source) = std::os::unix::fs::chown(&path, Some(base), Some(base)) {
                let _ = container::remove_dir(&created);
                return Err(CreateError::Chown { path, base, source });
            }
        }
    }
    oci.set_root(Some(
        oci_spec::runtime::RootBuilder::default()
            .path(created.paths.rootfs())
            .readonly(opts.read_only)
            .build()
            .expect("a root"),
    ));
    let path = created.paths.spec();
    if let Err(source) = oci.save(&path) {
        let _ = container::remove_dir(&created);
        return Err(CreateError::WriteSpec { path, source });
    }
    Ok(created)
}

/// The command line: Docker's rules for `Entrypoint` and `Cmd`.
fn command(config: &Config, opts: &RunOptions) -> Option<Vec<String>> {
    let entrypoint = match &opts.entrypoint {
        Some(e) => e.clone(),
        None => config.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = if !opts.command.is_empty() {
        opts.command.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd().clone().unwrap_or_default()
    };
    let all: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    (!all.is_empty()).then_some(all)
}

/// The image's environment with the user's entries added or replaced.
fn environment(config: &Config, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = config.env().clone().unwrap_or_default();
    spec::merge_env(&mut env, extra);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: &[&str], cmd: &[&str]) -> Config {
        let mut c = Config::default();
        let v = |xs: &[&str]| (!xs.is_empty()).then(|| xs.iter().map(|s| s.to_string()).collect());
        c.set_entrypoint(v(entrypoint));
        c.set_cmd(v(cmd));
        c.set_env(Some(vec!["PATH=/bin".into(), "A=1".into()]));
        c
    }

    fn opts(command: &[&str], entrypoint: Option<&[&str]>) -> RunOptions {
        RunOptions {
            command: command.iter().map(|s| s.to_string()).collect(),
            entrypoint: entrypoint.map(|e| e.iter().map(|s| s.to_string()).collect()),
            ..RunOptions::default()
        }
    }

    #[test]
    fn commands_follow_dockers_rules() {
        let c = config(&["/init"], &["serve"]);
        assert_eq!(command(&c, &opts(&[], None)).unwrap(), ["/init", "serve"]);
        assert_eq!(command(&c, &opts(&["sh"], None)).unwrap(), ["/init", "sh"]);
        assert_eq!(command(&c, &opts(&[], Some(&["/bin/sh"]))).unwrap(), ["/bin/sh"]);
        assert_eq!(command(&c, &opts(&["-c", "true"], Some(&["/bin/sh"]))).unwrap(), ["/bin/sh", "-c", "true"]);
        assert!(command(&config(&[], &[]), &opts(&[], None)).is_none());
    }

    #[test]
    fn user_env_overrides_the_images() {
        let env = environment(&config(&[], &[]), &["A=2".into(), "B=3".into()]);
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
    }
}
