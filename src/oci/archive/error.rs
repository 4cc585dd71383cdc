//! What can be wrong with an image archive, or go wrong writing one.
//!
//! Messages name the entry, blob or JSON file inside the archive and say
//! what would be right; they do not name the archive itself, which the
//! caller puts in front (`x.tar: blob sha256:… is 1234 bytes, its
//! descriptor says 1200`).

use std::io;

use super::blob_name;
use crate::oci::{Digest, DigestError};

/// Everything that can be wrong with an archive being read, or go wrong
/// writing one.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read the archive{}: {source}; expected a tar file (plain, gzip or zstd)", after(.entry))]
    Read { entry: Option<String>, source: io::Error },

    /// The sink could not keep a file the archive was read into (the
    /// archive itself read fine).
    #[error("cannot keep entry {entry} of the archive: {source}")]
    Keep { entry: String, source: io::Error },

    #[error(
        "it is not a tar archive ({source}); expected a tar (plain, gzip or zstd) as `berth save` or `docker save` write"
    )]
    NotATar { source: io::Error },

    #[error("the archive holds no entries; expected a tar of an OCI image layout or a `docker save` archive")]
    Empty,

    #[error(
        "entry {entry} is cut short: its tar header says {expected} bytes but the archive ends after {actual}; the archive is truncated"
    )]
    TruncatedEntry { entry: String, expected: u64, actual: u64 },

    #[error("entry {entry} is cut short: the archive ends inside it; it is truncated")]
    TruncatedIn { entry: String },

    #[error("the archive ends without the tar end-of-archive marker{}; it is truncated", after(.last))]
    TruncatedEnd { last: Option<String> },

    #[error("entry {entry:?} {reason}")]
    BadEntryName { entry: String, reason: &'static str },

    #[error(
        "entry {entry} has tar type {kind}, which an image archive never holds; expected files, directories and links"
    )]
    UnsupportedEntry { entry: String, kind: String },

    #[error("entry {entry} appears twice; an image archive names each file once")]
    DuplicateEntry { entry: String },

    #[error(
        "the archive's small files and JSON add up to more than {limit} bytes held in memory; this is not an image archive berth can read"
    )]
    TooMuchMetadata { limit: u64 },

    #[error(
        "the {what} {} holds content with digest {actual}, not the digest its name says; the archive is corrupt",
        blob_name(.expected)
    )]
    BlobNameMismatch { what: &'static str, expected: Digest, actual: Digest },

    #[error(
        "it is not an image archive: {why}; expected an OCI image layout (oci-layout, index.json, blobs/) or a `docker save` archive (manifest.json)"
    )]
    NotAnImageArchive { why: String },

    #[error("{file} is not {what}: {source}")]
    Json { file: String, what: &'static str, source: serde_json::Error },

    #[error("its OCI layout version is {found:?}; berth reads version 1.0.0")]
    LayoutVersion { found: String },

    #[error("the {what} blob {digest} is not in the archive (expected the file {file})")]
    BlobMissing { what: &'static str, digest: Digest, file: String },

    #[error("{file}, named as the {what} by manifest.json, is not in the archive")]
    FileMissing { what: &'static str, file: String },

    #[error("{entry} is a link to {target:?}, which {why}")]
    BadLink { entry: String, target: String, why: &'static str },

    #[error("the {what} {name} leads out of the archive{}; an image archive's names and links stay inside it", through(.link))]
    LeadsOut { what: &'static str, name: String, link: Option<(String, String)> },

    #[error("blob {digest} is {actual} bytes, its descriptor says {expected}")]
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },

    #[error("the {what} {digest} has media type {found:?}; expected {expected}")]
    MediaType { what: &'static str, digest: String, found: String, expected: &'static str },

    #[error(
        "blob {digest} is listed as {listed:?} but its own mediaType is {own:?}; a manifest or image index must have the media type its descriptor gives"
    )]
    OwnMediaType { digest: Digest, listed: String, own: String },

    #[error(
        "blob {digest} is listed as {listed:?} but is an image index (it has \"manifests\"); expected an image manifest"
    )]
    IndexAsManifest { digest: Digest, listed: String },

    #[error("the {what} digest {digest:?} is not usable: {source}")]
    BadDigest { what: &'static str, digest: String, source: DigestError },

    #[error("blob {digest} uses {algorithm}; berth reads sha256 blobs")]
    Algorithm { digest: Digest, algorithm: &'static str },

    #[error("image index {digest} has no manifest for {wanted} (it has: {})", list_or_none(.available))]
    NoPlatform { digest: Digest, wanted: String, available: Vec<String> },

    #[error("image indexes nest more than {0} deep; berth follows at most that many")]
    Nesting(usize),

    #[error("image {image} lists {layers} layers but its config lists {diff_ids} diff_ids; the image is inconsistent")]
    LayerCount { image: String, layers: usize, diff_ids: usize },

    #[error("{file} is {size} bytes, more than the {limit} bytes berth reads as {what}")]
    TooLarge { file: String, what: &'static str, size: u64, limit: u64 },

    #[error("{file} is an uncompressed layer with digest {actual}, but the config gives its diffID as {expected}")]
    LegacyDiffId { file: String, expected: Digest, actual: Digest },

    #[error("{file} has digest {actual}, but its name says {expected}")]
    ConfigDigest { file: String, expected: Digest, actual: Digest },

    #[error("cannot write the archive: {source}")]
    Write { source: io::Error },

    #[error("cannot read blob {digest} to write it into the archive: {source}")]
    ReadBlob { digest: Digest, source: io::Error },

    #[error(
        "blob {digest} in the store has {what} {actual}, not {expected}; the store is damaged (run `berth fsck`), so no archive was written"
    )]
    BlobChanged { digest: Digest, what: &'static str, expected: String, actual: String },

    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
}

fn after(entry: &Option<String>) -> String {
    entry.as_ref().map(|e| format!(" after entry {e}")).unwrap_or_default()
}

fn through(link: &Option<(String, String)>) -> String {
    link.as_ref().map(|(entry, target)| format!(" through the link {entry} -> {target:?}")).unwrap_or_default()
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "no platforms".to_owned() } else { items.join(", ") }
}
