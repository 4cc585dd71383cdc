//! The OCI image format: digests, descriptors, image configs and manifests
//! (through the `oci-spec` crate), reproducible layer tar writing, and safe
//! tar reading.
//!
//! This module knows files and formats only; it knows nothing of containers,
//! manifests or the store's layout.

pub mod digest;

pub mod reference;

pub use digest::{Digest, DigestError};
pub use reference::{ImageRef, ReferenceError};
