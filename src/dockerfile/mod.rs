//! The Dockerfile frontend, stage 1: reading a Dockerfile exactly as
//! BuildKit's frontend does, into typed instructions — no building yet.
//!
//! The pipeline, each step in its own file:
//! 1. [`lexer`]: parser directives (`# escape=`, `# syntax=`, `# check=`),
//!    comments, line continuations, heredoc bodies → logical lines.
//! 2. [`words`] and [`parse`]: each logical line → one [`Instruction`] with
//!    its flags typed and checked (`flags.rs`, [`mount`], [`health`]); words
//!    stay as written, because substitution depends on the build's
//!    arguments.
//! 3. [`expand()`](fn@expand): a parsed [`Dockerfile`] + build args + target → the stages
//!    the target needs, with every word Docker substitutes substituted
//!    ([`shell`] holds Docker's substitution rules, [`env`](mod@env) the variable
//!    lists and automatic args, [`values`] the values checked after
//!    substitution), the build args each RUN can see, and the order in which
//!    stages can be built ([`target`]).
//!
//! [`ignore`] reads `.dockerignore` files and matches paths as Docker's
//! patternmatcher does. Every error names `Dockerfile:LINE:COL`, says what
//! is wrong and what would be right. Like `manifest/`, this module reads
//! only the files it is given and touches nothing else; it is an input
//! beside `manifest/` and is not wired into `berth build` yet.

pub mod env;
pub mod error;
pub mod expand;
mod flags;
pub mod health;
pub mod ignore;
pub mod instruction;
pub mod lexer;
pub mod mount;
pub mod parse;
pub mod shell;
pub mod target;
pub mod values;
pub mod words;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_expand;
#[cfg(test)]
mod tests_fixtures;
#[cfg(test)]
mod tests_ignore;

use std::path::{Path, PathBuf};

pub use error::{DockerfileError, Pos, Warning};
pub use expand::{Base, BaseConfig, Expanded, ExpandedStage, Options, Step, expand};
pub use instruction::{Instruction, Spanned};
pub use lexer::{Directives, Heredoc};

/// A parsed Dockerfile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dockerfile {
    /// The file, as named by the caller (used in errors).
    pub file: PathBuf,
    pub directives: Directives,
    /// What BuildKit would warn about (empty continuation lines).
    pub warnings: Vec<Warning>,
    /// The ARG instructions before the first FROM (global scope).
    pub meta_args: Vec<Spanned>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stage {
    /// The FROM instruction (always an [`Instruction::From`]).
    pub from: Spanned,
    pub instructions: Vec<Spanned>,
}

impl Stage {
    /// The FROM instruction's values.
    pub fn base(&self) -> &instruction::FromImage {
        match &self.from.instruction {
            Instruction::From(f) => f,
            _ => unreachable!("a stage always starts with FROM"),
        }
    }

    /// The stage's name (`FROM … AS name`), lower-cased.
    pub fn name(&self) -> Option<&str> {
        self.base().name.as_deref()
    }
}

/// Reads and parses the Dockerfile at `path`.
pub fn load(path: &Path) -> Result<Dockerfile, DockerfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| DockerfileError::Read { path: path.into(), source })?;
    parse_str(&text, path)
}

/// Parses Dockerfile text as if it were the file `file`.
pub fn parse_str(text: &str, file: &Path) -> Result<Dockerfile, DockerfileError> {
    let lexed = lexer::lex(text).map_err(|e| e.in_file(file))?;
    let escape = lexed.directives.escape;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let last_line = text.lines().count().max(1);
    for line in &lexed.lines {
        let spanned = parse::parse_line(line, escape).map_err(|e| e.in_file(file))?;
        match (&spanned.instruction, stages.last_mut()) {
            (Instruction::From(f), _) => {
                if let Some(name) = &f.name
                    && let Some(other) = stages.iter().find(|s| s.name() == Some(name))
                {
                    return Err(error::Located::new(
                        spanned.pos,
                        format!(
                            "duplicate stage name {name:?}: line {} already names a stage so; rename one",
                            other.from.pos.line
                        ),
                    )
                    .in_file(file));
                }
                stages.push(Stage { from: spanned, instructions: Vec::new() });
            }
            (Instruction::Arg(_), None) => meta_args.push(spanned),
            (other, None) => {
                return Err(error::Located::new(
                    spanned.pos,
                    format!("{} comes before the first FROM; only ARG may stand before FROM", other.name()),
                )
                .in_file(file));
            }
            (_, Some(stage)) => stage.instructions.push(spanned),
        }
    }
    if stages.is_empty() {
        return Err(error::Located::new(
            Pos::new(last_line, 1),
            "the Dockerfile has no FROM; a build needs at least one stage: FROM IMAGE",
        )
        .in_file(file));
    }
    Ok(Dockerfile { file: file.to_owned(), directives: lexed.directives, warnings: lexed.warnings, meta_args, stages })
}
