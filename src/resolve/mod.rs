//! The resolver: a checked [`Manifest`] (and its lock) in, a [`LayerGraph`]
//! and one [`ContainerSpec`] per env out. It reads input files to hash them
//! and runs nothing.
//!
//! # How the graph is made
//!
//! Each env expands to a chain of steps:
//!
//! ```text
//! base → packages (if any) → copy₁ … copyₙ → run₁ … runₘ
//! ```
//!
//! An env with `from = "parent"` has no base step of its own: its chain hangs
//! under the parent's last node. An env with `build` has a Dockerfile's
//! nodes instead of a base step ([`build_base`], keyed by [`dockerfile`] as
//! `berth build -t` keys them) and its chain hangs under the target stage's
//! last node. Envs are expanded in an order where parents come first
//! ([`Manifest::build_order`]).
//!
//! Every node has a cache key ([`key`]):
//!
//! ```text
//! key = blake3(parent key ‖ step kind ‖ canonical parameters ‖ input digest)
//! ```
//!
//! with each field length-prefixed. The parameters are what the step does
//! (package names and their locked versions, copy destination, mode and
//! owner, the run command); the input digest is what it reads (a base's
//! content or resolved digest, the hash of a copied tree — paths, modes,
//! symlink targets and contents, never mtimes; see [`tree`]). Nodes are
//! identified by key, so two envs with the same prefix of steps share those
//! nodes: a shared base is one node, built once. Changing one copied file
//! changes that copy node's key, hence the keys of every node below it, and
//! nothing else.
//!
//! The image config (env vars, workdir, user, cmd, …) makes no layer and is
//! not part of any key; it goes into the env's [`ContainerSpec`], with a
//! hash of the seccomp profile the env names (read here, like a copied
//! tree), so that the spec's hash changes when the profile's rules do.

mod base;
pub mod build_base;
pub mod dockerfile;
pub mod graph;
pub mod key;
pub mod spec;
pub mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use build_base::{BuildBase, ImageLookup, KnownImage};
pub use graph::{LayerGraph, Node, RunWith, Step};
pub use key::{CacheKey, KeyHasher};
pub use spec::ContainerSpec;

use crate::manifest::{Base, Lock, Manifest};

/// Why a manifest could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("env \"{env}\": cannot read the base image {}: {source}", path.display())]
    BaseInput { env: String, path: PathBuf, source: std::io::Error },
    #[error("env \"{env}\": base image {}: {why}", path.display())]
    BadBase { env: String, path: PathBuf, why: String },
    #[error("env \"{env}\": cannot hash copy source: {source}")]
    CopyInput { env: String, source: tree::TreeError },
    #[error("env \"{env}\": {source}")]
    SeccompProfile { env: String, source: spec::ProfileHashError },
    #[error("env \"{env}\": build: {source}")]
    Dockerfile { env: String, source: crate::dockerfile::DockerfileError },
}

/// What a manifest resolves to.
#[derive(Debug)]
pub struct Resolution {
    pub graph: LayerGraph,
    /// One spec per env, by env name.
    pub specs: BTreeMap<String, ContainerSpec>,
    /// The Dockerfile part of each env with `build`, by env name.
    pub builds: BTreeMap<String, BuildBase>,
}

impl Resolution {
    /// Gives every env that sets no `userns` the store's default
    /// (`STORE/config.toml`), so that the spec, its hash and `plan` show
    /// what the container will get.
    pub fn apply_store_defaults(&mut self, manifest: &Manifest, defaults: &crate::runtime::defaults::RunDefaults) {
        for (name, spec) in &mut self.specs {
            if let Some(env) = manifest.envs.get(name) {
                spec.userns = env.userns.unwrap_or(defaults.userns);
            }
        }
    }
}

/// Checks and resolves manifest text in a project dir `/p` with no lock,
/// for unit tests of what builds on a resolution.
#[cfg(test)]
pub(crate) fn resolve_text(text: &str) -> Resolution {
    let m = crate::manifest::parse(text, std::path::Path::new("berth.toml"), std::path::Path::new("/p")).unwrap();
    resolve(&m, &Lock::default()).unwrap()
}

/// Resolves `manifest` with the versions and digests in `lock`, knowing
/// no image a `build` Dockerfile starts FROM (their keys are provisional).
pub fn resolve(manifest: &Manifest, lock: &Lock) -> Result<Resolution, ResolveError> {
    resolve_with(manifest, lock, &|_, _| None)
}

/// Resolves `manifest` with the versions and digests in `lock`; `images`
/// finds the images `build` Dockerfiles start FROM ([`build_base`]).
pub fn resolve_with(manifest: &Manifest, lock: &Lock, images: &ImageLookup<'_>) -> Result<Resolution, ResolveError> {
    let mut graph = LayerGraph::default();
    let mut builds = BTreeMap::new();
    for name in manifest.build_order() {
        let env = &manifest.envs[name];
        let env_lock = lock.env(name);
        // What the env's own steps see when it differs from the base image's.
        let mut seen_env: Option<Vec<String>> = None;
        let mut at = match &env.base {
            Base::Env(parent) => graph.tips()[parent.as_str()],
            Base::Build(source) => {
                let (tip, build) = build_base::add_build(&mut graph, &manifest.dir, name, source, env_lock, images)?;
                seen_env = build.env_in_key.then(|| build.env.clone());
                builds.insert(name.to_owned(), build);
                tip
            }
            other => {
                let input = base::base_input(&manifest.dir, name, other, env_lock)?;
                let mut h = KeyHasher::new("base");
                for f in &input.fields {
                    h.field(f);
                }
                graph.add(None, h.finish(), Step::Base { source: input.source }, name)
            }
        };
        graph.mark_used(at, name);
        if !env.packages.is_empty() {
            let mut names = env.packages.clone();
            names.sort();
            names.dedup();
            let locked: BTreeMap<String, String> = env_lock.map(|l| l.packages.clone()).unwrap_or_default();
            let mut h = KeyHasher::new("packages");
            h.field(graph.node(at).key.as_bytes());
            for n in &names {
                h.field(n.as_bytes()).field(locked.get(n).map_or(&b""[..], |v| v.as_bytes()));
            }
            if let Some(vars) = &seen_env {
                h.field(b"env");
                for v in vars {
                    h.field(v.as_bytes());
                }
            }
            at = graph.add(Some(at), h.finish(), Step::Packages { names, locked, env: seen_env.clone() }, name);
        }
        for copy in &env.copy {
            let input = tree::hash_tree(&manifest.dir, &copy.src)
                .map_err(|source| ResolveError::CopyInput { env: name.to_owned(), source })?;
            let owner = copy.owner.as_ref().map(ToString::to_string);
            let mut h = KeyHasher::new("copy");
            h.field(graph.node(at).key.as_bytes())
                .field(copy.dest.as_bytes())
                .field(copy.mode.map(|m| format!("{m:o}")).unwrap_or_default().as_bytes())
                .field(owner.clone().unwrap_or_default().as_bytes())
                .field(&input.hash);
            let step = Step::Copy {
                src: if copy.src.as_os_str().is_empty() { ".".to_owned() } else { copy.src.display().to_string() },
                dest: copy.dest.clone(),
                mode: copy.mode,
                owner,
                files: input.files,
                bytes: input.bytes,
            };
            at = graph.add(Some(at), h.finish(), step, name);
        }
        for command in &env.run {
            let with = RunWith { env: seen_env.clone(), ..RunWith::default() };
            let mut h = KeyHasher::new("run");
            h.field(graph.node(at).key.as_bytes()).field(command.as_bytes());
            with.key_fields(&mut h);
            at = graph.add(Some(at), h.finish(), Step::Run { command: command.clone(), with }, name);
        }
        graph.set_tip(name, at);
    }
    let mut specs = BTreeMap::new();
    for env in manifest.envs.values() {
        let image = graph.node(graph.tips()[&env.name]).key;
        let spec = spec::container_spec(manifest, env, image)
            .map_err(|source| ResolveError::SeccompProfile { env: env.name.clone(), source })?;
        specs.insert(env.name.clone(), spec);
    }
    Ok(Resolution { graph, specs, builds })
}
