//! Planning a whole project: read the manifest and its lock, resolve, and
//! ask the store (read-only, and only if it exists) what it already has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{Plan, containers, plan};
use crate::manifest::{self, LOCK_FILE, Lock, Manifest, ManifestError};
use crate::resolve::{ResolveError, resolve_with};
use crate::store::{Store, StoreError};

/// Why a project could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: {source}", manifest.display())]
    Resolve { manifest: PathBuf, source: Box<ResolveError> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Containers(Box<crate::runtime::container::ContainerError>),
    #[error(transparent)]
    Defaults(#[from] crate::runtime::defaults::DefaultsError),
}

/// Plans the manifest at `manifest_path` against the store at `store_root`
/// (with `reset_drift`, containers whose files drifted are recreated).
/// Reads only: a store that does not exist yet counts as empty and is not
/// created.
pub fn plan_project(manifest_path: &Path, store_root: &Path, reset_drift: bool) -> Result<(Manifest, Plan), PlanError> {
    let manifest = manifest::load(manifest_path)?;
    let lock = Lock::read(&manifest.dir.join(LOCK_FILE))?;
    let store = Store::open_existing(store_root)?;
    let _shared = store.as_ref().map(Store::lock_shared).transpose()?;
    // The images `build` Dockerfiles start FROM, as the store has them (as
    // `up` finds them once it has made them there).
    let images = |r: &crate::oci::ImageRef, pinned: Option<&crate::oci::Digest>| {
        store.as_ref().and_then(|s| crate::resolve::build_base::in_store(s, r, pinned))
    };
    let mut resolution = resolve_with(&manifest, &lock, &images)
        .map_err(|source| PlanError::Resolve { manifest: manifest_path.to_owned(), source: Box::new(source) })?;
    resolution.apply_store_defaults(&manifest, &crate::runtime::defaults::RunDefaults::read(store_root)?);
    let mut cached = HashSet::new();
    let mut existing = Vec::new();
    if let Some(store) = &store {
        for index in resolution.graph.topological() {
            let key = resolution.graph.node(index).key;
            if store.cache_get(&key)?.is_some() {
                cached.insert(key);
            }
        }
        existing = super::actual::project_state(store, &manifest.project, true)
            .map_err(|e| PlanError::Containers(Box::new(e)))?
            .iter()
            .map(containers::Existing::from)
            .collect();
    }
    let mut plan = plan(&manifest.project, &resolution, &|key| cached.contains(key));
    provisional(&mut plan, &resolution);
    // An env runs if it or its built image has a command.
    let runs = |spec: &crate::resolve::ContainerSpec| {
        let tag = crate::build::image::tag_for(&spec.project, &spec.env);
        let built = store.as_ref().and_then(|s| s.resolve_image(&tag).ok());
        spec.cmd.is_some()
            || spec.entrypoint.is_some()
            || dockerfile_command(&manifest, &resolution, &spec.env) == Some(true)
            || built.is_some_and(|i| crate::build::image::has_command(&i.config))
    };
    let built = |env: &str| {
        let tag = crate::build::image::tag_for(&manifest.project, env);
        store.as_ref().and_then(|s| s.resolve_image(&tag).ok()).map(|i| i.manifest_digest)
    };
    plan.containers = containers::container_actions(&resolution.specs, &existing, &runs, &built, reset_drift);
    if let Some(why) = crate::runtime::cgroup::unavailable() {
        for c in &mut plan.containers {
            let running =
                !matches!(c.action, containers::ContainerAction::Remove | containers::ContainerAction::ImageOnly);
            if let Some(limits) = resolution.specs.get(&c.env).and_then(|s| named_limits(&s.limits))
                && running
            {
                c.limits_unavailable = Some(format!("{limits} cannot be applied: {why}"));
            }
        }
    }
    Ok((manifest, plan))
}

/// Whether the Dockerfile env `env` is built on (its own `build`, or its
/// `from` ancestor's) gives its image a command, before anything is built.
fn dockerfile_command(manifest: &Manifest, resolution: &crate::resolve::Resolution, env: &str) -> Option<bool> {
    let mut at = manifest.envs.get(env)?;
    loop {
        if let Some(b) = resolution.builds.get(&at.name) {
            return b.has_command;
        }
        match &at.base {
            crate::manifest::Base::Env(parent) => at = manifest.envs.get(parent)?,
            _ => return None,
        }
    }
}

/// Says why the nodes of a `build` Dockerfile whose FROM image the store
/// does not have yet are to build: their keys are provisional until `up`
/// has made the image and knows its digest and config.
fn provisional(plan: &mut Plan, resolution: &crate::resolve::Resolution) {
    for b in resolution.builds.values().filter(|b| !b.missing.is_empty()) {
        let why = format!(
            "the image {} it starts FROM is not in the store yet: `up` and `build` pull it first, and the keys are provisional until then",
            b.missing.join(", ")
        );
        // The Dockerfile's nodes (a `COPY --from` is keyed by the stage it
        // reads) and, parents first, every node above them.
        let mut marked: HashSet<crate::resolve::CacheKey> = b.nodes.iter().copied().collect();
        for n in &mut plan.nodes {
            if !marked.contains(&n.key) && !n.parent.is_some_and(|p| marked.contains(&p)) {
                continue;
            }
            marked.insert(n.key);
            if let super::NodeAction::Build(reason) = &mut n.action {
                *reason = why.clone();
            }
        }
    }
}

/// An env's limits as berth.toml writes them (`memory 256.0MiB, pids 10`),
/// or `None` when it has none.
fn named_limits(limits: &crate::manifest::Limits) -> Option<String> {
    let mut set = Vec::new();
    if let Some(m) = limits.memory {
        set.push(format!("memory {m}"));
    }
    if let Some(c) = limits.cpus {
        set.push(format!("cpus {c}"));
    }
    if let Some(p) = limits.pids {
        set.push(format!("pids {p}"));
    }
    (!set.is_empty()).then(|| set.join(", "))
}
