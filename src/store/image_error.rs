//! The error type of the store's image operations: importing a rootfs,
//! resolving an image by name or ID, and unpacking its layers.
//!
//! Store-level failures (I/O, missing blobs, bad tag names) pass through as
//! [`StoreError`]; the variants here name the image, layer or input they
//! were working on and say what would be right.

use super::StoreError;
use crate::oci::{Digest, DigestError, TarWriteError, UnpackError};

/// Everything that can go wrong importing, resolving or unpacking images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(
        "the input is not a readable filesystem tar: {source}; expected a plain or gzip-compressed tar of a filesystem tree"
    )]
    ImportTar { source: UnpackError },

    #[error("the rootfs tar holds no entries; expected a plain or gzip-compressed tar of a filesystem tree")]
    EmptyRootfs,

    #[error("cannot write the imported tree as a layer blob: {source}")]
    WriteLayer { source: TarWriteError },

    #[error("cannot encode the {what} of the new image: {source}")]
    Encode { what: &'static str, source: serde_json::Error },

    #[error("no image named {name:?} in the store; `berth images` lists them")]
    NotFound { name: String },

    #[error(
        "no image named {name:?} in the store, and an image ID prefix needs at least {min} hex digits; `berth images` lists them"
    )]
    ShortPrefix { name: String, min: usize },

    #[error("image ID prefix {prefix:?} matches {} images ({}); give more digits or a tag", matches.len(), list(matches))]
    Ambiguous { prefix: String, matches: Vec<Digest> },

    #[error("image {image}: its {what} {digest} is not in the store (looked for {}); import or pull the image again", path.display())]
    BlobMissing { image: String, what: &'static str, digest: Digest, path: std::path::PathBuf },

    #[error("image {image}: its {what} {digest} is not valid JSON of that kind: {source}")]
    BadBlob { image: String, what: &'static str, digest: Digest, source: serde_json::Error },

    #[error("image {image}: {what} digest {digest:?} is not usable: {source}")]
    BadDigest { image: String, what: &'static str, digest: String, source: DigestError },

    #[error(
        "image {image}: the manifest lists {layers} layers but the config lists {diff_ids} diff_ids; the image is inconsistent, import or pull it again"
    )]
    LayerCount { image: String, layers: usize, diff_ids: usize },

    #[error(
        "image {image}: layer {layer} has media type {media_type:?}, which berth cannot unpack; expected an OCI or Docker tar or tar+gzip layer, or an OCI tar+zstd layer"
    )]
    LayerMediaType { image: String, layer: Digest, media_type: String },

    #[error("image {image}: layer {layer} cannot be unpacked: {source}")]
    UnpackLayer { image: String, layer: Digest, source: UnpackError },

    #[error(
        "image {image}: layer {layer} unpacks to content with diffID {actual}, but the config says {expected}; the blob is corrupt or was tampered with, so it was not used (remove it and pull or import the image again)"
    )]
    DiffIdMismatch { image: String, layer: Digest, expected: Digest, actual: Digest },
}

impl ImageError {
    /// Parses a digest written in `image`'s manifest or config (`what` says
    /// which one, such as "layer"), naming both on failure.
    pub(crate) fn parse_digest(image: &str, what: &'static str, digest: &str) -> Result<Digest, ImageError> {
        digest.parse().map_err(|source| ImageError::BadDigest {
            image: image.to_owned(),
            what,
            digest: digest.to_owned(),
            source,
        })
    }
}

fn list(digests: &[Digest]) -> String {
    let shown: Vec<&str> = digests.iter().take(5).map(|d| &d.hex()[..12]).collect();
    let more = if digests.len() > 5 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}
