//! Docker's `--security-opt` values berth takes, for `run` and for
//! `security_opt` in `berth.toml`: `seccomp=unconfined`,
//! `seccomp=PROFILE.json` and `no-new-privileges`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::seccomp::{self, Profile, SeccompError};

/// Which seccomp profile a container runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompChoice {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile file (an absolute path).
    Profile(PathBuf),
}

/// A container's security options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityOptions {
    #[serde(default)]
    pub seccomp: SeccompChoice,
    /// `PR_SET_NO_NEW_PRIVS`: setuid programs and file capabilities grant
    /// nothing (off by default, as in Docker).
    #[serde(default)]
    pub no_new_privileges: bool,
    /// `--cap-add`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<Capability>,
    /// `--cap-drop`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<Capability>,
    /// `--privileged`: every capability, no seccomp filter, the host's
    /// devices, nothing masked, `/sys` writable (Docker's meaning).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

/// A capability name berth does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability {0:?}: expected a name such as NET_ADMIN or CAP_NET_ADMIN (see capabilities(7)), or ALL")]
pub struct UnknownCapability(pub String);

/// A capability as `--cap-add`, `--cap-drop` and `cap_add`/`cap_drop`
/// name it: `CAP_NAME` (written in any case, with or without the prefix),
/// or `ALL`. Parsed only by [`FromStr`]; serde goes through it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(String);

impl Capability {
    /// `ALL`: every capability.
    pub fn is_all(&self) -> bool {
        self.0 == "ALL"
    }

    /// `CAP_NAME`, or `ALL`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(name: &str) -> Result<Capability, UnknownCapability> {
        if name.trim().eq_ignore_ascii_case("ALL") {
            return Ok(Capability("ALL".to_owned()));
        }
        crate::sys::caps::canonical_name(name).map(Capability).ok_or_else(|| UnknownCapability(name.to_owned()))
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Capability, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's rule: start from `default` (`CAP_…` names; nothing when `drop`
/// has ALL), add `add` (every capability the kernel has when it has ALL),
/// then take out `drop`'s names. The result is sorted.
pub fn capability_set(default: &[String], add: &[Capability], drop: &[Capability]) -> Vec<String> {
    let mut set: std::collections::BTreeSet<String> =
        if drop.iter().any(Capability::is_all) { Default::default() } else { default.iter().cloned().collect() };
    if add.iter().any(Capability::is_all) {
        set.extend(crate::sys::caps::supported_names());
    } else {
        set.extend(add.iter().map(|c| c.0.clone()));
    }
    for d in drop.iter().filter(|d| !d.is_all()) {
        set.remove(&d.0);
    }
    set.into_iter().collect()
}

/// A `--security-opt` value berth does not take.
#[derive(Debug, thiserror::Error)]
#[error(
    "security option {0:?} is not supported; expected seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false]"
)]
pub struct UnknownOption(pub String);

impl SecurityOptions {
    /// Adds one `--security-opt` value; a relative profile path is taken
    /// from `base`.
    pub fn add(&mut self, opt: &str, base: &Path) -> Result<(), UnknownOption> {
        let (key, value) = opt.split_once(['=', ':']).map_or((opt, None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("seccomp", Some("unconfined")) => self.seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some("default" | "builtin")) => self.seccomp = SeccompChoice::Default,
            ("seccomp", Some(path)) if !path.is_empty() => self.seccomp = SeccompChoice::Profile(base.join(path)),
            ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
            _ => return Err(UnknownOption(opt.to_owned())),
        }
        Ok(())
    }

    /// The options as `--security-opt` values (empty for the defaults).
    pub fn as_opts(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.seccomp {
            SeccompChoice::Default => {}
            SeccompChoice::Unconfined => out.push("seccomp=unconfined".to_owned()),
            SeccompChoice::Profile(path) => out.push(format!("seccomp={}", path.display())),
        }
        if self.no_new_privileges {
            out.push("no-new-privileges".to_owned());
        }
        out
    }

    /// The seccomp profile that applies, as `inspect` shows it.
    pub fn seccomp_name(&self) -> String {
        if self.privileged {
            return "unconfined (privileged)".to_owned();
        }
        match &self.seccomp {
            SeccompChoice::Default => "default".to_owned(),
            SeccompChoice::Unconfined => "unconfined".to_owned(),
            SeccompChoice::Profile(path) => path.display().to_string(),
        }
    }

    /// Reads the seccomp profile that applies (`None`: unconfined, as a
    /// privileged container is). A profile file is read and checked here,
    /// before anything is created.
    pub fn profile(&self) -> Result<Option<Profile>, SeccompError> {
        if self.privileged {
            return Ok(None);
        }
        match &self.seccomp {
            SeccompChoice::Default => Ok(Some(seccomp::default_profile())),
            SeccompChoice::Unconfined => Ok(None),
            SeccompChoice::Profile(path) => Profile::load(path).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_spellings_are_taken() {
        let mut s = SecurityOptions::default();
        s.add("seccomp=unconfined", Path::new("/")).unwrap();
        assert_eq!(s.seccomp, SeccompChoice::Unconfined);
        s.add("seccomp:p.json", Path::new("/work")).unwrap();
        assert_eq!(s.seccomp, SeccompChoice::Profile("/work/p.json".into()));
        s.add("no-new-privileges", Path::new("/")).unwrap();
        assert!(s.no_new_privileges);
        s.add("no-new-privileges=false", Path::new("/")).unwrap();
        assert!(!s.no_new_privileges);
        assert!(s.add("apparmor=unconfined", Path::new("/")).is_err());
        assert!(s.add("seccomp=", Path::new("/")).is_err());
    }

    #[test]
    fn capabilities_follow_dockers_rules() {
        let names = |xs: &[&str]| xs.iter().map(|x| x.parse::<Capability>().unwrap()).collect::<Vec<_>>();
        let text = |cs: Vec<Capability>| cs.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(text(names(&["net_admin", " CAP_SYS_TIME", "all"])), ["CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"]);
        assert!("CAP_NOPE".parse::<Capability>().is_err());
        assert!(serde_json::from_str::<Capability>("\"nope\"").is_err(), "serde goes through the parser");
        let default = text(names(&["CHOWN", "KILL"]));
        assert_eq!(capability_set(&default, &names(&["NET_ADMIN"]), &names(&["KILL"])), ["CAP_CHOWN", "CAP_NET_ADMIN"]);
        assert_eq!(capability_set(&default, &names(&["SYS_TIME"]), &names(&["ALL"])), ["CAP_SYS_TIME"]);
        let all = capability_set(&default, &names(&["ALL"]), &names(&["SYS_ADMIN"]));
        assert!(all.len() > 35 && !all.contains(&"CAP_SYS_ADMIN".to_owned()), "{all:?}");
    }
}
