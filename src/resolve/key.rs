//! Cache keys: the blake3 identity of a layer-graph node.
//!
//! A node's key is `blake3(parent key ‖ step kind ‖ canonical parameters ‖
//! input digest)`. Every field is length-prefixed before hashing, so no two
//! different inputs can be concatenated into the same byte stream.

use std::fmt;
use std::str::FromStr;

/// A node's cache key: 32 bytes of blake3, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

/// Why a string is not a cache key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cache key {0:?} must be 64 lower-case hex digits")]
pub struct CacheKeyError(String);

impl CacheKey {
    pub fn from_bytes(bytes: [u8; 32]) -> CacheKey {
        CacheKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for listings.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }
}

/// The first field of every key. Bump it whenever the builder writes other
/// bytes for the same inputs (what a layer holds, how a base is normalised),
/// so a store's cached layers from an older berth are never mixed with
/// layers a current one makes: the same manifest and lock must give the
/// same digests whether the store is new or old. v2: run-step layers leave
/// out the build container's mount points; bootstraps own apt's `partial`
/// dirs as `_apt`. v3: a copy layer's parent directories that the image
/// has keep their owner and mode (they were written 0755 root). v4: the
/// directory a copied directory's contents go into is the image's own or a
/// new 0755 one (it took the source directory's mode, or `--chmod`).
const KEY_FORMAT: &[u8] = b"berth cache key v4";

/// Builds a cache key field by field.
#[derive(Default)]
pub struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    pub fn new(kind: &str) -> KeyHasher {
        let mut h = KeyHasher(blake3::Hasher::new());
        h.field(KEY_FORMAT);
        h.field(kind.as_bytes());
        h
    }

    /// Adds one length-prefixed field.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn finish(&self) -> CacheKey {
        CacheKey(*self.0.finalize().as_bytes())
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.short())
    }
}

impl FromStr for CacheKey {
    type Err = CacheKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut out = [0u8; 32];
        if s.len() != 64 || !lower || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(CacheKeyError(s.to_owned()));
        }
        Ok(CacheKey(out))
    }
}

impl serde::Serialize for CacheKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CacheKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed() {
        let ab_c = KeyHasher::new("run").field(b"ab").field(b"c").finish();
        let a_bc = KeyHasher::new("run").field(b"a").field(b"bc").finish();
        assert_ne!(ab_c, a_bc);
    }

    #[test]
    fn kind_is_part_of_the_key() {
        assert_ne!(KeyHasher::new("run").finish(), KeyHasher::new("copy").finish());
    }

    #[test]
    fn text_round_trip() {
        let k = KeyHasher::new("base").field(b"scratch").finish();
        assert_eq!(k.to_string().parse::<CacheKey>().unwrap(), k);
        assert!("ABC".parse::<CacheKey>().is_err());
        assert!(k.to_string().to_uppercase().parse::<CacheKey>().is_err());
    }
}
