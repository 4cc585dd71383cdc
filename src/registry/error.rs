//! The registry client's one error type.
//!
//! Each variant names the registry (as the reference wrote it, such as
//! `127.0.0.1:5000`), the repository, tag or digest it was working on, and
//! says what would be right: the messages are what a user reads when a
//! pull or push fails.

use std::io;
use std::path::PathBuf;

use crate::oci::{Digest, ReferenceError};
use crate::store::{ImageError, StoreError};

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error(
        "cannot reach the registry {registry} ({url}): {why}; check that it is running and that the address is right"
    )]
    Unreachable { registry: String, url: String, why: String },

    #[error(
        "TLS with the registry {registry} failed: {why}; if it uses a private certificate authority, pass --ca-cert FILE (or list the file under ca-certs in registries.toml){}",
        plain_hint(*.loopback)
    )]
    Tls { registry: String, why: String, loopback: bool },

    #[error(
        "the registry {registry} refused {what}: unauthorized{}; log in with `berth login {registry}`, or check the user name and password",
        detail(message)
    )]
    Unauthorized { registry: String, what: String, message: String },

    #[error("the registry {registry} denied {what}{}; the account may lack access to this repository", detail(message))]
    Denied { registry: String, what: String, message: String },

    #[error("{registry}/{repository}: no such repository in that registry{}; check the name", detail(message))]
    UnknownRepository { registry: String, repository: String, message: String },

    #[error("{registry}/{repository}: no tag {tag:?} in that repository{}; check the tag", detail(message))]
    UnknownTag { registry: String, repository: String, tag: String, message: String },

    #[error("{registry}/{repository}: no manifest {digest} in that repository{}", detail(message))]
    UnknownManifest { registry: String, repository: String, digest: Digest, message: String },

    #[error("{registry}/{repository}: blob {digest} is not in that repository{}", detail(message))]
    UnknownBlob { registry: String, repository: String, digest: Digest, message: String },

    #[error("the registry {registry} answered {what} with HTTP {status}{}", detail(message))]
    Status { registry: String, what: String, status: u16, message: String },

    #[error("the registry {registry} failed during {what}: {why}")]
    Transfer { registry: String, what: String, why: String },

    #[error(
        "{what} {expected} from {registry} has content {actual}: it is corrupt or was tampered with, so it was refused and nothing of the image was stored"
    )]
    DigestMismatch { registry: String, what: String, expected: Digest, actual: Digest },

    #[error(
        "{what} {digest} from {registry} is {actual} bytes, but its descriptor says {expected}: it is corrupt or was tampered with, so it was refused and nothing of the image was stored"
    )]
    SizeMismatch { registry: String, what: String, digest: Digest, expected: u64, actual: u64 },

    #[error("{what} from {registry} is not usable: {why}")]
    BadContent { registry: String, what: String, why: String },

    #[error(
        "{reference}: the image index {digest} has no image for {wanted}; it has: {}; pass --platform with one of them",
        if available.is_empty() { "none".to_owned() } else { available.join(", ") }
    )]
    NoPlatform { reference: String, digest: Digest, wanted: String, available: Vec<String> },

    #[error("bad platform {0:?}: expected OS/ARCH[/VARIANT], such as linux/amd64 or linux/arm64/v8")]
    BadPlatform(String),

    #[error("the token service {realm} of {registry} answered badly: {why}")]
    Token { registry: String, realm: String, why: String },

    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },

    #[error("{input:?} is not a registry: {why}")]
    BadRegistry { input: String, why: String },

    #[error("{} is not valid: {why}", path.display())]
    BadFile { path: PathBuf, why: String },

    #[error(
        "cannot find a configuration directory for credentials: neither XDG_CONFIG_HOME nor HOME is set to an absolute path"
    )]
    NoConfigDir,

    #[error(
        "{registry}: searching needs the registry's catalog, which it refused (HTTP {status}); not every registry offers one"
    )]
    NoCatalog { registry: String, status: u16 },

    #[error("the transfer was stopped because another one failed")]
    Cancelled,

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Image(#[from] Box<ImageError>),
}

fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}

fn plain_hint(loopback: bool) -> &'static str {
    if loopback { "" } else { "; if it serves plain HTTP, list it in BERTH_INSECURE_REGISTRIES" }
}

impl RegistryError {
    /// An I/O failure while doing `action` on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> RegistryError {
        let path = path.into();
        move |source| RegistryError::Io { action, path, source }
    }

    /// Whether trying again may help: the connection broke, or the
    /// registry answered with a server error.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transfer { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl From<ImageError> for RegistryError {
    fn from(e: ImageError) -> Self {
        RegistryError::Image(Box::new(e))
    }
}
