//! `berth.toml`: reading, checking and the typed [`Manifest`].
//!
//! Text is parsed into [`raw::RawManifest`] (serde, spans kept), then the
//! checker turns it into a [`Manifest`] in which every value is typed and
//! every cross-reference resolved. Every problem is reported as
//! `file:line:col: what is wrong; what would be right`, and all problems are
//! reported at once. This module touches neither the store nor the system
//! (beyond reading the manifest, checking that copy sources exist,
//! reading the seccomp profiles `security_opt` names and parsing the
//! Dockerfile a `build` names).

mod build_key;
mod check;
pub use check::default_project;
pub mod error;
pub mod lock;
pub mod model;
pub mod raw;
mod suggest;
pub mod values;
mod xref;

use std::path::{Path, PathBuf};

pub use error::{Diagnostic, ManifestError};
pub use lock::{EnvLock, LOCK_FILE, Lock};
pub use model::{Base, Bootstrap, BuildSource, Copy, Env, Health, ImageSource, Limits, Manifest};

/// The manifest's file name in a project directory.
pub const FILE_NAME: &str = "berth.toml";

/// Reads and checks the manifest at `path`. Relative paths inside it start
/// from its directory.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
    let dir = project_dir(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
    check::check(&text, path, &dir)
}

/// Checks manifest text as if it were the file `file` in directory `dir`.
pub fn parse(text: &str, file: &Path, dir: &Path) -> Result<Manifest, ManifestError> {
    check::check(text, file, dir)
}

/// The absolute directory holding the manifest at `path`.
fn project_dir(path: &Path) -> std::io::Result<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Resolves `..` and symlinks, so the project is named after the real directory.
    parent.canonicalize()
}

/// A commented starter manifest for a project named `project`.
pub fn starter(project: &str) -> String {
    include_str!("starter.toml").replace("{project}", project)
}

/// The manifest for a directory: `berth.toml` in `start` or the nearest
/// directory above it that has one (as `docker compose` looks for its file).
pub fn find(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join(FILE_NAME)).find(|p| p.is_file())
}
