//! Content digests (`sha256:<hex>`), parsed once and valid by construction.
//!
//! A [`Digest`] can only hold a supported algorithm with a hex part of the
//! right length in lower case, so code that has one never re-checks it.
//! Deserialization goes through the same parser as [`FromStr`].

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// The digest algorithms berth reads and writes (the OCI image spec's
/// registered ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a valid digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?} has no algorithm; expected \"sha256:<64 hex digits>\"")]
    MissingAlgorithm(String),
    #[error("digest {0:?} uses algorithm {1:?}; berth supports sha256 and sha512")]
    UnsupportedAlgorithm(String, String),
    #[error("digest {0:?} must have {1} lower-case hex digits after the colon")]
    BadHex(String, usize),
}

/// A validated content digest such as `sha256:e3b0c442…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest::from_sha256(sha2::Sha256::digest(bytes).into())
    }

    /// A sha256 digest from a finished hash.
    pub fn from_sha256(hash: [u8; 32]) -> Digest {
        Digest { algorithm: Algorithm::Sha256, hex: hex::encode(hash) }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, after the colon.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s.split_once(':').ok_or_else(|| DigestError::MissingAlgorithm(s.to_owned()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(s.to_owned(), other.to_owned())),
        };
        let valid =
            hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::BadHex(s.to_owned(), algorithm.hex_len()));
        }
        Ok(Digest { algorithm, hex: hex.to_owned() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        d.to_string().parse().expect("a valid berth digest is a valid OCI digest")
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        d.to_string().parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(Digest::sha256(b"").to_string(), EMPTY);
    }

    #[test]
    fn parses_and_displays_round_trip() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!("e3b0".parse::<Digest>(), Err(DigestError::MissingAlgorithm(_))));
        assert!(matches!("md5:abcd".parse::<Digest>(), Err(DigestError::UnsupportedAlgorithm(..))));
        assert!(matches!("sha256:abc".parse::<Digest>(), Err(DigestError::BadHex(..))));
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(upper.parse::<Digest>(), Err(DigestError::BadHex(..))));
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
