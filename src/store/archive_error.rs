//! The error type of `berth load` and `berth save` on the store's side.
//!
//! Every variant that concerns an archive starts with its name (a file
//! path, or "standard input"), so a message read alone says which archive
//! was wrong: `x.tar: blob sha256:… is 1234 bytes, its descriptor says 1200`.

use std::io;
use std::path::PathBuf;

use super::{ImageError, StoreError};
use crate::oci::archive::FormatError;
use crate::oci::{Digest, UnpackError};

/// Everything that can go wrong loading or saving an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{archive}: {source}")]
    Format { archive: String, source: FormatError },

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Image(Box<ImageError>),

    #[error("{archive}: holds no images; nothing was loaded")]
    NoImages { archive: String },

    #[error("{archive}: {source}; nothing was loaded")]
    BadName { archive: String, source: Box<StoreError> },

    #[error("{archive}: layer {file} cannot be read: {source}; nothing was loaded")]
    ReadLayer { archive: String, file: String, source: io::Error },

    #[error("{archive}: layer {file} cannot be unpacked: {source}; nothing was loaded")]
    Unpack { archive: String, file: String, source: Box<UnpackError> },

    #[error(
        "{archive}: layer {file} unpacks to content with diffID {actual}, but the image config says {expected}; the archive is corrupt, so nothing was loaded"
    )]
    DiffId { archive: String, file: String, expected: Digest, actual: Digest },

    #[error("{}: {source}", path.display())]
    Write { path: PathBuf, source: FormatError },

    #[error("cannot {action} {}: {source}", path.display())]
    Output { action: &'static str, path: PathBuf, source: io::Error },
}

impl From<ImageError> for ArchiveError {
    fn from(e: ImageError) -> Self {
        ArchiveError::Image(Box::new(e))
    }
}

impl ArchiveError {
    /// A format error found in the archive `archive`; the store's own error
    /// when what failed was keeping a file in the store (a full disk is not
    /// the archive's fault).
    pub(crate) fn format(archive: &str) -> impl FnOnce(FormatError) -> ArchiveError {
        let archive = archive.to_owned();
        move |source| match source {
            FormatError::Keep { entry, source } => match super::unwritable::lift(source) {
                Ok(store) => ArchiveError::Store(store),
                Err(source) => ArchiveError::Format { archive, source: FormatError::Keep { entry, source } },
            },
            source => ArchiveError::Format { archive, source },
        }
    }
}
