//! `build` bases: an env whose base is a Dockerfile's target stage.
//!
//! The Dockerfile is expanded (build args, target) and turned into nodes by
//! [`super::dockerfile::resolve_dockerfile`] — the same code `berth build
//! -t` runs — and those nodes are added to the project's graph under the
//! env's name, so `plan` lists them and a Dockerfile built by `berth build
//! -t` and the same one named by `build` share every cache entry. The
//! env's own `packages`, `copy` and `run` hang under the target stage's
//! last node.
//!
//! The images the Dockerfile starts `FROM` are found through an
//! [`ImageLookup`]: their config is what the Dockerfile's words see (ENV,
//! WORKDIR, SHELL) and their manifest digest is part of the base node's
//! key. `plan` looks in the store ([`in_store`]); `build` and `up` first
//! make each image there (pulled if need be) and then look in the store the
//! same way, so both resolve the same graph from the same store. An image
//! the store does not have yet (a `plan` before the first `up`) gives
//! provisional keys: the reference and its locked digest, if any, as an
//! unlocked berth.toml registry base has; `plan` says so.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use petgraph::graph::NodeIndex;
use serde_json::Value;

use super::dockerfile::{ImageBase, resolve_dockerfile};
use super::graph::LayerGraph;
use super::{CacheKey, ResolveError};
use crate::dockerfile::expand::{Base as FromBase, BaseConfig, DEFAULT_PATH, Options};
use crate::dockerfile::instruction::Instruction;
use crate::manifest::{BuildSource, EnvLock};
use crate::oci::{Digest, ImageRef};
use crate::store::Store;

/// What the store has of an image a Dockerfile starts FROM.
#[derive(Debug, Clone)]
pub struct KnownImage {
    /// Its manifest digest.
    pub digest: Digest,
    /// Its config JSON, whole (Docker's `Shell` is not in oci-spec's type).
    pub config: Value,
}

/// Finds the image `reference`, exactly `pinned` when the lock pins it.
pub type ImageLookup<'a> = dyn Fn(&ImageRef, Option<&Digest>) -> Option<KnownImage> + 'a;

/// The store's copy of `reference`, found as a registry base is
/// (`build::base`): the pinned manifest when the store has it, else the
/// image tagged with the reference's name. Reads only.
pub fn in_store(store: &Store, reference: &ImageRef, pinned: Option<&Digest>) -> Option<KnownImage> {
    let name = match pinned {
        Some(d) => store.has_blob(d).then(|| d.to_string())?,
        None => reference.familiar_tag(),
    };
    let image = store.resolve_image(&name).ok()?;
    let config_digest = Digest::try_from(image.manifest.config().digest()).ok()?;
    let config = store
        .read_blob(&config_digest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::to_value(&image.config).unwrap_or(Value::Null));
    Some(KnownImage { digest: image.manifest_digest, config })
}

/// The Dockerfile part of a `build` env, as resolved.
#[derive(Debug, Clone)]
pub struct BuildBase {
    /// The context directory, absolute.
    pub context: PathBuf,
    /// The Dockerfile, absolute.
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
    /// The target stage's last node: what the env's own steps stack on.
    pub tip: CacheKey,
    /// Every node the Dockerfile made (the stages the target needs).
    pub nodes: Vec<CacheKey>,
    /// Each image it starts FROM (the full reference) → the digest found.
    pub images: BTreeMap<String, Digest>,
    /// The FROM images the store does not have: their keys are provisional.
    pub missing: Vec<String>,
    /// The environment at the end of the target stage (`KEY=VALUE`): what
    /// the env's own `run` and `packages` steps see, as a RUN after the
    /// stage's last instruction would.
    pub env: Vec<String>,
    /// Whether that environment differs from the one a berth.toml step on
    /// the Dockerfile's first image would see, so it goes into their keys.
    pub env_in_key: bool,
    /// Whether the target stage's image says what to run (a CMD or
    /// ENTRYPOINT, its own or its FROM image's); `None` while that image is
    /// not in the store.
    pub has_command: Option<bool>,
}

/// Adds the nodes of `source` (the `build` of env `name`, in the project
/// `dir`) to `graph`; returns the target stage's tip and what was resolved.
pub(super) fn add_build(
    graph: &mut LayerGraph,
    dir: &std::path::Path,
    name: &str,
    source: &BuildSource,
    lock: Option<&EnvLock>,
    images: &ImageLookup<'_>,
) -> Result<(NodeIndex, BuildBase), ResolveError> {
    let failed = |e: crate::dockerfile::DockerfileError| ResolveError::Dockerfile { env: name.to_owned(), source: e };
    let context = source.context_dir(dir);
    let path = source.dockerfile_path(dir);
    let file = crate::dockerfile::load(&path).map_err(failed)?;
    let ignore = crate::dockerfile::ignore::load(&path, &context).map_err(failed)?;
    let pinned = |r: &ImageRef| lock.and_then(|l| l.images.get(&r.to_string())).cloned();
    let found: RefCell<BTreeMap<String, Option<KnownImage>>> = RefCell::new(BTreeMap::new());
    let find = |r: &ImageRef| -> Option<KnownImage> {
        found.borrow_mut().entry(r.to_string()).or_insert_with(|| images(r, pinned(r).as_ref())).clone()
    };
    let base_config = |r: &ImageRef| -> BaseConfig {
        let Some(known) = find(r) else { return BaseConfig::default() };
        BaseConfig::from_image_config(&known.config)
    };
    let options = Options {
        build_args: source.args.clone(),
        target: source.target.clone(),
        platform: crate::dockerfile::env::Platform::host(),
        base_config: &base_config,
    };
    let expanded = crate::dockerfile::expand(&file, &options).map_err(failed)?;
    let image_base = |n: usize| -> ImageBase {
        let FromBase::Image(r) = &expanded.stages[n].base else { return ImageBase::default() };
        let mut key_fields = vec![b"registry".to_vec(), r.to_string().into_bytes()];
        match find(r) {
            Some(known) => {
                let c = &known.config["config"];
                key_fields.push(known.digest.to_string().into_bytes());
                ImageBase {
                    source: r.to_string(),
                    key_fields,
                    env: c["Env"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    user: c["User"].as_str().unwrap_or_default().to_owned(),
                }
            }
            None => {
                key_fields.extend(pinned(r).map(|d| d.to_string().into_bytes()));
                ImageBase { source: r.to_string(), key_fields, ..ImageBase::default() }
            }
        }
    };
    let docker = resolve_dockerfile(&expanded, &context, &ignore, &path, &image_base).map_err(failed)?;

    // The Dockerfile's nodes, parents first, into the project's graph.
    let mut mapped: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut nodes = Vec::new();
    for i in docker.graph.topological() {
        let node = docker.graph.node(i);
        let parent = docker.graph.parent(i).map(|p| mapped[&p]);
        mapped.insert(i, graph.add(parent, node.key, node.step.clone(), name));
        nodes.push(node.key);
    }
    let target = expanded.stages.iter().position(|s| s.index == expanded.target).unwrap_or(expanded.stages.len() - 1);
    let stage = &docker.stages[target];
    let tip = mapped[&stage.tip];
    let env: Vec<String> = expanded.stages[target].image_env.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut default_env = stage.root_env.clone();
    if !default_env.iter().any(|kv| kv.starts_with("PATH=")) {
        default_env.push(format!("PATH={DEFAULT_PATH}"));
    }
    let has_command = has_command(&expanded, target, &find);
    let mut used = BTreeMap::new();
    let mut missing = Vec::new();
    for (reference, known) in found.into_inner() {
        match known {
            Some(k) => drop(used.insert(reference, k.digest)),
            None => missing.push(reference),
        }
    }
    let build = BuildBase {
        context,
        dockerfile: path,
        target: source.target.clone(),
        args: source.args.clone(),
        tip: graph.node(tip).key,
        nodes,
        images: used,
        missing,
        env_in_key: env != default_env,
        env,
        has_command,
    };
    Ok((tip, build))
}

/// Whether stage `target`'s image has a CMD or ENTRYPOINT: the config
/// instructions of its chain of stages laid over its first image's, as the
/// builder writes them (an ENTRYPOINT resets a CMD its stage did not set).
fn has_command(
    expanded: &crate::dockerfile::Expanded,
    target: usize,
    find: &dyn Fn(&ImageRef) -> Option<KnownImage>,
) -> Option<bool> {
    let mut chain = vec![target];
    while let FromBase::Stage(i) = &expanded.stages[chain[chain.len() - 1]].base {
        chain.push(expanded.stages.iter().position(|s| s.index == *i)?);
    }
    chain.reverse();
    let set = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    let (mut cmd, mut entrypoint) = match &expanded.stages[chain[0]].base {
        FromBase::Image(r) => {
            let known = find(r)?;
            (set(&known.config["config"]["Cmd"]), set(&known.config["config"]["Entrypoint"]))
        }
        _ => (false, false),
    };
    for n in chain {
        let mut cmd_here = false;
        for step in &expanded.stages[n].steps {
            match &step.instruction {
                Instruction::Cmd(c) => {
                    cmd = !c.argv(&step.shell).is_empty();
                    cmd_here = true;
                }
                Instruction::Entrypoint(e) => {
                    entrypoint = !e.argv(&step.shell).is_empty();
                    if !cmd_here {
                        cmd = false;
                    }
                }
                _ => {}
            }
        }
    }
    Some(cmd || entrypoint)
}

#[cfg(test)]
#[path = "build_base_tests.rs"]
mod tests;
