//! The typed instructions of a Dockerfile, as parsed: words are kept as
//! written (variables not yet substituted, quotes not yet removed, where
//! Docker substitutes later), flags are typed and checked.

use std::time::Duration;

use super::error::Pos;
use super::lexer::Heredoc;
use super::mount::Mount;

/// One instruction with where it stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Spanned {
    /// The position of the instruction word.
    pub pos: Pos,
    /// The last line it covers (continuations and heredocs included).
    pub end_line: usize,
    /// The logical line as written, continuations joined.
    pub original: String,
    pub instruction: Instruction,
}

/// Every instruction BuildKit's frontend knows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Instruction {
    From(FromImage),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    /// Key/value pairs (both forms: `LABEL k=v …` and the old `LABEL k v`).
    Label(Vec<(String, String)>),
    Maintainer(String),
    /// Port words (`80`, `53/udp`, `8000-8010`), sorted as Docker sorts them.
    Expose(Vec<String>),
    /// Key/value pairs (`ENV k=v …` and the old `ENV k v`).
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Add(Add),
    Copy(Copy),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// A trigger stored for images built FROM this one; its text is kept and
    /// it is parsed here only to check it.
    Onbuild(Onbuild),
    StopSignal(String),
    Healthcheck(Health),
    Shell(Vec<String>),
}

impl Instruction {
    /// The instruction's name as Docker spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FromImage {
    pub platform: Option<String>,
    pub image: String,
    /// The stage name, lower-cased as BuildKit does.
    pub name: Option<String>,
}

/// The exec form (a JSON array) or the shell form (one string run by SHELL).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    Exec(Vec<String>),
    Shell(String),
}

/// What RUN, CMD and ENTRYPOINT run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandLine {
    pub form: Form,
    /// Heredocs (RUN only): the first one with no command before it is the script.
    pub heredocs: Vec<Heredoc>,
}

impl CommandLine {
    /// The program and arguments to run: the exec form as written, the shell
    /// form as `shell + [command]` (as Docker runs it).
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match &self.form {
            Form::Exec(v) => v.clone(),
            Form::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
        }
    }
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Default,
    None,
    Host,
}

/// `RUN [--mount=…]… [--network=…] COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<Mount>,
    pub network: Option<Network>,
}

/// One ARG name with its default, if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// An inline file from a heredoc (`COPY <<EOF /etc/x`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InlineFile {
    /// The heredoc's delimiter, which is also the file's name.
    pub name: String,
    /// The body (tabs already stripped for `<<-`).
    pub data: String,
    /// Whether variables in the body are substituted.
    pub expand: bool,
}

/// Sources and destination of ADD and COPY.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sources {
    pub paths: Vec<String>,
    pub inline: Vec<InlineFile>,
    pub dest: String,
}

/// `ADD [--checksum] [--chown] [--chmod] [--link] [--keep-git-dir] [--exclude]… SRC… DEST`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Add {
    pub sources: Sources,
    pub checksum: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub exclude: Vec<String>,
}

/// `COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]… SRC… DEST`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copy {
    pub sources: Sources,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

/// `ONBUILD INSTRUCTION`: the trigger's text (as Docker stores it in the
/// image config) and the trigger parsed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Onbuild {
    pub expression: String,
    pub trigger: Box<Instruction>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [OPTIONS] CMD …`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Turns off a health check inherited from the base image.
    None,
    Check(HealthCheck),
}

/// A health check as the image config holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthCheck {
    /// `["CMD", args…]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}
