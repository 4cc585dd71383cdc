//! Store-wide defaults for new containers: `STORE/config.toml`.
//!
//! ```toml
//! [run]
//! userns = "auto"   # every container of this store gets its own id range (root only)
//! ```
//!
//! Like `userns` in podman's `containers.conf`, the value applies where
//! nothing more specific is said: `berth run` without `--userns` and envs
//! of a berth.toml without `userns`. A missing file means the built-in
//! defaults. Unknown keys are refused, naming the file, line and what is
//! known.

use std::path::{Path, PathBuf};

use super::userns_auto::UsernsMode;

/// The file's name in the store's root.
pub const CONFIG_FILE: &str = "config.toml";

/// Why the store's config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {why}; the file may hold [run] userns = \"host\" or \"auto\"", path.display())]
    Bad { path: PathBuf, why: String },
}

/// What new containers of a store get unless told otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunDefaults {
    pub userns: UsernsMode,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    run: RawRun,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    userns: Option<String>,
}

impl RunDefaults {
    /// The defaults of the store at `store_root` (built-in ones when it has
    /// no config file, or does not exist yet).
    pub fn read(store_root: &Path) -> Result<RunDefaults, DefaultsError> {
        let path = store_root.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => RunDefaults::parse(&text).map_err(|why| DefaultsError::Bad { path, why }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunDefaults::default()),
            Err(source) => Err(DefaultsError::Read { path, source }),
        }
    }

    /// The defaults `text` (the config file's contents) sets.
    pub fn parse(text: &str) -> Result<RunDefaults, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
        let userns = match raw.run.userns {
            Some(text) => text.parse()?,
            None => UsernsMode::Host,
        };
        Ok(RunDefaults { userns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_built_in_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(RunDefaults::read(tmp.path()).unwrap(), RunDefaults::default());
        assert_eq!(RunDefaults::read(&tmp.path().join("no-store")).unwrap().userns, UsernsMode::Host);
    }

    #[test]
    fn userns_is_read_and_bad_files_say_what_is_wrong() {
        assert_eq!(RunDefaults::parse("[run]\nuserns = \"auto\"\n").unwrap().userns, UsernsMode::Auto);
        assert_eq!(RunDefaults::parse("").unwrap().userns, UsernsMode::Host);
        let bad = RunDefaults::parse("[run]\nuserns = \"maybe\"\n").unwrap_err();
        assert!(bad.contains("\"maybe\"") && bad.contains("\"auto\""), "{bad}");
        let unknown = RunDefaults::parse("[run]\nusrns = \"auto\"\n").unwrap_err();
        assert!(unknown.contains("line 2") && unknown.contains("usrns"), "{unknown}");

        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CONFIG_FILE), "[build]\n").unwrap();
        let e = RunDefaults::read(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("config.toml") && e.contains("[run] userns"), "{e}");
    }
}
