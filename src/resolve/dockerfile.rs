//! A Dockerfile's stages as nodes of the [`LayerGraph`], keyed as berth.toml
//! steps are, so that the two share the cache where they do the same thing.
//!
//! The input is what [`crate::dockerfile::expand`] gives (the stages the
//! target needs, words substituted) and, for each stage that starts from an
//! image, that image's key fields and config, which the builder learns by
//! materialising the base first. Each stage becomes a chain:
//!
//! | instruction | node | key (after the parent's key) |
//! |---|---|---|
//! | `FROM scratch` / `FROM IMAGE` | `base` | as a berth.toml base: `scratch`, or `registry`, the canonical reference and the image's manifest digest (the form a locked berth.toml base has) |
//! | `FROM stage` | none | the chain hangs under that stage's last node |
//! | an image's ONBUILD triggers | as the instructions they are | they stand first in the stage (see `crate::dockerfile::expand`) |
//! | `RUN` | `run` | the command, then only what differs from a berth.toml `run` entry ([`RunWith`]): the argv unless it is `/bin/sh -c COMMAND`, the whole env unless it is the base image's (with Docker's PATH when the base sets none, as the runtime gives a berth.toml step), the build args the RUN sees, the workdir unless `/`, the user unless root, `--network=none`, the mounts (see `dockerfile_run.rs`) |
//! | `COPY`/`ADD` of one context directory, or of one file to a `…/` destination (no wildcard, symlink on its path, `--chown`, symbolic `--chmod` or other flag) | `copy` | as a berth.toml copy: destination, mode, owner, the tree hash (with `.dockerignore` applied instead of `.berthignore`) |
//! | any other `COPY`/`ADD` (several sources, wildcards, a file to a path, `--from` a stage or an image, an inline heredoc file, an `ADD` of a tar archive or a URL, symbolic `--chmod`, `--link`, `--parents`, `--exclude`) | `files` (`files-link` for `--link`: no parent key) | see [`copy`]: the instruction, each source pattern with the context paths it matches and their tree hashes (or inline body, or URL and content digest or `--checksum`), the `--from` stage's last key or image key, destination, `--chmod`, owner, flags |
//! | `WORKDIR` other than `/` | `mkdir` | the path, the user unless root |
//! | `ENV`, `LABEL`, `USER`, `CMD`, … | none | config only: not in any key |
//!
//! A single file copied to a destination without a trailing `/` is no
//! `copy` node: Docker puts it *into* the destination when the image has a
//! directory there, which a berth.toml copy does not, so the two would not
//! do the same thing under one key. What berth does not build yet is
//! refused here with `Dockerfile:LINE:COL`, never skipped.

use std::path::Path;

use petgraph::graph::NodeIndex;

#[path = "dockerfile_chmod.rs"]
pub mod chmod;
#[path = "dockerfile_copy.rs"]
pub mod copy;
#[path = "dockerfile_glob.rs"]
pub mod glob;

pub use copy::{CopyInputs, is_archive};

use super::graph::{LayerGraph, RunWith, Step};
use super::key::KeyHasher;
use crate::dockerfile::error::{DockerfileError, Located, Pos};
use crate::dockerfile::expand::{Base, DEFAULT_PATH, Expanded, ExpandedStage};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::instruction::{Instruction, Network};

/// What the builder knows of an image a stage starts from.
#[derive(Debug, Clone, Default)]
pub struct ImageBase {
    /// How the Dockerfile named it, for listings.
    pub source: String,
    /// The base node's key fields (see the module page).
    pub key_fields: Vec<Vec<u8>>,
    /// The image config's `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
    /// The image config's `User`.
    pub user: String,
}

/// The nodes of one expanded stage.
#[derive(Debug, Clone)]
pub struct StageNodes {
    /// The name the stage's nodes are marked with in the graph.
    pub label: String,
    /// The base node at the bottom of the stage's chain.
    pub root: NodeIndex,
    /// Per step of the expanded stage, the node it made, if any.
    pub steps: Vec<Option<NodeIndex>>,
    /// The stage's last node.
    pub tip: NodeIndex,
    /// The user at the end of the stage (USER, else the base's).
    pub user: String,
    /// The base image's env, what a berth.toml step would see.
    pub root_env: Vec<String>,
}

/// A Dockerfile's graph: the nodes, and per expanded stage (in the order of
/// [`Expanded::stages`]) which nodes it made.
#[derive(Debug, Default)]
pub struct DockerGraph {
    pub graph: LayerGraph,
    pub stages: Vec<StageNodes>,
    /// The images `COPY --from` reads and the URLs ADD fetched.
    pub inputs: CopyInputs,
}

/// Turns the expanded stages into graph nodes. `context` is the build
/// context, `ignore` its `.dockerignore`, `file` the Dockerfile (for
/// errors), `image_base(i)` what the builder learnt of the image stage `i`
/// (an index into `expanded.stages`) starts from.
pub fn resolve_dockerfile(
    expanded: &Expanded,
    context: &Path,
    ignore: &Ignore,
    file: &Path,
    image_base: &dyn Fn(usize) -> ImageBase,
) -> Result<DockerGraph, DockerfileError> {
    resolve_dockerfile_with(expanded, context, ignore, file, image_base, &CopyInputs::default(), &|_| None)
}

/// [`resolve_dockerfile`] with what the builder prepared: for COPY and ADD,
/// the images `COPY --from` names and the URLs ADD fetches (`inputs`); and
/// `mount_image(name)`, the key text (`REFERENCE@DIGEST`) of an image a
/// `RUN --mount=…,from=` names that is no stage, when the builder has it.
pub fn resolve_dockerfile_with(
    expanded: &Expanded,
    context: &Path,
    ignore: &Ignore,
    file: &Path,
    image_base: &dyn Fn(usize) -> ImageBase,
    inputs: &CopyInputs,
    mount_image: &dyn Fn(&str) -> Option<String>,
) -> Result<DockerGraph, DockerfileError> {
    let mut out = DockerGraph { inputs: inputs.clone(), ..DockerGraph::default() };
    for (n, stage) in expanded.stages.iter().enumerate() {
        let inputs = Inputs { context, ignore, image_base, mount_image };
        let nodes = stage_nodes(&mut out, expanded, n, stage, &inputs).map_err(|e| e.in_file(file))?;
        out.stages.push(nodes);
    }
    Ok(out)
}

/// The label of stage `stage` in the graph.
pub fn stage_label(stage: &ExpandedStage) -> String {
    stage.name.clone().unwrap_or_else(|| format!("stage-{}", stage.index))
}

/// Where a stage's inputs come from.
struct Inputs<'a> {
    context: &'a Path,
    ignore: &'a Ignore,
    image_base: &'a dyn Fn(usize) -> ImageBase,
    mount_image: &'a dyn Fn(&str) -> Option<String>,
}

fn stage_nodes(
    out: &mut DockerGraph,
    expanded: &Expanded,
    n: usize,
    stage: &ExpandedStage,
    inputs: &Inputs<'_>,
) -> Result<StageNodes, Located> {
    let Inputs { context, ignore, image_base, mount_image } = *inputs;
    let label = stage_label(stage);
    let platform = crate::dockerfile::env::Platform::host().spec();
    if let Some(p) = &stage.platform
        && *p != platform
    {
        return Err(Located::new(
            stage.pos,
            format!(
                "FROM --platform={p}: berth builds only for this machine ({platform}) yet; drop --platform or use {platform}"
            ),
        ));
    }
    let (root, mut user, root_env) = match &stage.base {
        Base::Stage(i) => {
            let parent = position(expanded, *i, stage.pos)?;
            let p = &out.stages[parent];
            (p.tip, p.user.clone(), p.root_env.clone())
        }
        Base::Scratch => {
            let key = KeyHasher::new("base").field(b"scratch").finish();
            (out.graph.add(None, key, Step::Base { source: "scratch".to_owned() }, &label), String::new(), Vec::new())
        }
        Base::Image(_) => {
            let base = image_base(n);
            let mut h = KeyHasher::new("base");
            for f in &base.key_fields {
                h.field(f);
            }
            let root = out.graph.add(None, h.finish(), Step::Base { source: base.source.clone() }, &label);
            (root, base.user.clone(), base.env.clone())
        }
    };
    out.graph.mark_used(root, &label);
    let mut default_env = root_env.clone();
    if !default_env.iter().any(|kv| kv.starts_with("PATH=")) {
        default_env.push(format!("PATH={DEFAULT_PATH}"));
    }
    let mut at = root;
    let mut steps = Vec::new();
    for step in &stage.steps {
        let pos = step.pos;
        let made = match &step.instruction {
            Instruction::User(u) => {
                user = u.clone();
                None
            }
            Instruction::Run(r) => {
                let mounts = mount_keys(expanded, out, &r.mounts, context, ignore, mount_image, pos)?;
                let (command, argv) = run_argv(&r.command, &step.shell, pos)?;
                let env: Vec<String> = step.env.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let build_args: Vec<String> = step.build_args.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let sh = ["/bin/sh".to_owned(), "-c".to_owned(), command.clone()];
                let with = RunWith {
                    argv: (argv != sh).then_some(argv),
                    env: (env != default_env).then_some(env),
                    build_args: (!build_args.is_empty()).then_some(build_args),
                    workdir: (step.workdir != "/").then(|| step.workdir.clone()),
                    user: (!user.is_empty()).then(|| user.clone()),
                    network: (r.network == Some(Network::None)).then(|| "none".to_owned()),
                    mounts: (!mounts.is_empty()).then_some(mounts),
                };
                let mut h = KeyHasher::new("run");
                h.field(out.graph.node(at).key.as_bytes()).field(command.as_bytes());
                with.key_fields(&mut h);
                Some(out.graph.add(Some(at), h.finish(), Step::Run { command, with }, &label))
            }
            Instruction::Copy(_) | Instruction::Add(_) => {
                let spec = copy::CopySpec::of(&step.instruction).expect("a COPY or ADD");
                Some(copy::copy_node(out, expanded, at, &label, &spec, &step.workdir, context, ignore, pos)?)
            }
            Instruction::Workdir(path) if path != "/" => {
                // BuildKit makes the directories as the USER when one is set.
                let owner = (!user.is_empty()).then(|| user.clone());
                let mut h = KeyHasher::new("mkdir");
                h.field(out.graph.node(at).key.as_bytes()).field(path.as_bytes());
                if let Some(u) = &owner {
                    h.field(b"user").field(u.as_bytes());
                }
                Some(out.graph.add(Some(at), h.finish(), Step::Mkdir { path: path.clone(), owner }, &label))
            }
            _ => None,
        };
        if let Some(i) = made {
            at = i;
        }
        steps.push(made);
    }
    out.graph.set_tip(&label, at);
    Ok(StageNodes { label, root, steps, tip: at, user, root_env })
}

fn unsupported(pos: Pos, what: &str, instead: &str) -> Located {
    Located::new(pos, format!("{what} is not supported by berth yet; {instead}"))
}

/// Where the stage with file index `index` is in `expanded.stages`.
fn position(expanded: &Expanded, index: usize, pos: Pos) -> Result<usize, Located> {
    expanded
        .stages
        .iter()
        .position(|s| s.index == index)
        .ok_or_else(|| Located::new(pos, format!("stage {index} was not expanded before the stage that needs it")))
}

/// A context source as a relative path, cleaned as BuildKit cleans it:
/// rooted at the context, so `..` never climbs out of it (`../x` is `x`);
/// `/`, `./` and `.` mean the context itself.
pub fn clean_src(p: &str) -> String {
    crate::dockerfile::ignore::clean(&format!("/{p}")).trim_start_matches('/').to_owned()
}

#[path = "dockerfile_run.rs"]
mod run;
use run::mount_keys;
pub use run::{PIPES_DIR, mount_stage, run_argv, script_heredoc};

#[cfg(test)]
#[path = "dockerfile_tests.rs"]
mod tests;
