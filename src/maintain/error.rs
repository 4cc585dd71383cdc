//! The error type of store maintenance: what stopped gc, df or fsck, with
//! the path or root it was looking at and what would be right.

use std::path::PathBuf;

use crate::runtime::container::ContainerError;
use crate::store::StoreError;

/// Everything that can stop `gc`, `system df` or `fsck`.
#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Container(#[from] ContainerError),

    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },

    #[error("{what} needs the store's exclusive lock, but a shared one is held; nothing was changed")]
    NeedsExclusiveLock { what: &'static str },

    #[error(
        "cannot tell what {root} needs: {reason}; nothing was removed. Run `berth fsck` to see what is damaged, then remove the tag (`berth rmi`) or container (`berth rm`) or restore the blob"
    )]
    UnreadableRoot { root: String, reason: String },

    #[error("{}: {reason}", path.display())]
    BadIndex { path: PathBuf, reason: String },

    #[error(
        "bad size {input:?}: {reason}; expected a number with an optional unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), as in \"500MB\" or \"2GiB\""
    )]
    BadSize { input: String, reason: &'static str },
}

impl MaintainError {
    /// An I/O failure while doing `action` ("list", "remove", …) on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> MaintainError {
        let path = path.into();
        move |source| MaintainError::Io { action, path, source }
    }
}
