//! The OCI image format: digests, descriptors, image configs and manifests
//! (through the `oci-spec` crate), reproducible layer tar writing (plain,
//! gzip or zstd), safe tar reading, and image archives (`archive`).
//!
//! This module knows files and formats only; it knows nothing of containers,
//! manifests or the store's layout.

pub mod archive;
pub mod digest;
pub mod image;
mod layer_sink;
pub mod reference;
mod tar_header;
mod tar_name;
pub mod tar_read;
mod tar_root;
mod tar_source;
mod tar_unpack;
pub mod tar_write;

#[cfg(test)]
mod tests;

pub use digest::{Digest, DigestError};
pub use image::{ChangeError, ImageConfigInput};
pub use layer_sink::{ZSTD_LEVEL, zstd_encoder};
pub use reference::{ImageRef, ReferenceError};
pub use tar_read::{UnpackError, UnpackOptions, UnpackStats, Whiteouts, unpack, unpack_compressed};
pub use tar_write::{
    Beneath, Compression, LayerDigests, LayerWriter, MtimePolicy, Overrides, TarWriteError, source_date_epoch,
    write_tree,
};
