//! [`Tmpfs`]: the one type and the one parser of a tmpfs mount, as
//! Docker's `--tmpfs PATH[:OPTIONS]` and compose's `tmpfs` write it.
//!
//! The manifest's `tmpfs`, `berth run --tmpfs`, the container record and
//! the spec all hold this type; serde goes through [`FromStr`], so no other
//! module reads the text. A tmpfs is `nosuid,nodev,noexec` unless its
//! options say `suid`, `dev` or `exec` (Docker's defaults).

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// A tmpfs mount that berth could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad tmpfs {input:?}: {reason}")]
pub struct TmpfsError {
    pub input: String,
    pub reason: String,
}

/// The options a tmpfs may carry: flags, then `key=value` data.
const FLAGS: &[&str] = &["ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime"];
const DATA: &[&str] = &["size", "nr_inodes", "mode", "uid", "gid"];

/// One tmpfs: an absolute path inside the container and its options as
/// written (`size=64m,mode=1777`, `exec`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tmpfs {
    pub destination: PathBuf,
    pub options: Vec<String>,
}

impl Tmpfs {
    /// A tmpfs at `destination` with no options of its own.
    pub fn at(destination: &str) -> Tmpfs {
        Tmpfs { destination: PathBuf::from(destination), options: Vec::new() }
    }

    /// The mount options: Docker's `nosuid,nodev,noexec` unless the tmpfs
    /// asks for `suid`, `dev` or `exec`, then its own options (`rw` left out).
    pub fn mount_options(&self) -> Vec<String> {
        let has = |o: &str| self.options.iter().any(|x| x == o);
        let mut out: Vec<String> = [("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec")]
            .into_iter()
            .filter(|(_, lifted)| !has(lifted))
            .map(|(default, _)| default.to_owned())
            .collect();
        for o in &self.options {
            if !matches!(o.as_str(), "rw" | "suid" | "dev" | "exec") && !out.contains(o) {
                out.push(o.clone());
            }
        }
        out
    }
}

impl FromStr for Tmpfs {
    type Err = TmpfsError;

    /// `PATH[:OPTION,…]`: PATH absolute and not `/`; each option one of
    /// `ro`, `rw`, `exec`, `noexec`, `suid`, `nosuid`, `dev`, `nodev`,
    /// `atime`, `noatime`, or `size=`, `nr_inodes=`, `mode=` (octal),
    /// `uid=`, `gid=`.
    fn from_str(input: &str) -> Result<Tmpfs, TmpfsError> {
        let fail = |reason: String| TmpfsError { input: input.to_owned(), reason };
        let (path, options) = input.split_once(':').unwrap_or((input, ""));
        let destination = PathBuf::from(path);
        if !destination.is_absolute() || destination.components().any(|c| c == Component::ParentDir) {
            return Err(fail("the path must be absolute and without `..`, as in /tmp:size=64m".to_owned()));
        }
        if destination == Path::new("/") {
            return Err(fail("a tmpfs cannot replace the root; use read_only (--read-only) instead".to_owned()));
        }
        let mut out = Vec::new();
        for o in options.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                None if FLAGS.contains(&o) => {}
                Some((key, value)) if DATA.contains(&key) => check_value(key, value).map_err(fail)?,
                _ => {
                    return Err(fail(format!(
                        "unknown option {o:?}: expected one of {} or {}=VALUE",
                        FLAGS.join(", "),
                        DATA.join("=, ")
                    )));
                }
            }
            out.push(o.to_owned());
        }
        Ok(Tmpfs { destination, options: out })
    }
}

/// Checks the value of a `key=value` option.
fn check_value(key: &str, value: &str) -> Result<(), String> {
    let ok = match key {
        "mode" => !value.is_empty() && u32::from_str_radix(value, 8).is_ok_and(|m| m <= 0o7777),
        "uid" | "gid" => value.parse::<u32>().is_ok(),
        // The kernel's forms: a number with k, m, g (size also %).
        _ => {
            let digits = value.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
            !digits.is_empty() && digits.parse::<u64>().is_ok() && (key == "size" || !value.ends_with('%'))
        }
    };
    if ok {
        Ok(())
    } else {
        let want = match key {
            "mode" => "an octal mode such as 1777",
            "uid" | "gid" => "a number",
            "size" => "bytes with k, m or g, or a percentage of memory (64m, 50%)",
            _ => "a number with k, m or g",
        };
        Err(format!("{key}={value:?}: expected {want}"))
    }
}

impl fmt::Display for Tmpfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination.display())?;
        if !self.options.is_empty() {
            write!(f, ":{}", self.options.join(","))?;
        }
        Ok(())
    }
}

impl serde::Serialize for Tmpfs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Tmpfs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Tmpfs, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_forms_are_read_and_written_back() {
        let t: Tmpfs = "/run:size=64m,mode=1777,exec".parse().unwrap();
        assert_eq!(t.destination, Path::new("/run"));
        assert_eq!(t.to_string(), "/run:size=64m,mode=1777,exec");
        assert_eq!(t.mount_options(), ["nosuid", "nodev", "size=64m", "mode=1777"]);
        assert_eq!("/tmp".parse::<Tmpfs>().unwrap().mount_options(), ["nosuid", "nodev", "noexec"]);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Tmpfs>(&json).unwrap(), t);
    }

    #[test]
    fn bad_forms_say_what_would_be_right() {
        for (input, says) in [
            ("tmp", "absolute"),
            ("/", "root"),
            ("/a/../b", "absolute"),
            ("/t:sze=1m", "unknown option \"sze=1m\""),
            ("/t:mode=999", "octal"),
            ("/t:size=lots", "percentage"),
            ("/t:uid=-1", "a number"),
        ] {
            let e = input.parse::<Tmpfs>().unwrap_err().to_string();
            assert!(e.contains(says), "{input}: {e}");
        }
        assert!(serde_json::from_str::<Tmpfs>("\"relative\"").is_err(), "serde goes through the parser");
    }
}
