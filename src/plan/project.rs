//! Planning a whole project: read the manifest and its lock, resolve, and
//! ask the store (read-only, and only if it exists) what it already has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{Plan, plan};
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
    if let Some(store) = Store::open_existing(store_root)? {
        let _shared = store.lock_shared()?;
        for index in resolution.graph.topological() {
            let key = resolution.graph.node(index).key;
            if store.cache_get(&key)?.is_some() {
                cached.insert(key);
            }
        }
    }
    let plan = plan(&manifest.project, &resolution, &|key| cached.contains(key));
    Ok((manifest, plan))
}
