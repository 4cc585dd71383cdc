//! Building one node of a Dockerfile's graph: a base, a RUN in a build
//! container, a COPY with berth.toml's copy writer, a `files` or `mkdir`
//! layer (see [`super::files`]).

use std::path::PathBuf;
use std::time::SystemTime;

use petgraph::graph::NodeIndex;

use super::files;
use super::{Builder, DockerBuildError};
use crate::build::base;
use crate::build::copy;
use crate::build::layer;
use crate::build::step::{self, StepCommand};
use crate::dockerfile::Instruction;
use crate::dockerfile::error::Pos;
use crate::manifest::{Base, ImageSource};
use crate::oci::image::canonical_json;
use crate::resolve::Step;
use crate::resolve::dockerfile::copy::{CopySpec, FromRef, from_ref};
use crate::resolve::tree::Rules;
use crate::store::{CacheEntry, LayerRecord};

impl Builder<'_> {
    /// Commits a layer blob written by `write` and unpacks it.
    fn commit_layer(
        &self,
        blob: crate::store::BlobWriter,
        digests: &crate::oci::LayerDigests,
    ) -> Result<LayerRecord, DockerBuildError> {
        let (digest, size) = blob.commit(Some(&digests.digest))?;
        let record =
            LayerRecord { digest, diff_id: digests.diff_id.clone(), size, media_type: digests.media_type.to_owned() };
        self.store.unpacked_layer("the build", &record).map_err(Box::new)?;
        Ok(record)
    }

    /// The layers (top first) a `--from` reads: a stage's chain or an image's layers.
    fn copy_source_lowers(&self, name: &str) -> Result<Vec<PathBuf>, DockerBuildError> {
        match from_ref(self.expanded, name) {
            Ok(FromRef::Stage(k)) => self.lowers_upto(self.graph.stages[k].tip, true),
            _ => {
                let img = &self.graph.inputs.images[name];
                let mut dirs = Vec::new();
                for l in img.layers.iter().rev() {
                    dirs.push(self.store.unpacked_layer("the build", l).map_err(Box::new)?);
                }
                Ok(crate::build::distinct_lowers(dirs))
            }
        }
    }

    pub(super) fn node(
        &self,
        n: usize,
        node: NodeIndex,
        pos: Pos,
        step: Option<usize>,
    ) -> Result<CacheEntry, DockerBuildError> {
        let at = self.at(pos);
        let mut entry = CacheEntry::new(Vec::new(), SystemTime::now());
        let stage = &self.expanded.stages[n];
        match &self.graph.graph.node(node).step {
            Step::Base { .. } => {
                let img = match &self.images[n] {
                    Some((img, _)) => img.clone(),
                    None => base::materialise(
                        self.store,
                        &self.req.context,
                        &Base::Image(ImageSource::Scratch),
                        self.req.epoch,
                    )
                    .map_err(|e| DockerBuildError::Base { at: at.clone(), source: Box::new(e) })?,
                };
                let config = canonical_json(&img.config).expect("a config always serialises");
                entry.config = Some(self.store.put_blob(&config)?);
                entry.layers = img.layers;
            }
            Step::Run { command, with } => {
                let lowers = self.lowers(node)?;
                let nodes = &self.graph.stages[n];
                let mut env = with.env.clone().unwrap_or_else(|| nodes.root_env.clone());
                env.extend(self.expanded.proxy_env.0.iter().map(|(k, v)| format!("{k}={v}")));
                let argv = with.argv.clone().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), command.clone()]);
                let shown = format!("RUN {command}");
                let i = step.expect("a run node comes from a RUN");
                let Instruction::Run(run) = &stage.steps[i].instruction else {
                    unreachable!("a run node comes from a RUN")
                };
                let scratch = self.scratch()?;
                let prepared = self.run_mounts(&at, run, scratch.path())?;
                let targets: Vec<&str> = run.mounts.iter().map(|m| m.target.as_str()).collect();
                let stubs = super::mounts::stub_parents(&lowers, &targets);
                let cmd = StepCommand {
                    argv,
                    shown: &shown,
                    env,
                    workdir: with.workdir.as_deref(),
                    user: with.user.as_deref(),
                    offline: with.network.is_some(),
                    mounts: prepared.mounts.clone(),
                };
                let ran = step::run(&lowers, scratch.path(), &cmd, self.init)
                    .map_err(|e| DockerBuildError::Step { at: at.clone(), source: Box::new(e) })?;
                let mut exclude = ran.mount_points;
                super::mounts::exclude_stubs(&scratch.path().join("upper"), &stubs, &mut exclude);
                let opts = layer::LayerOptions {
                    compression: self.req.compression,
                    exclude,
                    ..layer::LayerOptions::build(self.req.epoch)
                };
                let out = layer::layer_from_upper_with(self.store, &scratch.path().join("upper"), &lowers, &opts)
                    .map_err(|e| DockerBuildError::Layer { at: at.clone(), source: Box::new(e) })?;
                if !out.empty {
                    entry.layers.push(out.record);
                }
            }
            Step::Copy { src, dest, mode, owner, .. } => {
                let lowers = self.lowers(node)?;
                let owner = self.owner(&at, &lowers, owner, "--chown=")?;
                let c = crate::manifest::Copy {
                    src: if src == "." { PathBuf::new() } else { PathBuf::from(src) },
                    dest: dest.clone(),
                    mode: *mode,
                    owner: None,
                };
                let mut blob = self.store.blob_writer()?;
                let (_, digests) = copy::write_layer_with(
                    &self.req.context,
                    &c,
                    Rules::Docker(self.ignore),
                    &lowers,
                    owner,
                    &mut blob,
                    self.req.epoch,
                    self.req.compression,
                )
                .map_err(|e| DockerBuildError::Copy { at: at.clone(), source: Box::new(e) })?;
                entry.layers.push(self.commit_layer(blob, &digests)?);
            }
            Step::Files { from, dest, owner, .. } => {
                let lowers = self.lowers(node)?;
                let owner = self.owner(&at, &lowers, owner, "--chown=")?;
                let i = step.expect("a files node comes from a COPY or ADD");
                let spec = CopySpec::of(&stage.steps[i].instruction).expect("a files node comes from a COPY or ADD");
                let from_lowers = match from {
                    Some(name) => Some(self.copy_source_lowers(name)?),
                    None => None,
                };
                let scratch = self.scratch()?;
                let request = files::FilesRequest {
                    spec: &spec,
                    context: &self.req.context,
                    ignore: self.ignore,
                    from: from_lowers.as_deref(),
                    lowers: &lowers,
                    dest,
                    owner,
                    scratch: scratch.path(),
                    fetched: &self.graph.inputs.urls,
                };
                let mut blob = self.store.blob_writer()?;
                let (_, digests) = files::write_files(&request, &mut blob, self.req.epoch, self.req.compression)
                    .map_err(|e| DockerBuildError::Files { at: at.clone(), source: Box::new(e) })?;
                entry.layers.push(self.commit_layer(blob, &digests)?);
            }
            Step::Mkdir { path, owner } => {
                let lowers = self.lowers(node)?;
                let owner = self.owner(&at, &lowers, owner, "USER ")?;
                let scratch = self.scratch()?;
                let mut blob = self.store.blob_writer()?;
                let made = files::write_mkdir(
                    &lowers,
                    path,
                    owner,
                    scratch.path(),
                    &mut blob,
                    self.req.epoch,
                    self.req.compression,
                )
                .map_err(|source| DockerBuildError::Write { at: at.clone(), source })?;
                if let Some((_, digests)) = made {
                    entry.layers.push(self.commit_layer(blob, &digests)?);
                }
            }
            Step::Packages { .. } => unreachable!("a Dockerfile makes no packages node"),
        }
        Ok(entry)
    }
}
