//! Input hashing of copied trees (placeholder until the parallel walker lands).

use std::path::{Path, PathBuf};

/// The digest of a copy source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeDigest {
    pub hash: [u8; 32],
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct TreeError {
    path: PathBuf,
    source: std::io::Error,
}

pub fn hash_tree(project_dir: &Path, src: &Path) -> Result<TreeDigest, TreeError> {
    let path = project_dir.join(src);
    let bytes = std::fs::read(&path).map_err(|source| TreeError { path, source })?;
    Ok(TreeDigest { hash: *blake3::hash(&bytes).as_bytes(), files: 1, bytes: bytes.len() as u64 })
}
