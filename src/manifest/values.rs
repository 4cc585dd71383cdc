//! Typed manifest values: sizes, durations, port mappings, users, restart
//! policies, networks and volumes. Each parses once from its text form and
//! cannot hold a bad value; the error says what a right value looks like.
//!
//! A port mapping is the runtime's own type ([`PortMapping`], re-exported):
//! `ports` here, `berth run -p` and the container record share its one
//! parser, so what the manifest accepts is what the runtime publishes. So
//! is the user-namespace mode ([`UsernsMode`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

pub use crate::runtime::ports::{PortMapping, Protocol};
pub use crate::runtime::security::Capability;
pub use crate::runtime::tmpfs::Tmpfs;
pub use crate::runtime::userns_auto::UsernsMode;

/// A value that did not parse; the text says what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn bad(msg: String) -> ValueError {
    ValueError(msg)
}

/// A number of bytes, written `512MiB`, `1g`, `64k` or a plain integer.
///
/// Units are binary as in Docker (`k`/`kb`/`kib` = 1024, `m` = 1024², `g`,
/// `t`), case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => {
                return Err(bad(format!(
                    "bad size {s:?}: the unit must be one of B, KiB, MiB, GiB, TiB (or k, m, g, t), as in \"256MiB\""
                )));
            }
        };
        let value: f64 =
            num.parse().map_err(|_| bad(format!("bad size {s:?}: expected a number with a unit, as in \"256MiB\"")))?;
        let bytes = value * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
            return Err(bad(format!("bad size {s:?}: it must be at least one byte and fit in 64 bits")));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if value.fract() == 0.0 { write!(f, "{value}{}", UNITS[unit]) } else { write!(f, "{value:.1}{}", UNITS[unit]) }
    }
}

/// A duration written `500ms`, `2s`, `1m30s` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = || {
            bad(format!("bad duration {s:?}: expected a number with a unit (ms, s, m, h), as in \"1s\" or \"1m30s\""))
        };
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(err());
        }
        let mut total = std::time::Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let n: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let part = match &rest[..unit_len] {
                "ms" => std::time::Duration::from_millis(n),
                "s" => std::time::Duration::from_secs(n),
                "m" => std::time::Duration::from_secs(n * 60),
                "h" => std::time::Duration::from_secs(n * 3600),
                _ => return Err(err()),
            };
            total += part;
            rest = &rest[unit_len..];
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) { write!(f, "{}s", ms / 1000) } else { write!(f, "{ms}ms") }
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `user` and `group` as names or numbers: `1000`, `1000:1000`, `app`, `app:staff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct User {
    pub user: String,
    pub group: Option<String>,
}

impl FromStr for User {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if !ok(user) || group.is_some_and(|g| !ok(g)) {
            return Err(bad(format!(
                "bad user {s:?}: expected USER[:GROUP] by name or number, as in \"1000:1000\" or \"app\""
            )));
        }
        Ok(User { user: user.to_owned(), group: group.map(str::to_owned) })
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

/// When a container is restarted after its main process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart on a non-zero exit, at most `max_retries` times (unbounded when `None`).
    OnFailure {
        max_retries: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl FromStr for RestartPolicy {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = || {
            bad(format!(
                "bad restart policy {s:?}: expected \"no\", \"on-failure\", \"on-failure:N\" (N at least 1), \"always\" or \"unless-stopped\""
            ))
        };
        Ok(match s {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max_retries: None },
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => match n.parse::<u32>() {
                    Ok(max) if max > 0 => RestartPolicy::OnFailure { max_retries: Some(max) },
                    _ => return Err(err()),
                },
                None => return Err(err()),
            },
        })
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure { max_retries: Some(n) } => write!(f, "on-failure:{n}"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
        }
    }
}

/// Which network namespace an env's container joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The project's shared namespace: envs reach each other on localhost,
    /// and the outside through the project's bridge (berth as root).
    #[default]
    Project,
    /// The project's shared namespace with loopback only: no way out.
    Isolated,
    /// The host's network.
    Host,
    /// A namespace of the container's own, with loopback only.
    None,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Project => "project",
            Network::Isolated => "isolated",
            Network::Host => "host",
            Network::None => "none",
        })
    }
}

impl FromStr for Network {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "project" => Ok(Network::Project),
            "isolated" => Ok(Network::Isolated),
            "host" => Ok(Network::Host),
            "none" => Ok(Network::None),
            _ => Err(bad(format!(
                "bad network {s:?}: expected \"project\" (the default: the project's network, with outbound access), \
                 \"isolated\" (the project's network, loopback only), \"host\" or \"none\""
            ))),
        }
    }
}

/// One of Docker's `--security-opt` values berth takes (`security_opt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum SecurityOpt {
    /// `seccomp=unconfined`: no seccomp filter.
    SeccompUnconfined,
    /// `seccomp=PROFILE.json`: a profile file, relative to the manifest's
    /// directory until the env is resolved.
    SeccompProfile(PathBuf),
    /// `no-new-privileges`: setuid programs grant nothing.
    NoNewPrivileges,
}

impl FromStr for SecurityOpt {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.split_once('=') {
            Some(("seccomp", "unconfined")) => Ok(SecurityOpt::SeccompUnconfined),
            Some(("seccomp", path)) if !path.is_empty() => Ok(SecurityOpt::SeccompProfile(PathBuf::from(path))),
            None if s == "no-new-privileges" => Ok(SecurityOpt::NoNewPrivileges),
            Some(("no-new-privileges", "true")) => Ok(SecurityOpt::NoNewPrivileges),
            _ => Err(bad(format!(
                "bad security option {s:?}: expected \"seccomp=unconfined\", \"seccomp=PROFILE.json\" (a path from \
                 this file's directory) or \"no-new-privileges\""
            ))),
        }
    }
}

impl std::fmt::Display for SecurityOpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecurityOpt::SeccompUnconfined => f.write_str("seccomp=unconfined"),
            SecurityOpt::SeccompProfile(p) => write!(f, "seccomp={}", p.display()),
            SecurityOpt::NoNewPrivileges => f.write_str("no-new-privileges"),
        }
    }
}

/// Where a volume's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "source")]
pub enum VolumeSource {
    /// A named volume kept in the store; survives container recreation.
    Named(String),
    /// A host path, absolute or relative to the manifest's directory (as written).
    Bind(PathBuf),
}

/// `SOURCE:TARGET[:ro|:rw]`; a source starting with `/` or `.` is a host path,
/// anything else names a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Volume {
    pub source: VolumeSource,
    pub target: String,
    pub read_only: bool,
}

impl FromStr for Volume {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |why: &str| {
            bad(format!("bad volume {s:?}: {why}; expected \"NAME:/path[:ro]\" or \"./host/path:/path[:ro]\""))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, "ro"] => (*src, *dst, true),
            [src, dst, "rw"] => (*src, *dst, false),
            [_, _, mode] => return Err(err(&format!("the mode {mode:?} must be ro or rw"))),
            _ => return Err(err("it needs a source and a target")),
        };
        if !target.starts_with('/') {
            return Err(err(&format!("the target {target:?} must be an absolute path in the container")));
        }
        let source = if source.starts_with('/') || source.starts_with('.') {
            VolumeSource::Bind(PathBuf::from(source))
        } else if is_name(source) {
            VolumeSource::Named(source.to_owned())
        } else {
            return Err(err(&format!(
                "{source:?} is neither a path (start it with / or ./) nor a volume name (lower-case letters, digits, '_', '.', '-')"
            )));
        };
        Ok(Volume { source, target: target.to_owned(), read_only })
    }
}

/// An env name: it becomes the container's host name, so lower-case
/// letters, digits and `-`, starting with a letter or digit, at most 63.
pub fn is_env_name(s: &str) -> bool {
    is_name(s) && !s.contains(['_', '.'])
}

/// A name usable for projects and volumes: starts with a lower-case
/// letter or digit, then lower-case letters, digits, `_`, `.` or `-`; at most
/// 63 characters (it becomes a host name).
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok && s.len() <= 63 && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("256MiB".parse::<ByteSize>().unwrap().0, 256 << 20);
        assert_eq!("1g".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("1.5k".parse::<ByteSize>().unwrap().0, 1536);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert!("12 parsecs".parse::<ByteSize>().unwrap_err().0.contains("unit must be one of"));
        assert!("MiB".parse::<ByteSize>().is_err());
        assert!("0".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(256 << 20).to_string(), "256MiB");
    }

    #[test]
    fn durations() {
        assert_eq!("1m30s".parse::<Duration>().unwrap().0.as_secs(), 90);
        assert_eq!("500ms".parse::<Duration>().unwrap().0.as_millis(), 500);
        assert!("5".parse::<Duration>().is_err());
        assert!("1 day".parse::<Duration>().is_err());
        assert!("".parse::<Duration>().is_err());
    }

    #[test]
    fn users_restart_network_volumes() {
        assert_eq!("1000:1000".parse::<User>().unwrap().group.as_deref(), Some("1000"));
        assert!("a b".parse::<User>().is_err());
        assert_eq!("on-failure:3".parse::<RestartPolicy>().unwrap(), RestartPolicy::OnFailure { max_retries: Some(3) });
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert_eq!("none".parse::<Network>().unwrap(), Network::None);
        assert_eq!("isolated".parse::<Network>().unwrap(), Network::Isolated);
        assert_eq!(Network::Isolated.to_string(), "isolated");
        let v: Volume = "data:/var/lib/data".parse().unwrap();
        assert_eq!(v.source, VolumeSource::Named("data".into()));
        let v: Volume = "./src:/srv/src:ro".parse().unwrap();
        assert!(v.read_only && matches!(v.source, VolumeSource::Bind(_)));
        assert!("data:relative".parse::<Volume>().is_err());
        assert!("Data!:/x".parse::<Volume>().is_err());
    }
}
