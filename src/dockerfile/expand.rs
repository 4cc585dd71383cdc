//! From a parsed Dockerfile, build args and a target to the stages the
//! target needs, with every word Docker substitutes substituted.
//!
//! The rules are BuildKit's:
//! - ARGs before the first FROM are global: each default is substituted
//!   with the global args before it, a build arg replaces it, one declared
//!   without a value is empty (not unset), and they (with the automatic
//!   platform args) are what FROM lines see. Inside a stage a
//!   global arg is visible only after `ARG NAME` re-declares it.
//! - In a stage, ENV and ARG (with a value) set variables in order; a later
//!   one replaces an earlier one of the same name. ENV also goes into the
//!   image config; ARG does not. A stage starts with its base image's env
//!   (PATH set when the base has none); a stage built FROM another starts
//!   with all the other's variables, its ARG values too, as BuildKit's
//!   state carries them, but its own RUNs' build args list only the ARGs it
//!   declares itself.
//! - Words are substituted in ADD, COPY, ENV, EXPOSE, FROM, LABEL,
//!   STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults (unless a build arg
//!   replaces them) and RUN's `--mount` options;
//!   never in RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK or ONBUILD, whose
//!   text the shell (or a later build) reads, and never in `COPY --from` or
//!   a mount's `from` (the parser refuses variables there, as BuildKit does).
//! - A stage that starts from an image runs the image's ONBUILD triggers
//!   first, parsed as Dockerfile lines standing at its FROM, as Docker does.
//! - Each RUN sees the build args its stage declared so far (a variable of
//!   the same name set by ENV shows its value instead): that list, in
//!   declaration order, is what a RUN's cache key covers.

use std::collections::BTreeMap;

use super::Dockerfile;
use super::env::{PROXY_ARGS, Platform, Vars};
use super::error::{DockerfileError, Located, Pos};
use super::instruction::*;
use super::shell::Lex;
use super::target;
use super::values::{ExposedPort, check_signal};
use crate::oci::{Digest, ImageRef};

/// The PATH BuildKit puts into an image whose base sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a build gives the frontend.
pub struct Options<'a> {
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE` (a name, case-insensitive); the last stage when `None`.
    pub target: Option<String>,
    pub platform: Platform,
    /// The config of an image a stage starts from (its env is visible to
    /// substitution, its working directory and shell carry on), when the
    /// caller knows it.
    pub base_config: &'a dyn Fn(&ImageRef) -> BaseConfig,
}

/// What a stage takes over from the image it starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseConfig {
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub shell: Option<Vec<String>>,
    /// The image's ONBUILD triggers (its config's `OnBuild`), which run
    /// right after the FROM, in order, as if written there.
    pub onbuild: Vec<String>,
}

impl BaseConfig {
    /// What an image's config blob (its JSON, `{"config": {"Env": …}}`)
    /// gives a stage built on it; absent fields are empty.
    pub fn from_image_config(blob: &serde_json::Value) -> BaseConfig {
        let c = &blob["config"];
        let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        };
        BaseConfig {
            env: strings(&c["Env"])
                .unwrap_or_default()
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            workdir: c["WorkingDir"].as_str().filter(|w| !w.is_empty()).map(str::to_owned),
            shell: strings(&c["Shell"]),
            onbuild: strings(&c["OnBuild"]).unwrap_or_default(),
        }
    }
}

/// The shell that runs shell-form commands when no SHELL says otherwise.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned()]
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            build_args: BTreeMap::new(),
            target: None,
            platform: Platform::host(),
            base_config: &|_| BaseConfig::default(),
        }
    }
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// `FROM scratch`: empty.
    Scratch,
    /// An image reference, substituted and checked.
    Image(#[serde(serialize_with = "as_text")] ImageRef),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One instruction after substitution, with the variables around it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    pub pos: Pos,
    pub original: String,
    pub instruction: Instruction,
    /// Every variable set when the step runs (image env, ENV, ARG), in order.
    pub env: Vars,
    /// The build args the step can see, in declaration order (RUN's cache key).
    pub build_args: Vars,
    /// The working directory the step runs in.
    pub workdir: String,
    /// The shell for shell-form commands ([`CommandLine::argv`]).
    pub shell: Vec<String>,
}

/// A stage after substitution.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExpandedStage {
    /// Its index among all the file's stages.
    pub index: usize,
    pub name: Option<String>,
    pub pos: Pos,
    pub base: Base,
    pub platform: Option<String>,
    pub steps: Vec<Step>,
    /// The image config's env at the end of the stage (base env + ENV, and
    /// PATH when the base had none).
    pub image_env: Vars,
    /// Every variable set at the end of the stage (ENV and ARG); a stage
    /// built FROM this one starts with them, as in BuildKit.
    pub env: Vars,
    /// The final working directory ("/" when none was set).
    pub workdir: String,
    /// The final shell (SHELL, else the base's, else `/bin/sh -c`).
    pub shell: Vec<String>,
}

/// The stages a target needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Expanded {
    /// The needed stages, each after every stage it depends on.
    pub stages: Vec<ExpandedStage>,
    /// Indexes of needed stages in dependency levels: stages in one level do
    /// not depend on each other and can be built in parallel.
    pub levels: Vec<Vec<usize>>,
    /// The target stage's index.
    pub target: usize,
    /// The global args (after build-arg overrides) and platform args.
    pub global_args: Vars,
    /// Proxy build args, passed to every RUN but kept out of cache keys.
    pub proxy_env: Vars,
    /// Build args no needed stage declares (Docker warns about them).
    pub unused_build_args: Vec<String>,
}

/// Substitutes `file` for a build with `options`.
pub fn expand(file: &Dockerfile, options: &Options<'_>) -> Result<Expanded, DockerfileError> {
    let err = |e: Located| e.in_file(&file.file);
    let lex = Lex::new(file.directives.escape);
    let mut global = options.platform.automatic_args();
    let mut declared: Vec<String> = Vec::new();
    for spanned in &file.meta_args {
        let Instruction::Arg(decls) = &spanned.instruction else { continue };
        for d in decls {
            let value = match (options.build_args.get(&d.name), &d.default) {
                (Some(v), _) => v.clone(),
                (None, Some(def)) => word(&lex, def, &global, spanned.pos).map_err(err)?,
                // BuildKit's global args hold "" for an ARG declared without a value.
                (None, None) => String::new(),
            };
            declared.push(d.name.clone());
            global.set(&d.name, &value);
        }
    }
    let target = target::find_target(file, options.target.as_deref())
        .map_err(|message| DockerfileError::Request { file: file.file.clone(), message })?;
    // What each FROM is decides the graph; only the stages the target needs
    // are then expanded (and only their base images looked at), in file
    // order so that a stage's base stage is done before it.
    let heads: Vec<Result<Head, Located>> = (0..file.stages.len()).map(|i| head(file, i, &lex, &global)).collect();
    let deps: Vec<_> = heads
        .iter()
        .enumerate()
        .map(|(i, h)| h.as_ref().map(|h| target::dependencies(file, i, &h.base)).map_err(Clone::clone))
        .collect();
    let order = target::order(file, &deps, target).map_err(err)?;
    let mut done: Vec<Option<ExpandedStage>> = vec![None; file.stages.len()];
    let mut by_index = order.stages.clone();
    by_index.sort_unstable();
    for i in by_index {
        let head = heads[i].clone().map_err(err)?;
        let stage = expand_stage(file, i, head, &lex, &global, options, &done).map_err(err)?;
        for step in &stage.steps {
            if let Instruction::Arg(decls) = &step.instruction {
                declared.extend(decls.iter().map(|d| d.name.clone()));
            }
        }
        done[i] = Some(stage);
    }
    let needed: Vec<ExpandedStage> = order.stages.iter().filter_map(|i| done[*i].take()).collect();
    let mut proxy_env = Vars::default();
    for name in PROXY_ARGS {
        if let Some(v) = options.build_args.get(name) {
            proxy_env.set(name, v);
        }
    }
    let unused_build_args = options
        .build_args
        .keys()
        .filter(|k| !declared.contains(k) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(Expanded { stages: needed, levels: order.levels, target, global_args: global, proxy_env, unused_build_args })
}

fn word(lex: &Lex, text: &str, vars: &Vars, pos: Pos) -> Result<String, Located> {
    let lookup = vars.lookup();
    lex.word(text, &lookup).map_err(|e| Located::new(pos, e))
}

/// A stage's FROM, substituted with the global args.
#[derive(Clone)]
struct Head {
    base: Base,
    platform: Option<String>,
}

fn head(file: &Dockerfile, index: usize, lex: &Lex, global: &Vars) -> Result<Head, Located> {
    let stage = &file.stages[index];
    let from = stage.base();
    let pos = stage.from.pos;
    let image = word(lex, &from.image, global, pos)?;
    let platform = from.platform.as_ref().map(|p| word(lex, p, global, pos)).transpose()?;
    // FROM names only an earlier stage; anything else is an image.
    let earlier = file.stages[..index].iter().position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(&image)));
    let base = match earlier {
        Some(i) => Base::Stage(i),
        None if image == "scratch" => Base::Scratch,
        None if image.is_empty() => {
            return Err(Located::new(pos, format!("FROM {}: the image name is empty after substitution", from.image)));
        }
        None => Base::Image(image.parse().map_err(|e| Located::new(pos, format!("FROM {}: {e}", from.image)))?),
    };
    Ok(Head { base, platform })
}

fn expand_stage(
    file: &Dockerfile,
    index: usize,
    head: Head,
    lex: &Lex,
    global: &Vars,
    options: &Options<'_>,
    done: &[Option<ExpandedStage>],
) -> Result<ExpandedStage, Located> {
    let stage = &file.stages[index];
    let pos = stage.from.pos;
    let Head { base, platform } = head;
    let mut triggers: Vec<Spanned> = Vec::new();
    let (mut image_env, mut workdir, mut env, mut shell) = match &base {
        Base::Stage(i) => {
            let p = done[*i]
                .as_ref()
                .ok_or_else(|| Located::new(pos, "the stage this one starts from was not expanded"))?;
            // BuildKit starts from the parent's state, whose variables include its ARGs.
            (p.image_env.clone(), p.workdir.clone(), p.env.clone(), p.shell.clone())
        }
        Base::Scratch => (Vars::default(), "/".to_owned(), Vars::default(), default_shell()),
        Base::Image(reference) => {
            let config = (options.base_config)(reference);
            let workdir =
                config.workdir.filter(|w| !w.is_empty()).map_or_else(|| "/".to_owned(), |w| join_path("/", &w));
            let shell = config.shell.filter(|s| !s.is_empty()).unwrap_or_else(default_shell);
            triggers = onbuild_triggers(&config.onbuild, reference, pos)?;
            (Vars(config.env), workdir, Vars::default(), shell)
        }
    };
    // BuildKit makes sure PATH is always set, in the image config too.
    if image_env.get("PATH").is_none() {
        image_env.set("PATH", DEFAULT_PATH);
    }
    for (k, v) in &image_env.0 {
        env.set(k, v);
    }
    let mut args: Vec<(String, Option<String>)> = Vec::new();
    let mut steps = Vec::new();
    for spanned in triggers.iter().chain(&stage.instructions) {
        let pos = spanned.pos;
        let w = |text: &str, env: &Vars| word(lex, text, env, pos);
        let instruction = match &spanned.instruction {
            Instruction::Env(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((w(k, &env)?, w(v, &env)?));
                }
                for (k, v) in &out {
                    env.set(k, v);
                    image_env.set(k, v);
                }
                Instruction::Env(out)
            }
            Instruction::Label(pairs) => {
                Instruction::Label(pairs.iter().map(|(k, v)| Ok((w(k, &env)?, w(v, &env)?))).collect::<Result<_, _>>()?)
            }
            Instruction::Arg(decls) => {
                let mut out = Vec::new();
                for d in decls {
                    // BuildKit substitutes neither the name nor, when a build arg is given, the default.
                    let name = d.name.clone();
                    let value = match (options.build_args.get(&name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(w(def, &env)?),
                        (None, None) => global.get(&name).map(str::to_owned),
                    };
                    if let Some(v) = &value {
                        env.set(&name, v);
                    }
                    args.push((name.clone(), value.clone()));
                    out.push(ArgDecl { name, default: value });
                }
                Instruction::Arg(out)
            }
            Instruction::Add(a) => Instruction::Add(Add {
                sources: sources(&a.sources, lex, &env, pos)?,
                checksum: a.checksum.as_deref().map(|v| checksum(&w(v, &env)?, &a.sources, pos)).transpose()?,
                chown: a.chown.as_deref().map(|v| w(v, &env)).transpose()?,
                chmod: a.chmod.as_deref().map(|v| w(v, &env)).transpose()?,
                exclude: a.exclude.iter().map(|v| w(v, &env)).collect::<Result<_, _>>()?,
                ..a.clone()
            }),
            Instruction::Copy(c) => Instruction::Copy(Copy {
                sources: sources(&c.sources, lex, &env, pos)?,
                chown: c.chown.as_deref().map(|v| w(v, &env)).transpose()?,
                chmod: c.chmod.as_deref().map(|v| w(v, &env)).transpose()?,
                exclude: c.exclude.iter().map(|v| w(v, &env)).collect::<Result<_, _>>()?,
                ..c.clone()
            }),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                let lookup = env.lookup();
                for p in ports {
                    // EXPOSE splits after substitution: `EXPOSE $PORTS` may expose several.
                    let words = lex.process(p, &lookup).map_err(|e| Located::new(pos, e))?.words;
                    for text in words {
                        let port: ExposedPort = text.parse().map_err(|m: String| Located::new(pos, m))?;
                        out.push(port.to_string());
                    }
                }
                Instruction::Expose(out)
            }
            Instruction::Volume(v) => Instruction::Volume(v.iter().map(|p| w(p, &env)).collect::<Result<_, _>>()?),
            Instruction::User(u) => Instruction::User(w(u, &env)?),
            Instruction::StopSignal(s) => {
                let s = w(s, &env)?;
                check_signal(&s).map_err(|m| Located::new(pos, m))?;
                Instruction::StopSignal(s)
            }
            Instruction::Workdir(d) => {
                let d = w(d, &env)?;
                workdir = join_path(&workdir, &d);
                Instruction::Workdir(workdir.clone())
            }
            Instruction::Run(r) => {
                let mut r = r.clone();
                for m in &mut r.mounts {
                    // A relative target is under the working directory, as BuildKit has it.
                    m.target = join_path(&workdir, &w(&m.target, &env)?);
                    m.source = m.source.as_deref().map(|v| w(v, &env)).transpose()?;
                    m.id = m.id.as_deref().map(|v| w(v, &env)).transpose()?;
                }
                Instruction::Run(r)
            }
            Instruction::Shell(sh) => {
                shell = sh.clone();
                Instruction::Shell(sh.clone())
            }
            other => other.clone(),
        };
        let mut build_args = Vars::default();
        for (k, v) in &args {
            let seen = env.get(k).map(str::to_owned).or_else(|| v.clone()).unwrap_or_default();
            build_args.set(k, &seen);
        }
        steps.push(Step {
            pos,
            original: spanned.original.clone(),
            instruction,
            env: env.clone(),
            build_args,
            workdir: workdir.clone(),
            shell: shell.clone(),
        });
    }
    Ok(ExpandedStage {
        index,
        name: stage.name().map(str::to_owned),
        pos,
        base,
        platform,
        steps,
        image_env,
        env,
        workdir,
        shell,
    })
}

/// An image's ONBUILD triggers as instructions standing at its FROM (`pos`),
/// parsed as Docker parses them: each trigger's text as a Dockerfile line
/// with the default escape character.
fn onbuild_triggers(texts: &[String], image: &ImageRef, pos: Pos) -> Result<Vec<Spanned>, Located> {
    let mut out = Vec::new();
    for text in texts {
        let bad = |e: Located| {
            Located::new(
                pos,
                format!(
                    "FROM {}: its ONBUILD trigger `{text}` does not parse: {}; rebuild the image without it",
                    image.familiar_tag(),
                    e.message
                ),
            )
        };
        let lexed = super::lexer::lex(text).map_err(bad)?;
        for line in &lexed.lines {
            let mut spanned = super::parse::parse_line(line, '\\').map_err(bad)?;
            if matches!(
                spanned.instruction,
                Instruction::From(_) | Instruction::Onbuild(_) | Instruction::Maintainer(_)
            ) {
                return Err(bad(Located::new(
                    pos,
                    format!("{} isn't allowed as an ONBUILD trigger", spanned.instruction.name()),
                )));
            }
            spanned.pos = pos;
            out.push(spanned);
        }
    }
    Ok(out)
}

fn sources(s: &Sources, lex: &Lex, env: &Vars, pos: Pos) -> Result<Sources, Located> {
    let lookup = env.lookup();
    let w = |t: &str| lex.word(t, &lookup).map_err(|e| Located::new(pos, e));
    // Heredoc bodies keep their quotes; only variables and `\` escapes are processed.
    let body = Lex { escape: '\\', raw_quotes: false, raw_escapes: false, skip_unset: false };
    let mut inline = Vec::new();
    for f in &s.inline {
        let data =
            if f.expand { body.body(&f.data, &lookup).map_err(|e| Located::new(pos, e))? } else { f.data.clone() };
        inline.push(InlineFile { data, ..f.clone() });
    }
    Ok(Sources { paths: s.paths.iter().map(|p| w(p)).collect::<Result<_, _>>()?, inline, dest: w(&s.dest)? })
}

/// `ADD --checksum`: a digest, for sources fetched over HTTP(S) only.
fn checksum(value: &str, sources: &Sources, pos: Pos) -> Result<String, Located> {
    let digest: Digest = value.parse().map_err(|e| Located::new(pos, format!("ADD --checksum={value}: {e}")))?;
    let local = sources.paths.iter().find(|p| !(p.starts_with("http://") || p.starts_with("https://")));
    if let Some(p) = local.or(sources.inline.first().map(|f| &f.name)) {
        return Err(Located::new(
            pos,
            format!(
                "ADD --checksum checks what is fetched from a URL, but {p:?} is no http:// or https:// URL; drop --checksum or fetch a URL"
            ),
        ));
    }
    Ok(digest.to_string())
}

fn as_text<S: serde::Serializer>(value: &ImageRef, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// `base` joined with `p` as WORKDIR does: absolute paths replace, `.` and
/// `..` are cleaned.
pub fn join_path(base: &str, p: &str) -> String {
    let joined = if p.starts_with('/') { p.to_owned() } else { format!("{base}/{p}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}
