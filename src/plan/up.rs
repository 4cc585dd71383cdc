//! `berth up` and `berth down`: the reconciler's acting half.
//!
//! `up` builds what is missing, then walks the envs in `depends_on` order
//! and compares each with its container (found by the labels
//! `org.berth.project` and `org.berth.env`; `reconcile_env`): the same
//! spec, image digest and files, running — nothing; the same but stopped —
//! start; another spec or image, files drifted (with `--reset-drift`) or a
//! shim gone while the process runs — remove and create anew; none —
//! create. Envs that others depend on are waited for until their health
//! check passes. A container `up` created that then fails to start is
//! removed again (and the project's network namespace, when no container of
//! the project is left), so `plan` shows it as still to create and the next
//! `up` retries from clean. Containers of envs no longer declared are removed. All envs with
//! `network = "project"` join one network namespace kept in the store
//! (`projects/NAME.netns`, see `runtime::netns`), so they reach each other
//! on `localhost` and by env name; as root, `up` connects it to the outside
//! once per project (`runtime::network`: bridge, veth, subnet,
//! masquerading). Envs with `network = "isolated"` share another one, with
//! loopback only. `down` removes the project's containers
//! and that namespace (and its named volumes with `-v`); the project is the
//! manifest's, or named by hand or by a freeze archive, which needs no
//! manifest (then a project the store has nothing of is an error).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::actual;
use crate::build::{self, BuildOptions, Event, ProjectBuildError};
use crate::manifest;
use crate::manifest::values::{Network, VolumeSource};
use crate::resolve::ContainerSpec;
use crate::runtime::container;
use crate::runtime::create::{self, RunOptions};
use crate::runtime::defaults::RunDefaults;
use crate::runtime::health::{self, HealthCheck, Verdict};
use crate::runtime::spec::{BindMount, NetworkMode, Resources};
use crate::runtime::{control, netns, network, shim};
use crate::store::Store;

/// Labels that tie a container to a project's env.
pub use crate::runtime::netns::PROJECT_LABEL;
pub const ENV_LABEL: &str = "org.berth.env";
pub const CONFIG_LABEL: &str = "org.berth.config";
/// The env's `ContainerSpec` as `up` created its container from it.
pub const ENV_SPEC_FILE: &str = "env-spec.json";

/// Why `up` or `down` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Build(#[from] ProjectBuildError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("env \"{env}\": {source}")]
    Create { env: String, source: Box<create::CreateError> },
    #[error("env \"{env}\": {source}")]
    Start { env: String, source: Box<control::ControlError> },
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Netns(#[from] crate::runtime::netns::NetnsError),
    #[error("no project {project:?} in the store {}: {}", store.display(), known_projects(known))]
    UnknownProject { project: String, store: PathBuf, known: Vec<String> },
    #[error("env \"{env}\" did not become healthy ({why}) with `{check}`; its last log lines:\n{tail}")]
    Unhealthy { env: String, why: String, check: String, tail: String },
    #[error("cannot make the volume directory {}: {source}", path.display())]
    Volume { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Defaults(#[from] crate::runtime::defaults::DefaultsError),
    /// Undoing what a failed attempt made failed too; both are kept.
    #[error("{first}; and then removing {what} failed: {cleanup}")]
    Cleanup { first: Box<UpError>, what: String, cleanup: String },
}

/// What `up` did to one env.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Action {
    /// No command to run (an env used only as a base): built, not started.
    ImageOnly,
    Unchanged,
    Started,
    Created,
    /// Removed and created anew, and why (the fields that changed).
    Recreated(String),
    Removed,
}

/// What `berth up` is asked to do.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub build: BuildOptions,
    /// Recreate containers whose files drifted from their image.
    pub reset_drift: bool,
    /// What to do with limits no cgroup can apply (rootless).
    pub limits: create::LimitPolicy,
}

/// Brings the project of `manifest_path` up in the store at `store_root`,
/// detached; returns what happened per env (removed orphans included).
pub fn up(
    manifest_path: &Path,
    store_root: &Path,
    opts: &UpOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<BTreeMap<String, Action>, UpError> {
    // One exclusive lock from the build to the last container: a second
    // `up` of the same project waits, then finds nothing to do.
    let store = Store::open(store_root)?;
    let lock = store.lock_exclusive()?;
    let build::Built { outcome: built, manifest, mut resolution, .. } =
        build::build_locked(manifest_path, &store, &opts.build, progress)?;
    resolution.apply_store_defaults(&manifest, &RunDefaults::read(store.root())?);
    let netns = match project_netns(&store, &manifest.project, resolution.specs.values()) {
        Ok(netns) => netns,
        Err(e) => return Err(release_netns_if_unused(&store, &lock, &manifest.project, e)),
    };
    let existing = actual::project_state(&store, &manifest.project, opts.reset_drift)?;
    let peers: Vec<String> = manifest.envs.keys().cloned().collect();
    let mut actions = BTreeMap::new();
    let envs = &opts.build.envs;
    let wanted: Vec<String> = if envs.is_empty() { manifest.envs.keys().cloned().collect() } else { envs.clone() };
    let needed = |env: &str| manifest.envs.values().any(|e| e.depends_on.iter().any(|d| d == env));
    for env in start_order(&wanted, &|e| manifest.envs[e].depends_on.clone()) {
        let spec = &resolution.specs[&env];
        let image = &built.images[&env].tag;
        let current = existing.iter().find(|c| c.env == env);
        let how = Reconcile { waited_for: needed(&env), limits: opts.limits };
        let action = match reconcile_env(&store, &peers, spec, image, &netns, current, how) {
            Ok(action) => action,
            Err(e) => return Err(release_netns_if_unused(&store, &lock, &manifest.project, e)),
        };
        actions.insert(env, action);
    }
    if envs.is_empty() {
        for orphan in existing.iter().filter(|c| !manifest.envs.contains_key(&c.env)) {
            control::remove_for_good(&store, &lock, &orphan.container, true)
                .map_err(|e| UpError::Start { env: orphan.name.clone(), source: Box::new(e) })?;
            actions.insert(orphan.env.clone(), Action::Removed);
        }
    }
    Ok(actions)
}

/// After `up` failed with `first`: removes the project's network namespace
/// if no container of the project is left (the attempt made it for the
/// container it then removed), so a failed first `up` leaves no mount.
pub(crate) fn release_netns_if_unused(
    store: &Store,
    lock: &crate::store::StoreLock,
    project: &str,
    first: UpError,
) -> UpError {
    let left = match container::list(&store.containers_dir()) {
        Ok(left) => left,
        Err(e) => return cleanup_failed(first, format!("the network namespace of project {project}"), e),
    };
    if left.iter().any(|c| netns::project_of(&c.record) == Some(project)) {
        return first;
    }
    match netns::remove(store, lock, project) {
        Ok(_) => first,
        Err(e) => cleanup_failed(first, format!("the network namespace of project {project}"), e),
    }
}

fn cleanup_failed(first: UpError, what: String, cleanup: impl std::fmt::Display) -> UpError {
    UpError::Cleanup { first: Box::new(first), what, cleanup: cleanup.to_string() }
}

/// The namespaces the envs of a project join (`runtime::netns`).
#[derive(Debug, Clone)]
pub(crate) struct ProjectNets {
    /// `network = "project"`: with outbound access as root.
    pub project: PathBuf,
    /// `network = "isolated"`: loopback only.
    pub isolated: PathBuf,
}

/// The project's network namespaces, each made if an env of `specs` joins
/// it; the project one connected to the outside (as root: bridge, veth,
/// subnet, masquerading; once per project, whatever is there already is
/// kept).
pub(crate) fn project_netns<'a>(
    store: &Store,
    project: &str,
    specs: impl Iterator<Item = &'a ContainerSpec>,
) -> Result<ProjectNets, UpError> {
    let networks: Vec<Network> = specs.map(|s| s.network).collect();
    let nets = ProjectNets {
        project: netns::path_of(store, project, netns::Kind::Project),
        isolated: netns::path_of(store, project, netns::Kind::Isolated),
    };
    if networks.contains(&Network::Project) {
        let at = netns::ensure(store, project, netns::Kind::Project)?;
        if network::outbound_available() {
            network::attach(&at, project).map_err(netns::NetnsError::from)?;
        }
    }
    if networks.contains(&Network::Isolated) {
        netns::ensure(store, project, netns::Kind::Isolated)?;
    }
    Ok(nets)
}

/// How [`reconcile_env`] treats one env.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reconcile {
    /// Other envs depend on it: wait for its health check.
    pub waited_for: bool,
    /// What to do with limits no cgroup can apply (rootless).
    pub limits: create::LimitPolicy,
}

/// Makes one env's container match `spec` run from `image`: nothing when it
/// does (and runs), start it when it is stopped, recreate it when its
/// config (or with drift, its files) changed, create it when there is none.
/// When other envs depend on it (`how.waited_for`), waits for its health check.
pub(crate) fn reconcile_env(
    store: &Store,
    peers: &[String],
    spec: &ContainerSpec,
    image: &str,
    netns: &ProjectNets,
    current: Option<&actual::EnvState>,
    how: Reconcile,
) -> Result<Action, UpError> {
    let Reconcile { waited_for, limits } = how;
    let env = &spec.env;
    let config = spec.config_hash().to_string();
    let fail = |e| UpError::Start { env: env.clone(), source: Box::new(e) };
    let resolved = store
        .resolve_image(image)
        .map_err(|e| UpError::Create { env: env.clone(), source: Box::new(create::CreateError::Image(Box::new(e))) })?;
    if !crate::build::image::has_command(&resolved.config) {
        if let Some(c) = current {
            control::remove(&c.container, true).map_err(fail)?;
        }
        return Ok(Action::ImageOnly);
    }
    let action = match current {
        Some(c) if c.unsupervised() => {
            control::remove(&c.container, true).map_err(fail)?;
            start_new(store, peers, spec, image, netns, limits)?;
            Action::Recreated(super::containers::UNSUPERVISED.to_owned())
        }
        // The same spec, but the image's bytes differ (a --no-cache rebuild).
        Some(c) if c.config_hash == config && c.image_digest != resolved.manifest_digest => {
            control::remove(&c.container, true).map_err(fail)?;
            start_new(store, peers, spec, image, netns, limits)?;
            Action::Recreated(super::containers::image_changed(&c.image_digest, &resolved.manifest_digest))
        }
        Some(c) if c.config_hash == config && !c.drift.is_empty() => {
            control::remove(&c.container, true).map_err(fail)?;
            start_new(store, peers, spec, image, netns, limits)?;
            Action::Recreated(format!("its files drifted: {} paths changed", c.drift.len()))
        }
        Some(c) if c.config_hash == config => {
            // A container between two runs of its restart policy is its shim's.
            if c.supervised() || control::is_running(&c.container).map_err(fail)? {
                Action::Unchanged
            } else {
                control::start(&c.container).map_err(fail)?;
                Action::Started
            }
        }
        Some(c) => {
            control::remove(&c.container, true).map_err(fail)?;
            start_new(store, peers, spec, image, netns, limits)?;
            Action::Recreated(super::containers::changes(c.spec.as_ref(), spec).join("; "))
        }
        None => {
            start_new(store, peers, spec, image, netns, limits)?;
            Action::Created
        }
    };
    if waited_for && let Some(health) = &spec.health {
        wait_healthy(store, &spec.project, env, &health_check(health))?;
    }
    Ok(action)
}

/// What `down` does with a project the store has nothing of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfUnknown {
    /// Nothing: a manifest's project that is not up.
    Nothing,
    /// Fail with [`UpError::UnknownProject`], which lists the store's
    /// projects: a name given by hand or read from an archive.
    Fail,
}

/// Stops and removes each project's containers (in name order) and network
/// namespace; with `volumes`, its named volumes too. Returns the names removed, per
/// project. With [`IfUnknown::Fail`], every project is checked first, and
/// nothing is removed if one is unknown.
pub fn down(
    store_root: &Path,
    projects: &[String],
    volumes: bool,
    unknown: IfUnknown,
) -> Result<Vec<(String, Vec<String>)>, UpError> {
    let unknown_project = |project: &str, known| UpError::UnknownProject {
        project: project.to_owned(),
        store: store_root.to_owned(),
        known,
    };
    let Some(store) = Store::open_existing(store_root)? else {
        return match (unknown, projects.first()) {
            (IfUnknown::Fail, Some(p)) => Err(unknown_project(p, Vec::new())),
            _ => Ok(projects.iter().map(|p| (p.clone(), Vec::new())).collect()),
        };
    };
    let lock = store.lock_exclusive()?;
    let all = container::list(&store.containers_dir())?;
    if unknown == IfUnknown::Fail {
        let known = store_projects(&store, &all);
        if let Some(p) = projects.iter().find(|p| !known.contains(p)) {
            return Err(unknown_project(p, known));
        }
    }
    let mut out = Vec::new();
    for project in projects {
        let mut removed = Vec::new();
        // By name: the store lists containers in directory order, which
        // differs from store to store.
        let mut own: Vec<_> = all.iter().filter(|c| netns::project_of(&c.record) == Some(project)).collect();
        own.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        for c in own {
            control::remove(c, true).map_err(|e| UpError::Start { env: c.record.name.clone(), source: Box::new(e) })?;
            removed.push(c.record.name.clone());
        }
        // Its last container is gone: the namespace goes whoever made it.
        netns::remove(&store, &lock, project)?;
        if volumes {
            let dir = volume_root(&store).join(project);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|source| UpError::Volume { path: dir, source })?;
            }
        }
        out.push((project.clone(), removed));
    }
    Ok(out)
}

/// The projects the store has something of: a container, a network
/// namespace or a named volume. `containers` are the store's containers.
fn store_projects(store: &Store, containers: &[container::Container]) -> Vec<String> {
    let mut known: std::collections::BTreeSet<String> =
        containers.iter().filter_map(|c| netns::project_of(&c.record)).map(str::to_owned).collect();
    let names = |dir: PathBuf| {
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect::<Vec<PathBuf>>()
    };
    let is_netns = |p: &&PathBuf| p.extension().and_then(|x| x.to_str()).and_then(netns::Kind::of_extension).is_some();
    for ns in names(store.projects_dir()).iter().filter(is_netns) {
        known.extend(ns.file_stem().map(|s| s.to_string_lossy().into_owned()));
    }
    for dir in names(volume_root(store)).iter().filter(|p| p.is_dir()) {
        known.extend(dir.file_name().map(|s| s.to_string_lossy().into_owned()));
    }
    known.into_iter().collect()
}

/// The tail of [`UpError::UnknownProject`]'s message.
fn known_projects(known: &[String]) -> String {
    if known.is_empty() {
        "it has no projects (`berth up` makes one)".to_owned()
    } else {
        format!("its projects: {}", known.join(", "))
    }
}

/// Waits until the shim's health check calls the env's container healthy;
/// fails when it calls it unhealthy, the container stops, or no verdict
/// comes within the time the check's settings allow.
fn wait_healthy(store: &Store, project: &str, env: &str, check: &HealthCheck) -> Result<(), UpError> {
    let name = format!("{project}-{env}");
    let c = container::find(&store.containers_dir(), &name)?;
    let deadline = std::time::Instant::now() + health::verdict_within(check);
    let why = loop {
        let verdict = health::read(&c.paths.dir);
        match verdict.as_ref().map(|h| h.status) {
            Some(Verdict::Healthy) => return Ok(()),
            Some(Verdict::Unhealthy) => break "it is unhealthy".to_owned(),
            _ => {}
        }
        if !control::is_running(&c).unwrap_or(false) {
            break "it stopped".to_owned();
        }
        if std::time::Instant::now() > deadline {
            break "no verdict came in time".to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let last =
        health::read(&c.paths.dir).and_then(|h| h.last).map(|l| format!(", last check: {l}")).unwrap_or_default();
    let mut tail = Vec::new();
    let query = crate::runtime::logs::LogQuery { tail: Some(10), ..Default::default() };
    let _ =
        crate::runtime::logs::read_logs(&c.paths.log(), &query, &mut crate::runtime::logs::Outputs::merged(&mut tail));
    Err(UpError::Unhealthy {
        env: env.to_owned(),
        why: format!("{why}{last}"),
        check: check.cmd.join(" "),
        tail: crate::build::step::tail(&tail, 10),
    })
}

/// The manifest's health check as the shim runs it.
fn health_check(h: &crate::manifest::Health) -> HealthCheck {
    HealthCheck {
        cmd: h.cmd.clone(),
        interval: h.interval.0,
        timeout: h.timeout.0,
        retries: h.retries,
        start_period: h.start_period.0,
    }
}

fn volume_root(store: &Store) -> PathBuf {
    store.root().join("volumes")
}

/// `wanted` and what they depend on (`deps`), dependencies first.
pub(crate) fn start_order(wanted: &[String], deps: &dyn Fn(&str) -> Vec<String>) -> Vec<String> {
    fn visit(env: &str, deps: &dyn Fn(&str) -> Vec<String>, out: &mut Vec<String>) {
        if out.iter().any(|e| e == env) {
            return;
        }
        for dep in deps(env) {
            visit(&dep, deps, out);
        }
        out.push(env.to_owned());
    }
    let mut out = Vec::new();
    for env in wanted {
        visit(env, deps, &mut out);
    }
    out
}

/// Creates and starts the container of `spec` from `image`, with the names
/// of its `peers` (the project's envs) resolving to the project's network.
pub(crate) fn start_new(
    store: &Store,
    peers: &[String],
    spec: &ContainerSpec,
    image: &str,
    netns: &ProjectNets,
    policy: create::LimitPolicy,
) -> Result<(), UpError> {
    let env = spec.env.clone();
    let mut volumes = Vec::new();
    for v in &spec.volumes {
        let source = match &v.source {
            // A missing host path is made, as a directory, as Docker does.
            VolumeSource::Bind(p) => {
                if std::fs::symlink_metadata(p).is_err() {
                    std::fs::create_dir_all(p).map_err(|source| UpError::Volume { path: p.clone(), source })?;
                }
                p.clone()
            }
            VolumeSource::Named(name) => {
                let dir = volume_root(store).join(&spec.project).join(name);
                std::fs::create_dir_all(&dir).map_err(|source| UpError::Volume { path: dir.clone(), source })?;
                dir
            }
        };
        volumes.push(BindMount { source, destination: PathBuf::from(&v.target), readonly: v.read_only });
    }
    let mut labels = spec.labels.clone();
    labels.insert(PROJECT_LABEL.to_owned(), spec.project.clone());
    labels.insert(ENV_LABEL.to_owned(), env.clone());
    labels.insert(CONFIG_LABEL.to_owned(), spec.config_hash().to_string());
    let limits = &spec.limits;
    let mut resources = Resources {
        memory_bytes: limits.memory.map(|m| m.0 as i64),
        pids: limits.pids.map(|p| p as i64),
        ..Resources::default()
    };
    if let Some(cpus) = limits.cpus {
        resources.set_cpus(cpus);
    }
    let opts = RunOptions {
        image: image.to_owned(),
        name: Some(format!("{}-{}", spec.project, env)),
        ports: spec.ports.clone(),
        resources,
        network: match spec.network {
            Network::Project => NetworkMode::Join(netns.project.clone()),
            Network::Isolated => NetworkMode::Join(netns.isolated.clone()),
            Network::Host => NetworkMode::Host,
            Network::None => NetworkMode::None,
        },
        hostname: Some(env.clone()),
        aliases: peers.iter().filter(|e| **e != env).cloned().collect(),
        restart: spec.restart.to_string(),
        volumes,
        labels,
        health: spec.health.as_ref().map(health_check),
        limits: policy,
        security: security_options(spec),
        read_only: spec.read_only,
        tmpfs: spec.tmpfs.clone(),
        no_init: !spec.init,
        userns: Some(crate::runtime::userns_auto::for_env(spec.userns)),
        ..RunOptions::default()
    };
    let resolv = network::resolv_conf((spec.network == Network::Project).then_some(netns.project.as_path()));
    let c =
        create::create(store, &opts, &resolv).map_err(|e| UpError::Create { env: env.clone(), source: Box::new(e) })?;
    // What the env asked for, so `berth plan` can say which fields changed.
    let json = serde_json::to_vec_pretty(spec).expect("a container spec always serialises");
    let started = store.write_atomic(&c.paths.dir.join(ENV_SPEC_FILE), &json).map_err(UpError::from).and_then(|()| {
        shim::spawn(&c.paths.dir)
            .map_err(|e| UpError::Start { env: env.clone(), source: Box::new(control::ControlError::Shim(e)) })
    });
    // A container that never started is not left half-made: the next `up`
    // (and `plan`) sees none and creates it again.
    if let Err(first) = started {
        return Err(match control::remove(&c, true) {
            Ok(()) => first,
            Err(e) => cleanup_failed(first, format!("the container {} it created", c.record.name), e),
        });
    }
    Ok(())
}

/// The env's `security_opt`, capabilities and `privileged` as the runtime
/// takes them.
fn security_options(spec: &ContainerSpec) -> crate::runtime::security::SecurityOptions {
    use crate::manifest::values::SecurityOpt;
    use crate::runtime::security::{SeccompChoice, SecurityOptions};
    let mut out = SecurityOptions {
        cap_add: spec.cap_add.clone(),
        cap_drop: spec.cap_drop.clone(),
        privileged: spec.privileged,
        ..SecurityOptions::default()
    };
    for o in &spec.security_opt {
        match o {
            SecurityOpt::SeccompUnconfined => out.seccomp = SeccompChoice::Unconfined,
            SecurityOpt::SeccompProfile(path) => out.seccomp = SeccompChoice::Profile(path.clone()),
            SecurityOpt::NoNewPrivileges => out.no_new_privileges = true,
        }
    }
    out
}
