//! [`CgroupPath`]: a cgroup's name below the hierarchy roots, checked once.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// A cgroup's name below each hierarchy root, such as `berth/3f2a…`: one or
/// more components of ASCII letters, digits, `-`, `_` and `.`.
///
/// Every directory the path names belongs to berth: [`Cgroup::remove`](super::Cgroup::remove)
/// deletes the leaf and then each named parent that has become empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupPath {
    components: Vec<String>,
}

impl CgroupPath {
    /// Checks and splits `path` (`a/b/c`).
    pub fn new(path: &str) -> Result<CgroupPath, CgroupError> {
        let bad = |reason| CgroupError::InvalidPath { path: path.to_owned(), reason };
        if path.starts_with('/') {
            return Err(bad("it is absolute"));
        }
        let mut components = Vec::new();
        for part in path.split('/') {
            if part.is_empty() {
                return Err(bad("it has an empty component"));
            }
            if part == "." || part == ".." {
                return Err(bad("it has a \".\" or \"..\" component"));
            }
            if part.len() > 255 {
                return Err(bad("a component is longer than 255 bytes"));
            }
            let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
            if !part.bytes().all(allowed) {
                return Err(bad("it has a character other than a letter, digit, '-', '_' or '.'"));
            }
            components.push(part.to_owned());
        }
        Ok(CgroupPath { components })
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// This cgroup's directory in the hierarchy mounted at `mount`.
    pub(super) fn under(&self, mount: &Path) -> PathBuf {
        let mut dir = mount.to_path_buf();
        dir.extend(&self.components);
        dir
    }

    /// The proper prefixes (`a`, `a/b` for `a/b/c`), shortest first.
    pub(super) fn parents(&self) -> Vec<CgroupPath> {
        (1..self.components.len()).map(|n| CgroupPath { components: self.components[..n].to_vec() }).collect()
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> CgroupPath {
        CgroupPath::new(p).unwrap()
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(path("berth/abc-1_x.2").components(), ["berth", "abc-1_x.2"]);
        assert_eq!(path("berth/abc").to_string(), "berth/abc");
        for bad in ["", "/berth/x", "berth//x", "berth/../x", "berth/.", "berth/a b", "berth/x/"] {
            assert!(CgroupPath::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(path("a/b/c").parents(), [path("a"), path("a/b")]);
    }
}
