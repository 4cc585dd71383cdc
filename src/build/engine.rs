//! Executing a layer graph: every node an env needs, parents before
//! children, independent nodes of one depth side by side (at most `jobs` at
//! a time). A node whose cache key the store has is not built. Each built
//! node's layers go into the store and its cache entry is written last, so
//! an interrupted build leaves no entry that points at nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;

use super::base::{self, BaseError};
use super::copy::{self, CopyError};
use super::from_dockerfile::dockerfile_bases;
use super::image::{self, BuiltImage, Part};
use super::layer::{self, LayerError};
use super::packages::{self, Manager};
use super::step::{self, StepCommand, StepError};
use crate::manifest::{Lock, Manifest};
use crate::oci::Digest;
use crate::resolve::{CacheKey, Resolution, Step};
use crate::runtime::process::{InitExe, ProcessError};
use crate::store::{CacheEntry, ImageError, LayerRecord, Store, StoreError};

/// What `berth build` asked for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Envs to build; all when empty.
    pub envs: Vec<String>,
    /// Install exactly the versions in `berth.lock`; fail if one is missing.
    pub locked: bool,
    /// Build every node, even those the store has.
    pub no_cache: bool,
    /// Install packages afresh (ignoring cached package nodes and the
    /// lock's pins) to learn today's versions: `berth lock`.
    pub refresh_packages: bool,
    /// mtimes in the layers berth writes are clamped to this.
    pub epoch: u64,
    /// Nodes built at once.
    pub jobs: usize,
    /// How the layers of copy and run steps are compressed (gzip or zstd);
    /// bases keep gzip, and cached layers are reused as they are.
    pub compression: crate::oci::Compression,
}

/// What happened to one node, for progress output.
#[derive(Debug, Clone)]
pub enum Event {
    Cached { key: CacheKey, step: Step },
    Started { key: CacheKey, step: Step },
    Built { key: CacheKey, step: Step, took: Duration, bytes: u64 },
    Failed { key: CacheKey, step: Step },
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no env named {0:?} in the manifest")]
    UnknownEnv(String),
    #[error("env \"{env}\": {source}")]
    Base { env: String, source: Box<BaseError> },
    #[error("env \"{env}\": {source}")]
    Step { env: String, source: Box<StepError> },
    #[error("env \"{env}\": {source}")]
    Copy { env: String, source: Box<CopyError> },
    #[error("env \"{env}\": {source}")]
    Layer { env: String, source: Box<LayerError> },
    #[error("env \"{env}\": no package manager (apt, apk, dnf, microdnf) in its base to install {packages}")]
    NoPackageManager { env: String, packages: String },
    #[error(
        "env \"{env}\": --locked, but berth.lock has no version for {missing}; run `berth lock` (or build without --locked)"
    )]
    NotLocked { env: String, missing: String },
    #[error("env \"{env}\": {source}")]
    Dockerfile { env: String, source: Box<super::dockerfile::DockerBuildError> },
    #[error(
        "env \"{env}\": the Dockerfile build made no layer for node {key}, which the plan has; the Dockerfile or an image it starts FROM changed during the build: run it again"
    )]
    DockerfileDisagrees { env: String, key: CacheKey },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] Box<ImageError>),
    #[error("cannot start build containers: {0}")]
    Init(#[from] ProcessError),
    #[error("cannot make a build directory under {}: {source}", path.display())]
    Scratch { path: PathBuf, source: std::io::Error },
}

/// What a build did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub built: usize,
    pub cached: usize,
    pub images: BTreeMap<String, BuiltImage>,
}

/// Builds the envs of `manifest` resolved as `resolution` into `store`,
/// recording package versions and base digests in `lock`. The caller holds
/// the store's exclusive lock.
pub fn build(
    store: &Store,
    manifest: &Manifest,
    resolution: &Resolution,
    lock: &mut Lock,
    opts: &BuildOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Outcome, BuildError> {
    let graph = &resolution.graph;
    let envs: Vec<String> =
        if opts.envs.is_empty() { manifest.envs.keys().cloned().collect() } else { opts.envs.clone() };
    for e in &envs {
        if !manifest.envs.contains_key(e) {
            return Err(BuildError::UnknownEnv(e.clone()));
        }
    }
    // The nodes needed, grouped by depth: a node depends only on its parent.
    let mut needed: HashSet<NodeIndex> = HashSet::new();
    for e in &envs {
        needed.extend(graph.chain(e));
    }
    let mut waves: BTreeMap<usize, Vec<NodeIndex>> = BTreeMap::new();
    for i in graph.topological() {
        if needed.contains(&i) {
            waves.entry(graph.chain_from(i).len()).or_default().push(i);
        }
    }
    let init = InitExe::current()?;
    let needed_keys: HashSet<CacheKey> = needed.iter().map(|i| graph.node(*i).key).collect();
    let dockerfiles = dockerfile_bases(store, resolution, lock, &needed_keys, opts, progress)?;
    let entries: Mutex<HashMap<CacheKey, CacheEntry>> = Mutex::new(dockerfiles.entries.clone());
    let versions: Mutex<Vec<(String, BTreeMap<String, String>)>> = Mutex::new(Vec::new());
    let bases: Mutex<Vec<(String, Digest)>> = Mutex::new(Vec::new());
    let counts = Mutex::new((dockerfiles.built, dockerfiles.cached));
    let ctx = Ctx { store, manifest, opts, init: &init, lock, entries: &entries, versions: &versions, bases: &bases };
    for wave in waves.values() {
        for chunk in wave.chunks(opts.jobs.max(1)) {
            let results: Vec<Result<(), BuildError>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let ctx = &ctx;
                        let counts = &counts;
                        let dockerfiles = &dockerfiles;
                        s.spawn(move || {
                            let node = graph.node(i);
                            if dockerfiles.entries.contains_key(&node.key) {
                                return Ok(()); // built (or found) by the Dockerfile's build
                            }
                            // `berth lock` installs packages and resolves registry tags afresh.
                            let refresh = matches!(node.step, Step::Packages { .. }) || ctx.is_registry_base(graph, i);
                            let fresh = opts.no_cache || (opts.refresh_packages && refresh);
                            let cached = if fresh { None } else { store.cache_get(&node.key)? };
                            if let Some(entry) = cached {
                                store.cache_touch(&node.key)?; // the last use, for gc --keep-storage
                                progress(Event::Cached { key: node.key, step: node.step.clone() });
                                lock_mut(ctx.entries).insert(node.key, entry);
                                lock_mut(counts).1 += 1;
                                return Ok(());
                            }
                            progress(Event::Started { key: node.key, step: node.step.clone() });
                            let start = Instant::now();
                            match ctx.node(graph, i) {
                                Ok(entry) => {
                                    let bytes = entry.layers.iter().map(|l| l.size).sum();
                                    store.cache_put(&node.key, &entry)?;
                                    lock_mut(ctx.entries).insert(node.key, entry);
                                    lock_mut(counts).0 += 1;
                                    let took = start.elapsed();
                                    progress(Event::Built { key: node.key, step: node.step.clone(), took, bytes });
                                    Ok(())
                                }
                                Err(e) => {
                                    progress(Event::Failed { key: node.key, step: node.step.clone() });
                                    Err(e)
                                }
                            }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            });
            for r in results {
                r?;
            }
        }
    }
    // The lock: versions of what was installed, digests of image bases.
    let mut lock_out = lock.clone();
    for (env, found) in lock_mut(&versions).drain(..) {
        lock_out.env.entry(env).or_default().packages.extend(found);
    }
    for (env, digest) in lock_mut(&bases).drain(..) {
        lock_out.env.entry(env).or_default().base = Some(digest);
    }
    for (env, b) in &resolution.builds {
        if dockerfiles.images.contains_key(&b.tip) {
            lock_out.env.entry(env.clone()).or_default().images = b.images.clone();
        }
    }
    lock_out.version = crate::manifest::lock::LOCK_VERSION;
    *lock = lock_out;

    let (built, cached) = *lock_mut(&counts);
    let mut outcome = Outcome { built, cached, images: BTreeMap::new() };
    let entries = lock_mut(&entries);
    let created = crate::store::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(opts.epoch));
    for env in &envs {
        let mut chain = graph.chain(env);
        // Over a Dockerfile, its image is the base: its config and history
        // as `berth build -t` writes them, its layers as one part.
        let over = chain.iter().rposition(|i| dockerfiles.images.contains_key(&graph.node(*i).key));
        let dockerfile_base = Step::Base { source: "Dockerfile".to_owned() };
        let mut parts: Vec<Part<'_>> = Vec::new();
        let base_config = match over {
            Some(at) => {
                let image = &dockerfiles.images[&graph.node(chain[at]).key];
                parts.push(Part { step: &dockerfile_base, layers: &image.layers });
                chain.drain(..=at);
                image.config.clone()
            }
            None => match &entries[&graph.node(chain[0]).key].config {
                Some(d) => serde_json::from_slice(&store.read_blob(d)?).unwrap_or_default(),
                None => oci_spec::image::ImageConfiguration::default(),
            },
        };
        parts.extend(
            chain.iter().map(|i| Part { step: &graph.node(*i).step, layers: &entries[&graph.node(*i).key].layers }),
        );
        let img = image::write(store, &resolution.specs[env], &manifest.file, &base_config, &parts, &created)?;
        outcome.images.insert(env.clone(), img);
    }
    Ok(outcome)
}

fn lock_mut<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every node build reads.
struct Ctx<'a> {
    store: &'a Store,
    manifest: &'a Manifest,
    opts: &'a BuildOptions,
    init: &'a InitExe,
    lock: &'a Lock,
    entries: &'a Mutex<HashMap<CacheKey, CacheEntry>>,
    versions: &'a Mutex<Vec<(String, BTreeMap<String, String>)>>,
    bases: &'a Mutex<Vec<(String, Digest)>>,
}

impl Ctx<'_> {
    /// The unpacked layers below node `i`, top first.
    fn lowers(&self, graph: &crate::resolve::LayerGraph, i: NodeIndex) -> Result<Vec<PathBuf>, BuildError> {
        let entries = lock_mut(self.entries);
        let mut dirs = Vec::new();
        for a in graph.chain_from(i) {
            if a == i {
                break;
            }
            for l in &entries[&graph.node(a).key].layers {
                dirs.push(self.store.unpacked_layer("the build", l).map_err(Box::new)?);
            }
        }
        dirs.reverse();
        Ok(super::distinct_lowers(dirs))
    }

    /// The environment of the base image under node `i` (its config's
    /// `Env`), which a build step sees as a Dockerfile's `RUN` sees the
    /// `FROM` image's. Part of the cache key already: the base's digest is.
    fn base_env(&self, graph: &crate::resolve::LayerGraph, i: NodeIndex) -> Result<Vec<String>, BuildError> {
        let root = graph.chain_from(i)[0];
        let config = lock_mut(self.entries).get(&graph.node(root).key).and_then(|e| e.config.clone());
        let Some(digest) = config else { return Ok(Vec::new()) };
        let config: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(&self.store.read_blob(&digest)?).unwrap_or_default();
        Ok(config.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default())
    }

    /// Whether node `i` is the base of an env whose `image` is a registry reference.
    fn is_registry_base(&self, graph: &crate::resolve::LayerGraph, i: NodeIndex) -> bool {
        use crate::manifest::{Base, ImageSource};
        matches!(graph.node(i).step, Step::Base { .. })
            && matches!(self.manifest.envs[&self.owner_env(graph, i)].base, Base::Image(ImageSource::Registry { .. }))
    }

    /// The env a node is reported under: the first that declares its step.
    fn owner_env(&self, graph: &crate::resolve::LayerGraph, i: NodeIndex) -> String {
        let node = graph.node(i);
        node.envs
            .iter()
            .find(|e| match (&node.step, &self.manifest.envs[*e].base) {
                (Step::Base { .. }, b) => !matches!(b, crate::manifest::Base::Env(_)),
                (Step::Packages { names, .. }, _) => {
                    let mut own = self.manifest.envs[*e].packages.clone();
                    own.sort();
                    own.dedup();
                    &own == names
                }
                _ => true,
            })
            .or(node.envs.first())
            .cloned()
            .unwrap_or_default()
    }

    fn scratch(&self) -> Result<tempfile::TempDir, BuildError> {
        let tmp = self.store.tmp_dir();
        tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp)
            .map_err(|source| BuildError::Scratch { path: tmp, source })
    }

    fn node(&self, graph: &crate::resolve::LayerGraph, i: NodeIndex) -> Result<CacheEntry, BuildError> {
        let env = self.owner_env(graph, i);
        let mut entry = CacheEntry::new(Vec::new(), std::time::SystemTime::now());
        match &graph.node(i).step {
            Step::Base { .. } => {
                let source = &self.manifest.envs[&env].base;
                // A registry base is pulled by its locked digest; --locked requires one.
                let locked = self.lock.env(&env).and_then(|l| l.base.as_ref());
                if self.is_registry_base(graph, i) && self.opts.locked && locked.is_none() {
                    return Err(BuildError::NotLocked { env, missing: "the base image digest".to_owned() });
                }
                let pin = match locked {
                    _ if self.opts.refresh_packages => base::RegistryPin::Refresh,
                    Some(digest) => base::RegistryPin::Digest(digest),
                    None => base::RegistryPin::Tag,
                };
                let img = base::materialise_pinned(self.store, &self.manifest.dir, source, self.opts.epoch, pin)
                    .map_err(|e| BuildError::Base { env: env.clone(), source: Box::new(e) })?;
                let config = crate::oci::image::canonical_json(&img.config).expect("a config always serialises");
                entry.config = Some(self.store.put_blob(&config)?);
                entry.layers = img.layers;
                if let Some(d) = img.digest {
                    for e in &graph.node(i).envs {
                        lock_mut(self.bases).push((e.clone(), d.clone()));
                    }
                }
            }
            Step::Packages { names, locked, env: seen } => {
                let lowers = self.lowers(graph, i)?;
                let manager = Manager::detect(&lowers)
                    .ok_or_else(|| BuildError::NoPackageManager { env: env.clone(), packages: names.join(" ") })?;
                let pins = if self.opts.locked { self.locked_versions(&env, names)? } else { locked.clone() };
                let script = format!(
                    "{}\necho '{MARK}'\n{}",
                    manager.install_script(names, &pins),
                    manager.version_query(names)
                );
                let shown = format!("{} install {}", manager.name(), names.join(" "));
                let base_env = match seen {
                    Some(vars) => vars.clone(),
                    None => self.base_env(graph, i)?,
                };
                let output =
                    self.run_step(&env, base_env, &lowers, &script, &shown, |layer| entry.layers.push(layer))?;
                let text = String::from_utf8_lossy(&output);
                let after = text.rsplit_once(MARK).map_or("", |(_, v)| v);
                lock_mut(self.versions).push((env.clone(), packages::parse_versions(after)));
            }
            Step::Copy { src, dest, .. } => {
                let copy = self.manifest.envs[&env]
                    .copy
                    .iter()
                    .find(|c| {
                        (c.src.display().to_string() == *src || (src == "." && c.src.as_os_str().is_empty()))
                            && c.dest == *dest
                    })
                    .cloned()
                    .expect("a copy node comes from a copy entry of its env");
                let lowers = self.lowers(graph, i)?;
                let owner = match &copy.owner {
                    Some(u) => {
                        let r = crate::runtime::spec::resolve_user_in_layers(&lowers, &u.to_string()).map_err(|e| {
                            BuildError::Step {
                                env: env.clone(),
                                source: Box::new(StepError::User { command: format!("copy {src}"), source: e }),
                            }
                        })?;
                        Some((r.uid, r.gid))
                    }
                    None => None,
                };
                let mut blob = self.store.blob_writer()?;
                let (_, digests) = copy::write_layer(
                    &self.manifest.dir,
                    &copy,
                    &lowers,
                    owner,
                    &mut blob,
                    self.opts.epoch,
                    self.opts.compression,
                )
                .map_err(|e| BuildError::Copy { env: env.clone(), source: Box::new(e) })?;
                let (digest, size) = blob.commit(Some(&digests.digest))?;
                let record =
                    LayerRecord { digest, diff_id: digests.diff_id, size, media_type: digests.media_type.to_owned() };
                self.store.unpacked_layer(&format!("env {env}"), &record).map_err(Box::new)?;
                entry.layers.push(record);
            }
            Step::Files { .. } | Step::Mkdir { .. } => {
                unreachable!("a berth.toml graph has no Dockerfile-only steps (build::dockerfile builds them)")
            }
            Step::Run { command, with } => {
                let lowers = self.lowers(graph, i)?;
                // Over a `build` base, the environment its target stage
                // ends with, which the step's key holds (`with.env`).
                let base_env = match &with.env {
                    Some(vars) => vars.clone(),
                    None => self.base_env(graph, i)?,
                };
                self.run_step(&env, base_env, &lowers, command, command, |layer| entry.layers.push(layer))?;
            }
        }
        Ok(entry)
    }

    /// Runs `script` in a build container over `lowers`, with the base
    /// image's environment `base_env`, and turns its upper dir into a layer
    /// (none when the step changed nothing).
    fn run_step(
        &self,
        env: &str,
        base_env: Vec<String>,
        lowers: &[PathBuf],
        script: &str,
        shown: &str,
        mut keep: impl FnMut(LayerRecord),
    ) -> Result<Vec<u8>, BuildError> {
        let scratch = self.scratch()?;
        let cmd = StepCommand {
            argv: vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()],
            shown,
            env: base_env,
            workdir: None,
            user: None,
            offline: false,
            mounts: Vec::new(),
        };
        let ran = step::run(lowers, scratch.path(), &cmd, self.init)
            .map_err(|e| BuildError::Step { env: env.to_owned(), source: Box::new(e) })?;
        let upper = scratch.path().join("upper");
        let opts = layer::LayerOptions {
            compression: self.opts.compression,
            exclude: ran.mount_points,
            ..layer::LayerOptions::build(self.opts.epoch)
        };
        let out = layer::layer_from_upper_with(self.store, &upper, lowers, &opts)
            .map_err(|e| BuildError::Layer { env: env.to_owned(), source: Box::new(e) })?;
        if !out.empty {
            keep(out.record);
        }
        Ok(ran.output)
    }

    fn locked_versions(&self, env: &str, names: &[String]) -> Result<BTreeMap<String, String>, BuildError> {
        let have = self.lock.env(env).map(|l| l.packages.clone()).unwrap_or_default();
        let missing: Vec<&str> = names.iter().filter(|n| !have.contains_key(*n)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(BuildError::NotLocked { env: env.to_owned(), missing: missing.join(", ") });
        }
        Ok(have)
    }
}

/// Separates a package step's install output from its version list.
const MARK: &str = "--- berth: installed versions ---";
