//! Planning a whole project: read the manifest and its lock, resolve, and
//! ask the store (read-only, and only if it exists) what it already has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{Plan, containers, plan, up};
use crate::manifest::{self, LOCK_FILE, Lock, Manifest, ManifestError};
use crate::resolve::{ResolveError, resolve};
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
}

/// Plans the manifest at `manifest_path` against the store at `store_root`.
/// Reads only: a store that does not exist yet counts as empty and is not
/// created.
pub fn plan_project(manifest_path: &Path, store_root: &Path) -> Result<(Manifest, Plan), PlanError> {
    let manifest = manifest::load(manifest_path)?;
    let lock = Lock::read(&manifest.dir.join(LOCK_FILE))?;
    let resolution = resolve(&manifest, &lock)
        .map_err(|source| PlanError::Resolve { manifest: manifest_path.to_owned(), source: Box::new(source) })?;
    let mut cached = HashSet::new();
    let mut existing = Vec::new();
    let store = Store::open_existing(store_root)?;
    if let Some(store) = &store {
        let _shared = store.lock_shared()?;
        for index in resolution.graph.topological() {
            let key = resolution.graph.node(index).key;
            if store.cache_get(&key)?.is_some() {
                cached.insert(key);
            }
        }
        existing = current_containers(store, &manifest.project)?;
    }
    let mut plan = plan(&manifest.project, &resolution, &|key| cached.contains(key));
    // An env runs if it or its built image has a command.
    let runs = |spec: &crate::resolve::ContainerSpec| {
        let tag = crate::build::image::tag_for(&spec.project, &spec.env);
        let built = store.as_ref().and_then(|s| s.resolve_image(&tag).ok());
        spec.cmd.is_some()
            || spec.entrypoint.is_some()
            || built.is_some_and(|i| crate::build::image::has_command(&i.config))
    };
    plan.containers = containers::container_actions(&resolution.specs, &existing, &runs);
    Ok((manifest, plan))
}

/// The project's containers as they are: the input of the container plan.
fn current_containers(store: &Store, project: &str) -> Result<Vec<containers::Existing>, PlanError> {
    let all =
        crate::runtime::container::list(&store.containers_dir()).map_err(|e| PlanError::Containers(Box::new(e)))?;
    let mut out = Vec::new();
    for c in all.iter().filter(|c| c.record.labels.get(up::PROJECT_LABEL).map(String::as_str) == Some(project)) {
        let state = crate::runtime::state::read_state(&c.paths.dir).ok();
        let observed = state.as_ref().map(crate::runtime::state::observed_status);
        let status = observed.as_ref().map_or("created".to_owned(), |o| o.status.as_str().to_owned());
        let spec =
            std::fs::read(c.paths.dir.join(up::ENV_SPEC_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        out.push(containers::Existing {
            env: c.record.labels.get(up::ENV_LABEL).cloned().unwrap_or_default(),
            config_hash: c.record.labels.get(up::CONFIG_LABEL).cloned().unwrap_or_default(),
            running: status == "running",
            status,
            spec,
        });
    }
    Ok(out)
}
