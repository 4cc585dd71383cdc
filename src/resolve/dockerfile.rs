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
//! | `COPY`/`ADD` of one context directory, or of one file to a `…/` destination | `copy` | as a berth.toml copy: destination, mode, owner, the tree hash (with `.dockerignore` applied instead of `.berthignore`) |
//! | any other `COPY`/`ADD` (several sources, a file to a path, `--from`, an inline heredoc file, an `ADD` of a tar archive) | `files` | the instruction, each source's path and tree hash (or inline body), the `--from` stage's last key, destination, mode, owner |
//! | `WORKDIR` other than `/` | `mkdir` | the path |
//! | `ENV`, `LABEL`, `USER`, `CMD`, … | none | config only: not in any key |
//!
//! A single file copied to a destination without a trailing `/` is no
//! `copy` node: Docker puts it *into* the destination when the image has a
//! directory there, which a berth.toml copy does not, so the two would not
//! do the same thing under one key. What berth does not build yet is
//! refused here with `Dockerfile:LINE:COL`, never skipped.

use std::path::Path;

use petgraph::graph::NodeIndex;

use super::graph::{LayerGraph, RunWith, Step};
use super::key::KeyHasher;
use super::tree::{self, Rules};
use crate::dockerfile::error::{DockerfileError, Located, Pos};
use crate::dockerfile::expand::{Base, DEFAULT_PATH, Expanded, ExpandedStage, join_path};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::instruction::{Instruction, Network, Sources};

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
    resolve_dockerfile_with(expanded, context, ignore, file, image_base, &|_| None)
}

/// [`resolve_dockerfile`], with `mount_image(name)` the key text
/// (`REFERENCE@DIGEST`) of an image a `RUN --mount=…,from=` names that is
/// no stage, when the builder has it.
pub fn resolve_dockerfile_with(
    expanded: &Expanded,
    context: &Path,
    ignore: &Ignore,
    file: &Path,
    image_base: &dyn Fn(usize) -> ImageBase,
    mount_image: &dyn Fn(&str) -> Option<String>,
) -> Result<DockerGraph, DockerfileError> {
    let mut out = DockerGraph::default();
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
            Instruction::Copy(c) => {
                if c.link || c.parents || !c.exclude.is_empty() {
                    return Err(unsupported(pos, "COPY --link, --parents and --exclude", "drop the flag"));
                }
                let from = match &c.from {
                    Some(name) => Some(from_stage(expanded, &out.stages, name, pos)?),
                    None => None,
                };
                let owner = c.chown.clone();
                let mode = c.chmod.as_deref().map(|m| octal(m, pos)).transpose()?;
                let dest = destination(&c.sources.dest, &step.workdir);
                Some(files_node(
                    out, at, &label, "COPY", &c.sources, from, dest, mode, owner, false, context, ignore, pos,
                )?)
            }
            Instruction::Add(a) => {
                if a.link || a.keep_git_dir || !a.exclude.is_empty() || a.checksum.is_some() {
                    return Err(unsupported(
                        pos,
                        "ADD --link, --keep-git-dir, --exclude and --checksum",
                        "drop the flag",
                    ));
                }
                if let Some(url) = a.sources.paths.iter().find(|p| p.contains("://") || p.starts_with("git@")) {
                    return Err(unsupported(
                        pos,
                        &format!("ADD of a URL ({url})"),
                        "fetch it in a RUN step, or download it into the context and ADD the file",
                    ));
                }
                let owner = a.chown.clone();
                let mode = a.chmod.as_deref().map(|m| octal(m, pos)).transpose()?;
                let dest = destination(&a.sources.dest, &step.workdir);
                Some(files_node(
                    out, at, &label, "ADD", &a.sources, None, dest, mode, owner, true, context, ignore, pos,
                )?)
            }
            Instruction::Workdir(path) if path != "/" => {
                let mut h = KeyHasher::new("mkdir");
                h.field(out.graph.node(at).key.as_bytes()).field(path.as_bytes());
                Some(out.graph.add(Some(at), h.finish(), Step::Mkdir { path: path.clone() }, &label))
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

/// The `--from` stage named `name` (a stage name or index), among the
/// stages already resolved.
fn from_stage(expanded: &Expanded, done: &[StageNodes], name: &str, pos: Pos) -> Result<(String, NodeIndex), Located> {
    let found = expanded.stages.iter().position(|s| {
        s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)) || name.parse::<usize>() == Ok(s.index)
    });
    match found {
        Some(i) if i < done.len() => Ok((name.to_owned(), done[i].tip)),
        _ => Err(unsupported(
            pos,
            &format!("COPY --from={name} (an image, not a stage of this Dockerfile)"),
            &format!("add a stage `FROM {name} AS src` and copy --from=src"),
        )),
    }
}

/// `--chmod=MODE`: octal only.
fn octal(text: &str, pos: Pos) -> Result<u32, Located> {
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
        Located::new(pos, format!("--chmod={text}: berth takes an octal mode (0755, 644) yet, not symbolic modes"))
    })
}

/// A COPY or ADD destination made absolute against the working directory;
/// a trailing `/` (or `.`) is kept as "into this directory".
fn destination(dest: &str, workdir: &str) -> String {
    let dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let abs = join_path(workdir, dest);
    if dir && abs != "/" { format!("{abs}/") } else { abs }
}

/// Whether the context file `path` is an archive ADD unpacks: a regular
/// file (not a symlink) holding a tar, plain or compressed with gzip or zstd.
pub fn is_archive(path: &Path) -> bool {
    use std::io::Read;
    // A symlink is copied as a link, never followed out of the context.
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut head = [0u8; 262];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar")
}

#[allow(clippy::too_many_arguments)]
fn files_node(
    out: &mut DockerGraph,
    at: NodeIndex,
    label: &str,
    instruction: &str,
    sources: &Sources,
    from: Option<(String, NodeIndex)>,
    dest: String,
    mode: Option<u32>,
    owner: Option<String>,
    add: bool,
    context: &Path,
    ignore: &Ignore,
    pos: Pos,
) -> Result<NodeIndex, Located> {
    if let Some(p) = sources.paths.iter().find(|p| p.contains(['*', '?', '['])) {
        return Err(unsupported(pos, &format!("a wildcard in a {instruction} source ({p})"), "name each source"));
    }
    let count = sources.paths.len() + sources.inline.len();
    if count > 1 && !dest.ends_with('/') {
        return Err(Located::new(
            pos,
            format!("{instruction} with more than one source needs a directory destination ending in /, not {dest:?}"),
        ));
    }
    let parent_key = *out.graph.node(at).key.as_bytes();
    let archive = |p: &str| add && from.is_none() && is_archive(&context.join(p));
    // One context path, not an archive, as a berth.toml copy would do it.
    if from.is_none() && sources.inline.is_empty() && sources.paths.len() == 1 && !archive(&sources.paths[0]) {
        let src = clean_src(&sources.paths[0]);
        let input = tree::hash_tree_with(context, Path::new(&src), Rules::Docker(ignore))
            .map_err(|e| Located::new(pos, format!("{instruction} {}: {e}", sources.paths[0])))?;
        let is_dir = context.join(&src).symlink_metadata().is_ok_and(|m| m.is_dir());
        if is_dir || dest.ends_with('/') {
            let mut h = KeyHasher::new("copy");
            h.field(&parent_key)
                .field(dest.as_bytes())
                .field(mode.map(|m| format!("{m:o}")).unwrap_or_default().as_bytes())
                .field(owner.clone().unwrap_or_default().as_bytes())
                .field(&input.hash);
            let shown = if src.is_empty() { ".".to_owned() } else { src };
            let step = Step::Copy { src: shown, dest, mode, owner, files: input.files, bytes: input.bytes };
            return Ok(out.graph.add(Some(at), h.finish(), step, label));
        }
    }
    let mut h = KeyHasher::new("files");
    h.field(&parent_key).field(instruction.as_bytes());
    for p in &sources.paths {
        h.field(p.as_bytes());
        if from.is_none() {
            let input = tree::hash_tree_with(context, Path::new(&clean_src(p)), Rules::Docker(ignore))
                .map_err(|e| Located::new(pos, format!("{instruction} {p}: {e}")))?;
            h.field(&input.hash).field(if archive(p) { b"extract" } else { b"copy" });
        }
    }
    for f in &sources.inline {
        h.field(b"inline").field(f.name.as_bytes()).field(f.data.as_bytes());
    }
    if let Some((_, tip)) = &from {
        h.field(b"from").field(out.graph.node(*tip).key.as_bytes());
    }
    h.field(dest.as_bytes())
        .field(mode.map(|m| format!("{m:o}")).unwrap_or_default().as_bytes())
        .field(owner.clone().unwrap_or_default().as_bytes());
    let mut shown: Vec<String> = sources.paths.clone();
    shown.extend(sources.inline.iter().map(|f| format!("<<{}", f.name)));
    let step = Step::Files {
        instruction: instruction.to_owned(),
        sources: shown,
        from: from.map(|(name, _)| name),
        dest,
        mode,
        owner,
    };
    Ok(out.graph.add(Some(at), h.finish(), step, label))
}

/// A context source as a relative path: `/`, `./` and `.` mean the context.
pub fn clean_src(p: &str) -> String {
    let cleaned = crate::dockerfile::ignore::clean(p.trim_start_matches('/'));
    if cleaned == "." { String::new() } else { cleaned }
}

#[path = "dockerfile_run.rs"]
mod run;
use run::mount_keys;
pub use run::{PIPES_DIR, mount_stage, run_argv, script_heredoc};

#[cfg(test)]
#[path = "dockerfile_tests.rs"]
mod tests;
