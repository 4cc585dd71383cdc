//! The store's one error type.
//!
//! Every variant names what it was working on (a path, a tag, a digest) and
//! carries the underlying cause, so a message read alone says what went wrong,
//! where, and what would be right.

use std::io;
use std::path::PathBuf;

use super::unwritable::{WriteProblem, lift};
use crate::oci::{Digest, DigestError};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store root {} exists but is not a directory; point --root or BERTH_ROOT at a directory", root.display())]
    RootNotDirectory { root: PathBuf },

    #[error(
        "cannot create the berth store at {}: {source}; run as root, or choose a writable directory with --root or BERTH_ROOT",
        root.display()
    )]
    RootNotWritable { root: PathBuf, source: io::Error },

    #[error(
        "{} is not a berth store: it holds {entry:?} but no oci/oci-layout; choose a new or empty directory with --root or BERTH_ROOT",
        root.display()
    )]
    NotAStore { root: PathBuf, entry: String },

    #[error("{}: not a valid OCI layout marker ({source}); expected {{\"imageLayoutVersion\":\"1.0.0\"}}", path.display())]
    BadLayoutMarker { path: PathBuf, source: serde_json::Error },

    #[error("{}: OCI image layout version {found:?} is not supported; berth reads and writes version 1.0.0", path.display())]
    LayoutVersion { path: PathBuf, found: String },

    #[error(
        "cannot choose a store root: not running as root, and neither XDG_DATA_HOME nor HOME is set to an absolute path; pass --root or set BERTH_ROOT"
    )]
    NoDefaultRoot,

    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },

    /// A write into the store that its filesystem did not take (see
    /// `store::unwritable`): never the input's fault.
    #[error("cannot {doing} {}: {problem} ({source}); {}", path.display(), problem.advice())]
    Unwritable { doing: String, path: PathBuf, problem: WriteProblem, source: Box<dyn std::error::Error + Send + Sync> },

    #[error("blob {digest} is not in the store (looked for {})", path.display())]
    BlobMissing { digest: Digest, path: PathBuf },

    #[error(
        "content received for {expected} has digest {actual}; the data is corrupt or the expected digest is wrong, so nothing was stored"
    )]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error(
        "{}: not a valid OCI image index ({source}); repair it, or replace it with {{\"schemaVersion\":2,\"manifests\":[]}} to drop all tags",
        path.display()
    )]
    BadIndex { path: PathBuf, source: serde_json::Error },

    #[error(
        "invalid image name {name:?}: {reason}; expected repository[:tag] without whitespace, such as \"app\" or \"app:1.0\""
    )]
    BadTagName { name: String, reason: &'static str },

    #[error("tag {name}: descriptor digest {digest} is not usable: {source}")]
    BadTagDigest { name: String, digest: String, source: DigestError },

    #[error("cannot tag {name}: manifest {digest} is not in the store (looked for {}); store the manifest blob first", path.display())]
    TagTargetMissing { name: String, digest: Digest, path: PathBuf },

    #[error(
        "image {tag}: its {what} {digest} is missing from the store (looked for {}); remove the tag or build the image again",
        path.display()
    )]
    ImageBlobMissing { tag: String, what: &'static str, digest: Digest, path: PathBuf },

    #[error("image {tag}: its {what} {digest} ({}) is not valid JSON of that kind: {source}", path.display())]
    BadImageBlob { tag: String, what: &'static str, digest: Digest, path: PathBuf, source: serde_json::Error },

    #[error("{}: cache entry cannot be read ({source}); delete the file and the step will be rebuilt", path.display())]
    BadCacheEntry { path: PathBuf, source: serde_json::Error },

    #[error("cannot encode {what} for {}: {source}", path.display())]
    Encode { what: &'static str, path: PathBuf, source: serde_json::Error },
}

impl StoreError {
    /// An I/O failure while doing `action` ("read", "create", …) on `path`;
    /// [`StoreError::Unwritable`] when the store's filesystem is full, over
    /// quota or read-only, or the error carries the store's own error.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| classify(action, path, source, WriteProblem::of)
    }

    /// Like [`io`](Self::io) for a write into the store, where EIO is the
    /// store's filesystem failing too.
    pub(crate) fn write(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| classify(action, path, source, WriteProblem::of_write)
    }
}

fn classify(
    action: &'static str,
    path: PathBuf,
    source: io::Error,
    problem: fn(&io::Error) -> Option<WriteProblem>,
) -> StoreError {
    let source = match lift(source) {
        Ok(store) => return store,
        Err(source) => source,
    };
    match problem(&source) {
        Some(problem) => StoreError::Unwritable { doing: action.to_owned(), path, problem, source: Box::new(source) },
        None => StoreError::Io { action, path, source },
    }
}
