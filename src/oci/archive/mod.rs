//! Image archives: the tar files `berth save` writes and `berth load` and
//! `berth inspect FILE.tar` read, in the OCI form (`oci-archive`: an OCI
//! image layout in a tar, as podman, skopeo and Docker 25+ write) and the
//! legacy Docker form (`docker-archive`: `manifest.json` and one tar per
//! layer).
//!
//! Reading is two steps. `read` makes one streaming pass over the tar
//! (entries come in any order), hashing every file, keeping JSON and small
//! files in memory and handing layer files to a [`BlobSink`]: the store
//! stages them in its `tmp/`, [`read_archive`] only hashes them. `contents`
//! then works out the images ([`ArchiveContents`]) and checks every
//! descriptor against the file it names: digest, size, media type. Nothing
//! here decompresses layers; their diffIDs are checked by whoever unpacks
//! them (the store, on load).
//!
//! Writing (`write`) streams the images' blobs from a [`BlobSource`] into a
//! tar, checking each one's size and digest as it goes.
//!
//! This module knows formats only: the store's side of load and save is
//! `store::archive`.

mod contents;
mod error;
mod layout;
mod legacy;
pub mod media;
mod read;
mod write;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::str::FromStr;

pub use contents::{ArchiveContents, ArchiveImage, ArchiveLayer, blob_name, familiar_name, interpret};
pub use error::FormatError;
pub use layout::{choose_platform, host_platform};
pub use media::LayerCompression;
pub use read::{ArchiveFile, BlobSink, Content, Discard, Link, RawArchive, read_stream};
pub use write::{BlobSource, WriteStats, write_archive};

/// The two forms of image archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ArchiveFormat {
    /// An OCI image layout in a tar, with a Docker-style `manifest.json`.
    #[default]
    Oci,
    /// The legacy `docker save` form.
    Docker,
}

impl ArchiveFormat {
    /// The name `--format` takes and messages use.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveFormat::Oci => "oci-archive",
            ArchiveFormat::Docker => "docker-archive",
        }
    }
}

impl fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ArchiveFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci-archive" | "oci" => Ok(ArchiveFormat::Oci),
            "docker-archive" | "docker" => Ok(ArchiveFormat::Docker),
            other => Err(format!("unknown archive format {other:?}; expected oci-archive or docker-archive")),
        }
    }
}

/// Reads the archive at `path` and returns its images, every blob hashed
/// and checked against its descriptor, keeping nothing but the JSON (see
/// the module page). For looking at an archive, and for reading the
/// annotations an image was saved with ([`ArchiveImage::annotation`]).
pub fn read_archive(path: &Path) -> Result<ArchiveContents<()>, FormatError> {
    let file = File::open(path).map_err(|source| FormatError::Read { entry: None, source })?;
    let raw = read_stream(BufReader::with_capacity(256 << 10, file), &mut Discard)?;
    interpret(raw)
}

#[cfg(test)]
mod tests;
