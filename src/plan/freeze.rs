//! The QA hand-off: `berth freeze ENV… -o FILE.tar` and `berth up --from
//! FILE.tar`.
//!
//! Freezing snapshots each env's running container (a commit: its image
//! plus one layer of what it changed, read while the container is frozen)
//! and saves the snapshots as one OCI archive. Each image's `index.json`
//! entry carries the env's `ContainerSpec` — command, env vars, ports,
//! limits, volumes, restart policy, health, dependencies — as the
//! annotation [`SPEC_ANNOTATION`], so the image digests are those of the
//! snapshots and any OCI tool still reads the archive as plain images.
//!
//! `up --from` loads such an archive (every blob verified before anything
//! is stored), then reconciles each env from its spec exactly as `berth up`
//! does from a manifest — created, started, recreated or left alone, in
//! `depends_on` order, waiting for the health of envs others depend on —
//! with no manifest and no build. Bind mounts name paths of the machine
//! that froze the envs: one whose source is missing here is left out and
//! reported.
//!
//! `down --from` reads the archive's env configs (loading nothing) for the
//! projects they belong to, and takes those projects down as `berth down`
//! does, again with no manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::actual;
use super::up::{self, Action, IfUnknown, UpError};
use crate::build::commit::{self, CommitError, CommitOptions};
use crate::manifest::values::VolumeSource;
use crate::oci::Compression;
use crate::oci::archive::ArchiveFormat;
use crate::resolve::ContainerSpec;
use crate::runtime::container::{self, ContainerError};
use crate::store::{ArchiveError, SaveRequest, Store, StoreError};

/// The annotation that holds an env's `ContainerSpec` as JSON.
pub const SPEC_ANNOTATION: &str = "org.berth.container-spec";

/// Why a freeze or an `up --from` failed.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("env {env:?} of project {project:?} has no container; `berth up {env}` makes one")]
    NoContainer { project: String, env: String },
    #[error("container {name} was not made by `berth up` (it has no recorded env spec), so it cannot be frozen")]
    NoSpec { name: String },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Commit(#[from] Box<CommitError>),
    #[error(transparent)]
    Archive(#[from] Box<ArchiveError>),
    #[error("{}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error(
        "{}: no image in it carries a berth env config (the annotation {SPEC_ANNOTATION}); it was not written by \
         `berth freeze`. Its images are loaded: run them with `berth run`",
        path.display()
    )]
    NotFrozen { path: PathBuf },
    #[error(
        "{}: no image in it carries a berth env config (the annotation {SPEC_ANNOTATION}); it was not written by \
         `berth freeze`, so it names no project to take down; `berth down -p PROJECT` takes one down by name",
        path.display()
    )]
    NotFrozenDown { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: Box<crate::oci::archive::FormatError> },
    #[error("{}: image {image}: its env config does not parse: {source}", path.display())]
    BadSpec { path: PathBuf, image: String, source: serde_json::Error },
    #[error(transparent)]
    Up(#[from] Box<UpError>),
}

/// What `berth freeze` takes.
#[derive(Debug, Clone)]
pub struct FreezeOptions {
    /// The snapshots' history message.
    pub message: Option<String>,
    pub compression: Compression,
}

/// One frozen env.
#[derive(Debug, Clone)]
pub struct FrozenEnv {
    pub env: String,
    pub tag: String,
    pub manifest: crate::oci::Digest,
}

/// Snapshots `envs` of `project` and saves them, with their specs, as the
/// OCI archive `output` (written whole or not at all).
pub fn freeze(
    store: &Store,
    project: &str,
    envs: &[String],
    output: &Path,
    opts: &FreezeOptions,
) -> Result<Vec<FrozenEnv>, FreezeError> {
    let _lock = store.lock_exclusive()?;
    let now = SystemTime::now();
    let mut frozen = Vec::new();
    let mut requests = Vec::new();
    for env in envs {
        let name = format!("{project}-{env}");
        let c = match container::find(&store.containers_dir(), &name) {
            Err(ContainerError::NotFound(_)) => {
                return Err(FreezeError::NoContainer { project: project.to_owned(), env: env.clone() });
            }
            other => other?,
        };
        let spec = std::fs::read(c.paths.dir.join(up::ENV_SPEC_FILE))
            .map_err(|_| FreezeError::NoSpec { name: name.clone() })?;
        let spec = String::from_utf8(spec).map_err(|_| FreezeError::NoSpec { name: name.clone() })?;
        let tag = commit::snapshot_tag(project, env, now).replacen(":snapshot-", ":frozen-", 1);
        let done = commit::commit(
            store,
            &c,
            &CommitOptions {
                tag: Some(tag.clone()),
                message: opts.message.clone(),
                created_by: Some(format!("berth freeze {project}/{env}")),
                compression: opts.compression,
                ..CommitOptions::default()
            },
        )
        .map_err(Box::new)?;
        let mut request = SaveRequest::new(tag.clone());
        request.annotations.insert(SPEC_ANNOTATION.to_owned(), spec);
        requests.push(request);
        frozen.push(FrozenEnv { env: env.clone(), tag, manifest: done.manifest });
    }
    store.save_archive_file(&requests, ArchiveFormat::Oci, output).map_err(Box::new)?;
    Ok(frozen)
}

/// What `up --from` did.
#[derive(Debug, Clone, Default)]
pub struct UpFrom {
    pub project: String,
    pub actions: BTreeMap<String, Action>,
    /// Bind mounts left out: `env: SRC -> DEST`.
    pub skipped_binds: Vec<String>,
}

/// Loads the frozen archive at `path` into the store at `store_root` and
/// brings up every env in it.
pub fn up_from(store_root: &Path, path: &Path) -> Result<Vec<UpFrom>, FreezeError> {
    let store = Store::open(store_root)?;
    let lock = store.lock_exclusive()?;
    let file = std::fs::File::open(path).map_err(|source| FreezeError::Open { path: path.to_owned(), source })?;
    let loaded = store.load_archive(std::io::BufReader::new(file), &path.display().to_string()).map_err(Box::new)?;
    // Each image with a spec, by project.
    let mut projects: BTreeMap<String, Vec<(ContainerSpec, String)>> = BTreeMap::new();
    for image in &loaded.images {
        let Some(json) = image.annotations.get(SPEC_ANNOTATION) else { continue };
        let id = image.tags.first().cloned().unwrap_or_else(|| image.manifest.to_string());
        let spec = parse_spec(path, &id, json)?;
        projects.entry(spec.project.clone()).or_default().push((spec, id));
    }
    if projects.is_empty() {
        return Err(FreezeError::NotFrozen { path: path.to_owned() });
    }
    let mut out = Vec::new();
    for (project, mut envs) in projects {
        let mut result = UpFrom { project: project.clone(), ..UpFrom::default() };
        for (spec, _) in &mut envs {
            spec.volumes.retain(|v| match &v.source {
                VolumeSource::Bind(src) if !src.exists() => {
                    result.skipped_binds.push(format!("{}: {} -> {}", spec.env, src.display(), v.target));
                    false
                }
                _ => true,
            });
        }
        // A network half-made (nft missing, say) goes again, as in `up`.
        let netns = up::project_netns(&store, &project, envs.iter().map(|(s, _)| s))
            .map_err(|e| Box::new(up::release_netns_if_unused(&store, &lock, &project, e)))?;
        let existing = actual::project_state(&store, &project, false)?;
        let peers: Vec<String> = envs.iter().map(|(s, _)| s.env.clone()).collect();
        let deps = |env: &str| {
            let spec = envs.iter().find(|(s, _)| s.env == env).map(|(s, _)| s);
            spec.map(|s| s.depends_on.iter().filter(|d| peers.contains(d)).cloned().collect()).unwrap_or_default()
        };
        for env in up::start_order(&peers, &deps) {
            let (spec, image) = envs.iter().find(|(s, _)| s.env == env).expect("every ordered env is in the archive");
            let current = existing.iter().find(|c| c.env == env);
            let waited_for = envs.iter().any(|(s, _)| s.depends_on.contains(&env));
            let action = up::reconcile_env(
                &store,
                &peers,
                spec,
                image,
                &netns,
                current,
                up::Reconcile { waited_for, ..Default::default() },
            )
            .map_err(Box::new)?;
            result.actions.insert(env, action);
        }
        out.push(result);
    }
    Ok(out)
}

/// The env config `json` that image `image` of the archive `path` carries.
fn parse_spec(path: &Path, image: &str, json: &str) -> Result<ContainerSpec, FreezeError> {
    serde_json::from_str(json).map_err(|source| FreezeError::BadSpec {
        path: path.to_owned(),
        image: image.to_owned(),
        source,
    })
}

/// The projects whose envs the frozen archive at `path` holds, read
/// (every blob checked) without loading anything into a store.
pub fn archive_projects(path: &Path) -> Result<Vec<String>, FreezeError> {
    let contents = crate::oci::archive::read_archive(path)
        .map_err(|source| FreezeError::Read { path: path.to_owned(), source: Box::new(source) })?;
    let mut projects = std::collections::BTreeSet::new();
    for image in &contents.images {
        let Some(json) = image.annotation(SPEC_ANNOTATION) else { continue };
        let id = image.names.first().cloned().unwrap_or_else(|| image.manifest_digest.to_string());
        projects.insert(parse_spec(path, &id, json)?.project);
    }
    if projects.is_empty() {
        return Err(FreezeError::NotFrozenDown { path: path.to_owned() });
    }
    Ok(projects.into_iter().collect())
}

/// `berth down --from FILE.tar`: takes down every project of the frozen
/// archive at `path` (see [`archive_projects`]) in the store at
/// `store_root`, as [`up::down`] does; a project the store has nothing of
/// is an error. Returns the containers removed, per project.
pub fn down_from(store_root: &Path, path: &Path, volumes: bool) -> Result<Vec<(String, Vec<String>)>, FreezeError> {
    let projects = archive_projects(path)?;
    up::down(store_root, &projects, volumes, IfUnknown::Fail).map_err(|e| FreezeError::Up(Box::new(e)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_spec_survives_its_annotation() {
        let text = "project = \"p\"\n[env.a]\nimage = \"scratch\"\ncmd = [\"x\"]\nports = [\"127.0.0.1:8080:80\"]\n\
                    user = \"1000:1000\"\nlimits = { memory = \"256MiB\", cpus = 0.5, pids = 10 }\n\
                    volumes = [\"data:/data\"]\nrestart = \"on-failure:3\"\n\
                    health = { cmd = [\"true\"], interval = \"1s\" }\nenv = { A = \"b\" }\n";
        let spec = crate::resolve::resolve_text(text).specs["a"].clone();
        let json = serde_json::to_string(&spec).unwrap();
        let back: crate::resolve::ContainerSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(back.config_hash(), spec.config_hash());
    }
}
