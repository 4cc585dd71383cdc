//! The Dockerfile part of berth.toml envs with `build`: built by the
//! Dockerfile builder (`build::dockerfile`, what `berth build -t` runs),
//! with the FROM images the resolver found, before the engine builds the
//! envs' own steps on top. Every node the resolver made for the Dockerfile
//! must then be in the cache: the builder and the resolver take the same
//! inputs, so they make the same keys, and a difference is an error rather
//! than a silent rebuild.

use std::collections::{HashMap, HashSet};

use super::dockerfile::{DockerRequest, build_dockerfile_locked};
use super::engine::{BuildError, BuildOptions, Event};
use crate::manifest::Lock;
use crate::resolve::{CacheKey, Resolution};
use crate::store::{CacheEntry, Image, Store};

/// What the Dockerfiles of the envs being built made.
#[derive(Default)]
pub(super) struct DockerfileParts {
    /// The cache entry of every Dockerfile node.
    pub entries: HashMap<CacheKey, CacheEntry>,
    /// The image written for each target stage, by the stage's last key.
    pub images: HashMap<CacheKey, Image>,
    pub built: usize,
    pub cached: usize,
}

/// Builds the Dockerfile of every `build` env whose target stage is among
/// the `needed` nodes (once per target). The caller holds the store's
/// exclusive lock.
pub(super) fn dockerfile_bases(
    store: &Store,
    resolution: &Resolution,
    lock: &Lock,
    needed: &HashSet<CacheKey>,
    opts: &BuildOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<DockerfileParts, BuildError> {
    let mut out = DockerfileParts::default();
    for (env, b) in &resolution.builds {
        if !needed.contains(&b.tip) || out.images.contains_key(&b.tip) {
            continue;
        }
        if opts.locked {
            let have = lock.env(env).map(|l| l.images.clone()).unwrap_or_default();
            let missing: Vec<&str> = b.images.keys().filter(|r| !have.contains_key(*r)).map(String::as_str).collect();
            if !missing.is_empty() {
                let missing = format!("the digest of {}", missing.join(", "));
                return Err(BuildError::NotLocked { env: env.clone(), missing });
            }
        }
        let req = DockerRequest {
            context: b.context.clone(),
            dockerfile: Some(b.dockerfile.clone()),
            tag: None,
            build_args: b.args.clone(),
            target: b.target.clone(),
            no_cache: opts.no_cache,
            pins: b.images.clone(),
            epoch: opts.epoch,
            compression: opts.compression,
        };
        let built = build_dockerfile_locked(store, &req, progress)
            .map_err(|e| BuildError::Dockerfile { env: env.clone(), source: Box::new(e) })?;
        out.built += built.built;
        out.cached += built.cached;
        for key in &b.nodes {
            match store.cache_get(key)? {
                Some(entry) => drop(out.entries.insert(*key, entry)),
                None => return Err(BuildError::DockerfileDisagrees { env: env.clone(), key: *key }),
            }
        }
        let image = store.resolve_image(&built.digest.to_string()).map_err(Box::new)?;
        out.images.insert(b.tip, image);
    }
    Ok(out)
}
