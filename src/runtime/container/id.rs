//! Container identities: a random 64-hex-digit id (shown as its first 12
//! digits, like Docker's) and a name, given or made up.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// A container id: 32 random bytes as lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

/// Why a string is not a container id or name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("container id {0:?} must be 64 lower-case hex digits")]
    BadId(String),
    #[error(
        "bad container name {0:?}: use letters, digits, '_', '.' or '-', starting with a letter or digit (at most 128)"
    )]
    BadName(String),
}

impl ContainerId {
    /// A fresh random id.
    pub fn random() -> std::io::Result<ContainerId> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(ContainerId(hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as listings show it.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl FromStr for ContainerId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(ContainerId(s.to_owned()))
        } else {
            Err(IdError::BadId(s.to_owned()))
        }
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.short())
    }
}

impl serde::Serialize for ContainerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ContainerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a container name as Docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_name(name: &str) -> Result<(), IdError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok { Ok(()) } else { Err(IdError::BadName(name.to_owned())) }
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "gentle", "happy", "keen", "lucid", "merry", "nimble", "proud", "quiet",
    "quick", "sharp", "steady", "sunny", "tidy", "vivid", "warm", "wise",
];
const NOUNS: &[&str] = &[
    "anchor", "buoy", "cabin", "canal", "dock", "ferry", "harbor", "helm", "jetty", "keel", "lock", "mast", "pier",
    "quay", "rudder", "sail", "tide", "wharf", "yacht", "berth",
];

/// A readable name derived from an id, such as `steady_harbor`; `attempt`
/// varies it when the first choice is taken.
pub fn generated_name(id: &ContainerId, attempt: u32) -> String {
    let bytes = hex::decode(&id.0[..8]).unwrap_or_default();
    let a = ADJECTIVES[usize::from(bytes.first().copied().unwrap_or(0)) % ADJECTIVES.len()];
    let n = NOUNS[usize::from(bytes.get(1).copied().unwrap_or(0)) % NOUNS.len()];
    if attempt == 0 { format!("{a}_{n}") } else { format!("{a}_{n}_{attempt}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_parse_back() {
        let a = ContainerId::random().unwrap();
        let b = ContainerId::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<ContainerId>().unwrap(), a);
        assert_eq!(a.short().len(), 12);
        assert!("xyz".parse::<ContainerId>().is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("web-1.test_a").is_ok());
        assert!(check_name("-web").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
        let id = ContainerId::random().unwrap();
        let n = generated_name(&id, 0);
        assert!(check_name(&n).is_ok() && n.contains('_'));
        assert_ne!(generated_name(&id, 1), n);
    }
}
