//! `berth.lock`: what the manifest resolved to, so that a locked build is
//! the same build everywhere — each env's base digest (for `build`, the
//! digest of each image its Dockerfile starts FROM) and the exact version
//! of every installed package. Written sorted, so diffs stay small.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ManifestError;
use super::error::SourceMap;

/// The lock file's name beside `berth.toml`.
pub const LOCK_FILE: &str = "berth.lock";

/// The lock format this berth reads and writes.
pub const LOCK_VERSION: u32 = 1;

const HEADER: &str = "# berth.lock: written by `berth lock` and `berth build`; commit it, do not edit it.\n";

/// The whole lock file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default)]
    pub env: BTreeMap<String, EnvLock>,
}

/// What one env resolved to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvLock {
    /// The base image's manifest digest, when the base is an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<crate::oci::Digest>,
    /// For an env with `build`: each image its Dockerfile starts `FROM`
    /// (the reference in full, as `docker.io/library/debian:bookworm`) →
    /// its manifest digest. The build takes exactly these images.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, crate::oci::Digest>,
    /// Package name → exact installed version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub packages: BTreeMap<String, String>,
}

impl Lock {
    /// Reads `path`; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Lock, ManifestError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lock { version: LOCK_VERSION, ..Lock::default() });
            }
            Err(source) => return Err(ManifestError::Read { path: path.to_owned(), source }),
        };
        let map = SourceMap::new(path, &text);
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            let msg = format!(
                "{}; berth writes this file, so fix the edit or delete the file",
                super::check::toml_message(e.message())
            );
            ManifestError::Invalid(vec![map.at(&e.span().unwrap_or(0..0), msg)])
        })?;
        if lock.version != LOCK_VERSION {
            let mut offset = 0;
            let mut at = 0..0;
            for line in text.split_inclusive('\n') {
                if line.trim_start().starts_with("version") {
                    let start = offset + line.len() - line.trim_start().len();
                    at = start..start + 1;
                    break;
                }
                offset += line.len();
            }
            let msg = format!(
                "lock format version {} is not one this berth reads (it reads {LOCK_VERSION}); upgrade berth or delete the file",
                lock.version
            );
            return Err(ManifestError::Invalid(vec![map.at(&at, msg)]));
        }
        Ok(lock)
    }

    /// The lock as file text.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).expect("a lock always serialises");
        format!("{HEADER}{body}")
    }

    /// The locked state of one env, if any.
    pub fn env(&self, name: &str) -> Option<&EnvLock> {
        self.env.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorted() {
        let mut lock = Lock { version: 1, ..Lock::default() };
        let mut api = EnvLock::default();
        api.packages.insert("python3".into(), "3.11.2-1+b1".into());
        api.packages.insert("curl".into(), "7.88.1-10+deb12u5".into());
        lock.env.insert("api".into(), api);
        let text = lock.to_text();
        assert!(text.find("curl").unwrap() < text.find("python3").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), lock);
    }

    #[test]
    fn missing_is_empty_and_garbage_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        assert!(Lock::read(&path).unwrap().env.is_empty());
        std::fs::write(&path, "version = 1\n[env.api]\nbse = 'x'\n").unwrap();
        let err = Lock::read(&path).unwrap_err().to_string();
        assert!(err.contains("berth.lock:3:1: unknown key \"bse\" (did you mean \"base\"?)"), "{err}");
        std::fs::write(&path, "version = 7\n").unwrap();
        assert!(Lock::read(&path).unwrap_err().to_string().contains("berth.lock:1:1: lock format version 7"));
    }
}
