//! The builder: executes layer-graph nodes — base sources, packages, copy
//! and run steps — and turns each into a layer in the store. It never
//! decides *whether* to build; the plan does.

pub mod base;
pub mod commit;
pub mod copy;
pub mod dockerfile;
pub mod engine;
mod from_dockerfile;
pub mod image;
pub mod layer;
pub mod packages;
pub mod step;

use std::path::Path;

use crate::manifest::{self, LOCK_FILE, Lock, ManifestError};
use crate::resolve::{KnownImage, ResolveError, resolve_with};
use crate::store::{Store, StoreError};

pub use engine::{BuildError, BuildOptions, Event, Outcome};

/// `lowers` (top first) with each directory only at its topmost place. Two
/// steps can make byte-identical layers (a file copied twice), which are one
/// directory in the store, and overlayfs refuses a lower directory given
/// twice (ELOOP). Dropping the lower occurrence shows the same tree: the
/// upper one holds the same entries, whiteouts and opaque markers, above
/// everything the lower one could have shown or hidden.
pub(crate) fn distinct_lowers(lowers: Vec<std::path::PathBuf>) -> Vec<std::path::PathBuf> {
    let mut seen = std::collections::HashSet::new();
    lowers.into_iter().filter(|d| seen.insert(d.clone())).collect()
}

/// How a build finds the images `build` Dockerfiles start FROM: made in
/// the store first (the store's copy, else pulled; by the locked digest
/// when there is one; afresh for `berth lock`), then read from the store as
/// `plan` reads it ([`crate::resolve::build_base::in_store`]), so both
/// resolve the same graph. An image that cannot be made is left unknown
/// here: the Dockerfile's build then reports why, at its FROM line.
fn from_images<'a>(
    store: &'a Store,
    dir: &'a Path,
    opts: &'a BuildOptions,
) -> impl Fn(&crate::oci::ImageRef, Option<&crate::oci::Digest>) -> Option<KnownImage> + 'a {
    let made: std::sync::Mutex<std::collections::BTreeMap<String, Option<KnownImage>>> = Default::default();
    move |reference, pinned| {
        let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{reference}@{}", pinned.map(ToString::to_string).unwrap_or_default());
        made.entry(key)
            .or_insert_with(|| {
                let source =
                    manifest::Base::Image(manifest::ImageSource::Registry { reference: reference.to_string() });
                let pin = match pinned {
                    _ if opts.refresh_packages => base::RegistryPin::Refresh,
                    Some(d) => base::RegistryPin::Digest(d),
                    None => base::RegistryPin::Tag,
                };
                let got = base::materialise_pinned(store, dir, &source, opts.epoch, pin).or_else(|e| {
                    // `berth lock` of an image only the store has (imported, loaded).
                    if opts.refresh_packages { base::materialise(store, dir, &source, opts.epoch) } else { Err(e) }
                });
                let digest = got.ok()?.digest?;
                crate::resolve::build_base::in_store(store, reference, Some(&digest))
            })
            .clone()
    }
}

/// Why a project could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProjectBuildError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: {source}", manifest.display())]
    Resolve { manifest: std::path::PathBuf, source: Box<ResolveError> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cannot write {}: {source}", path.display())]
    WriteLock { path: std::path::PathBuf, source: std::io::Error },
}

/// Builds the project whose manifest is `manifest_path` into the store at
/// `store_root`, and rewrites `berth.lock` when what was installed changed
/// it. Holds the store's exclusive lock while building.
pub fn build_project(
    manifest_path: &Path,
    store_root: &Path,
    opts: &BuildOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<(Outcome, bool), ProjectBuildError> {
    let store = Store::open(store_root)?;
    let _exclusive = store.lock_exclusive()?;
    let built = build_locked(manifest_path, &store, opts, progress)?;
    Ok((built.outcome, built.lock_changed))
}

/// What [`build_locked`] did, with the manifest and the resolution (under
/// the lock as it now is) that the caller goes on with.
pub struct Built {
    pub outcome: Outcome,
    pub lock_changed: bool,
    pub manifest: manifest::Manifest,
    pub resolution: crate::resolve::Resolution,
}

/// [`build_project`] for a caller that already holds the store's exclusive
/// lock (`berth up` keeps it from the build to the last container).
pub fn build_locked(
    manifest_path: &Path,
    store: &Store,
    opts: &BuildOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Built, ProjectBuildError> {
    let manifest = manifest::load(manifest_path)?;
    let lock_path = manifest.dir.join(LOCK_FILE);
    let on_disk = Lock::read(&lock_path)?;
    let mut lock = if opts.refresh_packages { Lock::default() } else { on_disk.clone() };
    let dir = manifest.dir.clone();
    let images = from_images(store, &dir, opts);
    let resolution = resolve_with(&manifest, &lock, &images).map_err(|source| ProjectBuildError::Resolve {
        manifest: manifest_path.to_owned(),
        source: Box::new(source),
    })?;
    let outcome = engine::build(store, &manifest, &resolution, &mut lock, opts, progress)?;
    let changed = lock.env != on_disk.env;
    let mut resolution = resolution;
    if changed {
        // The lock pins what was just installed, which changes the keys of
        // the package nodes and all below them; the layers are the same, so
        // the cache learns the new keys too and the next build does nothing.
        let pinned = resolve_with(&manifest, &lock, &images).map_err(|source| ProjectBuildError::Resolve {
            manifest: manifest_path.to_owned(),
            source: Box::new(source),
        })?;
        for env in manifest.envs.keys() {
            let old = resolution.graph.chain(env);
            let new = pinned.graph.chain(env);
            for (o, n) in old.iter().zip(&new) {
                let (ok, nk) = (resolution.graph.node(*o).key, pinned.graph.node(*n).key);
                if ok != nk
                    && let Some(entry) = store.cache_get(&ok)?
                {
                    store.cache_put(&nk, &entry)?;
                }
            }
        }
        crate::store::atomic_write(&manifest.dir, &lock_path, lock.to_text().as_bytes()).map_err(|e| {
            ProjectBuildError::WriteLock { path: lock_path.clone(), source: std::io::Error::other(e.to_string()) }
        })?;
        resolution = pinned;
    }
    Ok(Built { outcome, lock_changed: changed, manifest, resolution })
}
