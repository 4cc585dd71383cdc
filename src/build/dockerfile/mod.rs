//! `berth build -t NAME:TAG CONTEXT`: building a Dockerfile into a named
//! image in the store, as `docker build` does.
//!
//! 1. Read the Dockerfile (`crate::dockerfile::load`) and the context's
//!    `.dockerignore`.
//! 2. Substitute it for the build args and target
//!    ([`crate::dockerfile::expand`]); each image a needed stage starts
//!    `FROM` is made a base on the way (the store's image of that name, else
//!    pulled), since its env, working directory and shell are what the
//!    stage's words see.
//! 3. Turn the stages into layer-graph nodes with cache keys
//!    ([`crate::resolve::dockerfile`]): keys as berth.toml's, so the two
//!    share the cache where they do the same step.
//! 4. Build the nodes the store has no cache entry for, level after level
//!    of the stages' dependency levels, the stages of one level side by
//!    side (`walk.rs`): bases as berth.toml's, `run` in a build container
//!    (`build::step`) with the RUN's argv, env, workdir, user and network,
//!    `copy` with berth.toml's copy writer, `files` and `mkdir` with
//!    [`files`].
//! 5. Write the target stage's image: its chain's layers, the config and
//!    history as Docker writes them ([`config`]), and tag it.
//!
//! The caller holds nothing; this takes the store's exclusive lock.

pub mod config;
pub mod files;
mod image;
mod inputs;
pub mod merged;
pub mod mounts;
mod node;
pub mod url;
mod walk;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use petgraph::graph::NodeIndex;
use serde_json::{Value, json};

use super::base::{self, BaseError, BaseImage, RegistryPin};
use super::copy::CopyError;
use super::engine::Event;
use super::layer::LayerError;
use super::step::StepError;
use crate::dockerfile::error::{DockerfileError, Located, Pos};
use crate::dockerfile::expand::{Base as FromBase, BaseConfig, Expanded, Options};
use crate::dockerfile::{self as df};
use crate::manifest::{Base, ImageSource};
use crate::oci::{Compression, Digest, ImageRef, TarWriteError};
use crate::resolve::CacheKey;
use crate::resolve::dockerfile::{DockerGraph, ImageBase, mount_stage, resolve_dockerfile_with};
use crate::runtime::process::{InitExe, ProcessError};
use crate::store::{CacheEntry, ImageError, Store, StoreError};

/// What `berth build -t NAME:TAG CONTEXT` asks for.
#[derive(Debug, Clone)]
pub struct DockerRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (`-f`); `CONTEXT/Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    /// `-t NAME[:TAG]`; the image is left untagged when `None`.
    pub tag: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Images taken by digest rather than by their tag (a berth.toml
    /// `build` env's `berth.lock`): full reference → manifest digest.
    pub pins: BTreeMap<String, Digest>,
    /// mtimes and `created` are clamped to this (`SOURCE_DATE_EPOCH`).
    pub epoch: u64,
    pub compression: Compression,
}

/// What a Dockerfile build did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DockerBuilt {
    pub built: usize,
    pub cached: usize,
    pub tag: Option<String>,
    /// The image's manifest digest.
    pub digest: Digest,
    /// Build args no needed stage declares (Docker warns about them).
    pub unused_build_args: Vec<String>,
}

/// Why a Dockerfile build failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerBuildError {
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    #[error("{at}: {source}")]
    Base { at: String, source: Box<BaseError> },
    #[error("{at}: {source}")]
    Step { at: String, source: Box<StepError> },
    #[error("{at}: {source}")]
    Copy { at: String, source: Box<CopyError> },
    #[error("{at}: {source}")]
    Files { at: String, source: Box<files::FilesError> },
    #[error("{at}: {source}")]
    Url { at: String, source: url::UrlError },
    #[error("{at}: {source}")]
    Layer { at: String, source: Box<LayerError> },
    #[error("{at}: {source}")]
    Write { at: String, source: TarWriteError },
    #[error("{at}: {what}: {source}")]
    User { at: String, what: String, source: Box<crate::runtime::spec::SpecError> },
    #[error("the build context {} is not a directory; name the directory that holds what the Dockerfile copies", path.display())]
    Context { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] Box<ImageError>),
    #[error("cannot start build containers: {0}")]
    Init(#[from] ProcessError),
    #[error("{at}: cannot {what}: {source}")]
    Mount { at: String, what: String, source: std::io::Error },
    #[error("cannot make a build directory under {}: {source}", path.display())]
    Scratch { path: PathBuf, source: std::io::Error },
}

/// A base made for a stage, with its raw config JSON.
type Made = (BaseImage, Value);

/// Builds the Dockerfile `req` names into the store at `store_root`.
pub fn build_dockerfile(
    store_root: &Path,
    req: &DockerRequest,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<DockerBuilt, DockerBuildError> {
    if !req.context.is_dir() {
        return Err(DockerBuildError::Context { path: req.context.clone() });
    }
    if let Some(tag) = &req.tag {
        crate::store::normalize_tag_name(tag)?;
    }
    let store = Store::open(store_root)?;
    let _exclusive = store.lock_exclusive()?;
    build_dockerfile_locked(&store, req, progress)
}

/// [`build_dockerfile`] for a caller that holds the store's exclusive lock
/// (a berth.toml env with `build`, built by `berth build` or `up`).
pub fn build_dockerfile_locked(
    store: &Store,
    req: &DockerRequest,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<DockerBuilt, DockerBuildError> {
    if !req.context.is_dir() {
        return Err(DockerBuildError::Context { path: req.context.clone() });
    }
    let dockerfile = req.dockerfile.clone().unwrap_or_else(|| req.context.join("Dockerfile"));
    let file = df::load(&dockerfile)?;
    let ignore = df::ignore::load(&dockerfile, &req.context)?;
    let pin = |name: &str| req.pins.get(name).map_or(RegistryPin::Tag, RegistryPin::Digest);

    // Bases are made while substituting: their config is what the words see.
    let bases: RefCell<BTreeMap<String, Result<Made, BaseError>>> = RefCell::new(BTreeMap::new());
    let base_config = |r: &ImageRef| -> BaseConfig {
        let name = r.to_string();
        let mut map = bases.borrow_mut();
        let got = map.entry(name.clone()).or_insert_with(|| {
            let source = Base::Image(ImageSource::Registry { reference: name.clone() });
            let img = base::materialise_pinned(store, &req.context, &source, req.epoch, pin(&name))?;
            let raw = raw_config(store, &img);
            Ok((img, raw))
        });
        let Ok((_, raw)) = got else { return BaseConfig::default() };
        BaseConfig::from_image_config(raw)
    };
    let options = Options {
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        platform: df::env::Platform::host(),
        base_config: &base_config,
    };
    let expanded = df::expand(&file, &options)?;
    let mut images: Vec<Option<(BaseImage, Value)>> = Vec::new();
    for stage in &expanded.stages {
        let FromBase::Image(r) = &stage.base else {
            images.push(None);
            continue;
        };
        let at = format!("{}:{}", dockerfile.display(), stage.pos);
        let got = bases.borrow_mut().remove(&r.to_string());
        let (img, raw) = match got {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(DockerBuildError::Base { at, source: Box::new(e) }),
            None => {
                let source = Base::Image(ImageSource::Registry { reference: r.to_string() });
                let img = base::materialise_pinned(store, &req.context, &source, req.epoch, pin(&r.to_string()))
                    .map_err(|e| DockerBuildError::Base { at: at.clone(), source: Box::new(e) })?;
                let raw = raw_config(store, &img);
                (img, raw)
            }
        };
        bases.borrow_mut().insert(r.to_string(), Ok((img.clone(), raw.clone())));
        images.push(Some((img, raw)));
    }
    let image_base = |n: usize| -> ImageBase {
        let (img, _) = images[n].as_ref().expect("an image stage has its base");
        let FromBase::Image(r) = &expanded.stages[n].base else { return ImageBase::default() };
        let digest = img.digest.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let c = img.config.config().clone().unwrap_or_default();
        ImageBase {
            source: r.to_string(),
            key_fields: vec![b"registry".to_vec(), r.to_string().into_bytes(), digest.into_bytes()],
            env: c.env().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
        }
    };
    // Images a RUN mounts from (`--mount=…,from=IMAGE`), made bases too.
    let mut mount_images: BTreeMap<String, BaseImage> = BTreeMap::new();
    for stage in &expanded.stages {
        for step in &stage.steps {
            let df::Instruction::Run(run) = &step.instruction else { continue };
            let binds = run.mounts.iter().filter(|m| m.kind == df::mount::MountKind::Bind);
            for name in binds.filter_map(|m| m.from.as_deref()) {
                if mount_stage(&expanded, name).is_some() || mount_images.contains_key(name) {
                    continue;
                }
                let at = format!("{}:{}", dockerfile.display(), step.pos);
                let reference = match name.parse::<ImageRef>() {
                    Ok(r) => r.to_string(),
                    Err(e) => {
                        return Err(Located::new(
                            step.pos,
                            format!("--mount from={name}: no stage of this Dockerfile, and no image reference: {e}"),
                        )
                        .in_file(&dockerfile)
                        .into());
                    }
                };
                let source = Base::Image(ImageSource::Registry { reference });
                let img = base::materialise_pinned(store, &req.context, &source, req.epoch, RegistryPin::Tag)
                    .map_err(|e| DockerBuildError::Base { at, source: Box::new(e) })?;
                mount_images.insert(name.to_owned(), img);
            }
        }
    }
    let mount_image = |name: &str| -> Option<String> {
        let img = mount_images.get(name)?;
        let r: ImageRef = name.parse().ok()?;
        Some(format!("{r}@{}", img.digest.as_ref().map(|d| d.to_string()).unwrap_or_default()))
    };
    let prepared = inputs::prepare(store, &req.context, req.epoch, &expanded, &dockerfile)?;
    let graph = resolve_dockerfile_with(
        &expanded,
        &req.context,
        &ignore,
        &dockerfile,
        &image_base,
        &prepared.inputs,
        &mount_image,
    )?;
    let init = InitExe::current()?;
    let b = Builder {
        store,
        req,
        file: &dockerfile,
        ignore: &ignore,
        expanded: &expanded,
        graph: &graph,
        images: &images,
        mount_images: &mount_images,
        init: &init,
        entries: Mutex::new(HashMap::new()),
        building: Mutex::new(HashMap::new()),
        built: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
    };
    b.build_all(progress)?;
    let digest = b.write_image()?;
    Ok(DockerBuilt {
        built: b.built.into_inner(),
        cached: b.cached.into_inner(),
        tag: req.tag.clone(),
        digest,
        unused_build_args: expanded.unused_build_args.clone(),
    })
}

/// The raw config JSON of a base (Docker's fields oci-spec does not keep:
/// `Shell`, `OnBuild`, `Healthcheck`); `{}` when it has no manifest.
fn raw_config(store: &Store, img: &BaseImage) -> Value {
    let read = || -> Option<Value> {
        let manifest: Value = serde_json::from_slice(&store.read_blob(img.digest.as_ref()?).ok()?).ok()?;
        let digest: Digest = manifest["config"]["digest"].as_str()?.parse().ok()?;
        serde_json::from_slice(&store.read_blob(&digest).ok()?).ok()
    };
    read().unwrap_or_else(|| serde_json::to_value(&img.config).unwrap_or_else(|_| json!({})))
}

struct Builder<'a> {
    store: &'a Store,
    req: &'a DockerRequest,
    file: &'a Path,
    ignore: &'a df::ignore::Ignore,
    expanded: &'a Expanded,
    graph: &'a DockerGraph,
    images: &'a [Option<(BaseImage, Value)>],
    /// Images RUN mounts name, by the name written.
    mount_images: &'a BTreeMap<String, BaseImage>,
    init: &'a InitExe,
    /// The cache entry of every node built or found so far.
    entries: Mutex<HashMap<CacheKey, CacheEntry>>,
    /// A lock per key a worker is building, so that two stages built side
    /// by side that share a node build it once.
    building: Mutex<HashMap<CacheKey, Arc<Mutex<()>>>>,
    built: AtomicUsize,
    cached: AtomicUsize,
}

impl Builder<'_> {
    fn at(&self, pos: Pos) -> String {
        format!("{}:{}", self.file.display(), pos)
    }

    /// The unpacked layers below `node` (not its own), top first.
    fn lowers(&self, node: NodeIndex) -> Result<Vec<PathBuf>, DockerBuildError> {
        self.lowers_upto(node, false)
    }

    fn lowers_upto(&self, node: NodeIndex, with_own: bool) -> Result<Vec<PathBuf>, DockerBuildError> {
        let graph = &self.graph.graph;
        let mut dirs = Vec::new();
        for a in graph.chain_from(node) {
            if a == node && !with_own {
                break;
            }
            for l in &self.entry(&graph.node(a).key).layers {
                dirs.push(self.store.unpacked_layer("the build", l).map_err(Box::new)?);
            }
        }
        dirs.reverse();
        Ok(super::distinct_lowers(dirs))
    }

    fn scratch(&self) -> Result<tempfile::TempDir, DockerBuildError> {
        let tmp = self.store.tmp_dir();
        tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp)
            .map_err(|source| DockerBuildError::Scratch { path: tmp, source })
    }

    /// The uid and gid of `owner` (a `--chown` or USER value, `prefix` naming
    /// which in errors), names looked up in the image's `/etc/passwd` and
    /// `/etc/group`.
    fn owner(
        &self,
        at: &str,
        lowers: &[PathBuf],
        owner: &Option<String>,
        prefix: &str,
    ) -> Result<Option<(u32, u32)>, DockerBuildError> {
        let Some(u) = owner else { return Ok(None) };
        let r = crate::runtime::spec::resolve_user_in_layers(lowers, u).map_err(|source| DockerBuildError::User {
            at: at.to_owned(),
            what: format!("{prefix}{u}"),
            source: Box::new(source),
        })?;
        Ok(Some((r.uid, r.gid)))
    }
}
