//! Dockerfile errors: every problem names `Dockerfile:LINE:COL`, says what is
//! wrong and what would be right, as berth.toml's errors do.

use std::fmt;
use std::path::PathBuf;

/// A place in a Dockerfile: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub fn new(line: usize, col: usize) -> Self {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Something BuildKit accepts but warns about (kept as data, never printed here).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub pos: Pos,
    pub message: String,
}

/// Why a Dockerfile (or its `.dockerignore`) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}:{}: {message}", file.display(), pos)]
    Invalid { file: PathBuf, pos: Pos, message: String },
    /// A problem with the build's request rather than a place in the file
    /// (`--target` naming no stage).
    #[error("{}: {message}", file.display())]
    Request { file: PathBuf, message: String },
}

impl DockerfileError {
    /// Where the problem is, for invalid files.
    pub fn pos(&self) -> Option<Pos> {
        match self {
            DockerfileError::Invalid { pos, .. } => Some(*pos),
            DockerfileError::Read { .. } | DockerfileError::Request { .. } => None,
        }
    }

    /// The message without the file and position.
    pub fn message(&self) -> String {
        match self {
            DockerfileError::Invalid { message, .. } | DockerfileError::Request { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// An error found before the file name is known; [`Located::in_file`] adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    pub message: String,
}

impl Located {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located { pos, message: message.into() }
    }

    pub fn in_file(self, file: impl Into<PathBuf>) -> DockerfileError {
        DockerfileError::Invalid { file: file.into(), pos: self.pos, message: self.message }
    }
}
