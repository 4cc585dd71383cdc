//! The one error type of base sources. Every variant names the base as the
//! manifest wrote it (`base`, such as `oci-archive:img.tar:v1`), the file
//! it was reading, and what would be right.

use std::io;
use std::path::PathBuf;

use crate::oci::{Digest, DigestError, TarWriteError, UnpackError};
use crate::store::{ArchiveError, ImageError, StoreError};

/// Everything that can go wrong making a base.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("base {base}: {source}")]
    Registry { base: Box<str>, source: Box<crate::registry::RegistryError> },

    #[error(
        "`from = {parent:?}` is not a base source: an env built on another env starts from that env's layers, which the layer graph provides"
    )]
    NotASource { parent: String },

    #[error(
        "`build = {{ context = {context:?} }}` is not a base source: a Dockerfile's stages are nodes of the layer graph, built by `build::dockerfile`"
    )]
    NotABuildSource { context: PathBuf },

    #[error("base {base}: cannot {op} {}: {source}", path.display())]
    Io { base: Box<str>, op: &'static str, path: PathBuf, source: io::Error },

    #[error("base {base}: {} is not {expected}: {why}", path.display())]
    NotThisKind { base: Box<str>, path: PathBuf, expected: &'static str, why: String },

    #[error("base {base}: {} is not valid JSON for {what}: {source}", path.display())]
    BadJson { base: Box<str>, path: PathBuf, what: &'static str, source: serde_json::Error },

    #[error("base {base}: {} names a {what} digest that is not usable: {source}", path.display())]
    BadDigest { base: Box<str>, path: PathBuf, what: &'static str, source: DigestError },

    #[error(
        "base {base}: {} lists no image tagged {tag:?}; tags in it: {}; write the tag as the layout names it",
        index.display(), list_or_none(tags)
    )]
    NoSuchTag { base: Box<str>, index: PathBuf, tag: String, tags: Vec<String> },

    #[error(
        "base {base}: {} lists {count} images and no tag was given; add \":TAG\" to the source with one of: {}",
        index.display(), list_or_none(tags)
    )]
    WhichImage { base: Box<str>, index: PathBuf, count: usize, tags: Vec<String> },

    #[error(
        "base {base}: the image index {digest} has no image for this machine ({wanted}); it has: {}; copy the image for {wanted} into the layout",
        list_or_none(available)
    )]
    NoPlatform { base: Box<str>, digest: Digest, wanted: String, available: Vec<String> },

    #[error(
        "base {base}: {what} {digest} has media type {found:?}, but it is used as {role}; expected {expected}; the layout is inconsistent or was tampered with"
    )]
    MediaType {
        base: Box<str>,
        what: &'static str,
        digest: String,
        found: String,
        role: &'static str,
        expected: &'static str,
    },

    #[error(
        "base {base}: layer {digest} is zstd-compressed ({media_type}), which berth cannot unpack yet; convert it to gzip first, e.g. skopeo copy --dest-compress-format gzip"
    )]
    Zstd { base: Box<str>, digest: String, media_type: String },

    #[error(
        "base {base}: {what} {digest} is not in the layout (looked for {}); the layout is incomplete, write it again",
        path.display()
    )]
    BlobMissing { base: Box<str>, what: &'static str, digest: Digest, path: PathBuf },

    #[error("base {base}: {what} {} resolves outside {}; refusing to read it", path.display(), root.display())]
    Escapes { base: Box<str>, what: &'static str, path: PathBuf, root: PathBuf },

    #[error(
        "base {base}: {what} {} has content {actual}, but {expected} was expected; it is corrupt or was tampered with, so nothing of it was stored",
        path.display()
    )]
    DigestMismatch { base: Box<str>, what: &'static str, path: PathBuf, expected: Digest, actual: Digest },

    #[error(
        "base {base}: {what} {} is {actual} bytes, but its descriptor says {expected}; it is corrupt or was tampered with, so nothing of it was stored",
        path.display()
    )]
    SizeMismatch { base: Box<str>, what: &'static str, path: PathBuf, expected: u64, actual: u64 },

    #[error("base {base}: {what} {digest} uses {algorithm}; berth reads only sha256 blobs")]
    Algorithm { base: Box<str>, what: &'static str, digest: Digest, algorithm: &'static str },

    #[error(
        "base {base}: the manifest lists {layers} layers but the config lists {diff_ids} diff_ids; the image is inconsistent"
    )]
    LayerCount { base: Box<str>, layers: usize, diff_ids: usize },

    #[error("base {base}: {} holds {count} images ({}); berth reads one: save just the one you need", path.display(), tags.join(", "))]
    ManyImages { base: Box<str>, path: PathBuf, count: usize, tags: Vec<String> },

    #[error("base {base}: {source}")]
    Archive { base: Box<str>, source: Box<ArchiveError> },

    #[error("base {base}: cannot unpack {}: {source}", path.display())]
    Unpack { base: Box<str>, path: PathBuf, source: UnpackError },

    #[error("base {base}: {} holds no entries; expected a plain or gzip tar of a filesystem tree", path.display())]
    EmptyRootfs { base: Box<str>, path: PathBuf },

    #[error("base {base}: cannot write the layer: {source}")]
    WriteLayer { base: Box<str>, source: TarWriteError },

    #[error("base {base}: cannot encode the {what}: {source}")]
    Encode { base: Box<str>, what: &'static str, source: serde_json::Error },

    #[error("base {base}: {why}")]
    Tool { base: Box<str>, why: String },

    #[error(
        "base {base}: {tool} failed ({status}); its last output:\n{tail}\ncheck the suite, mirror and components, and that the mirror is reachable"
    )]
    BootstrapFailed { base: Box<str>, tool: String, status: String, tail: String },

    #[error(
        "base {base}: {} still has mounts below it after the bootstrap ({}); it was left in place, unmount them and remove it by hand",
        root.display(), mounts.join(", ")
    )]
    StuckMounts { base: Box<str>, root: PathBuf, mounts: Vec<String> },

    #[error("base {base}: {source}")]
    Store { base: Box<str>, source: Box<StoreError> },

    #[error("base {base}: {source}")]
    Image { base: Box<str>, source: Box<ImageError> },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// Shorthands that attach the base's text to lower-level errors.
pub(super) trait Context<T> {
    fn in_base(self, base: &str) -> Result<T, BaseError>;
}

impl<T> Context<T> for Result<T, StoreError> {
    fn in_base(self, base: &str) -> Result<T, BaseError> {
        self.map_err(|source| BaseError::Store { base: base.into(), source: Box::new(source) })
    }
}

impl<T> Context<T> for Result<T, ImageError> {
    fn in_base(self, base: &str) -> Result<T, BaseError> {
        self.map_err(|source| BaseError::Image { base: base.into(), source: Box::new(source) })
    }
}

/// An I/O error while doing `op` on `path`.
pub(super) fn io_err(base: &str, op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BaseError {
    let (base, path) = (base.into(), path.into());
    move |source| BaseError::Io { base, op, path, source }
}
