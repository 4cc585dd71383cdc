//! Image references as Docker parses them: `debian` means
//! `docker.io/library/debian:latest`; `host:port/ns/name:tag` and
//! `name@sha256:…` name other registries and exact digests.

use std::fmt;
use std::str::FromStr;

use super::Digest;

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The longest repository name (registry host included) Docker accepts.
const MAX_NAME: usize = 255;

/// A parsed, normalised image reference. It can only hold valid values:
/// it is made by parsing, and its fields are read through accessors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Registry host, with port when given (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path (`library/debian`, `team/api`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when neither tag nor digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository pinned to `digest` (the tag is kept, for
    /// display; pulls by a digest ignore the tag).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef { digest: Some(digest), ..self.clone() }
    }

    /// The same repository with tag `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        format!("{}/{}:{tag}", self.registry, self.repository).parse()
    }

    /// The repository as Docker shows it: `debian` and `team/api` for
    /// Docker Hub, `host:port/path` for other registries.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return format!("{}/{}", self.registry, self.repository);
        }
        self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_owned()
    }

    /// `familiar_name:tag` (`:latest` if there is no tag): the local tag a
    /// pull gives the image, which `berth run` finds by what the user typed.
    pub fn familiar_tag(&self) -> String {
        format!("{}:{}", self.familiar_name(), self.tag.as_deref().unwrap_or("latest"))
    }
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad image reference {input:?}: {why}; expected [REGISTRY/]NAME[:TAG][@sha256:DIGEST], as in \"debian:bookworm\""
)]
pub struct ReferenceError {
    pub input: String,
    pub why: String,
}

fn component_ok(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    let bytes = c.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let sep_end = match b {
            b'.' => i + 1,
            b'_' if bytes.get(i + 1) == Some(&b'_') => i + 2,
            b'_' => i + 1,
            b'-' => i + bytes[i..].iter().take_while(|&&x| x == b'-').count(),
            _ => return false,
        };
        if !bytes.get(sep_end).is_some_and(|x| x.is_ascii_lowercase() || x.is_ascii_digit()) {
            return false;
        }
        i = sep_end;
    }
    true
}

fn tag_ok(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn registry_ok(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, ReferenceError> {
        let fail = |why: &str| ReferenceError { input: s.to_owned(), why: why.to_owned() };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| fail(&e.to_string()))?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag.filter(|t| !tag_ok(t)) {
            return Err(fail(&format!("the tag {t:?} must be letters, digits, '_', '.' or '-' (at most 128)")));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                if !registry_ok(first) {
                    return Err(fail(&format!("{first:?} is not a registry host[:port]")));
                }
                // Docker Hub's legacy names mean Docker Hub.
                let registry = if first == "index.docker.io" || first == "registry-1.docker.io" {
                    DEFAULT_REGISTRY
                } else {
                    first
                };
                (registry.to_owned(), path.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        if let Some(c) = path.split('/').find(|c| !component_ok(c)) {
            return Err(fail(&format!(
                "the name part {c:?} must be lower-case letters and digits, separated by '.', '_' or '-'"
            )));
        }
        let repository =
            if registry == DEFAULT_REGISTRY && !path.contains('/') { format!("library/{path}") } else { path };
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(fail(&format!("the name is longer than {MAX_NAME} characters")));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(ImageRef { registry, repository, tag, digest })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> String {
        s.parse::<ImageRef>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(parse("debian"), "docker.io/library/debian:latest");
        assert_eq!(parse("debian:bookworm-slim"), "docker.io/library/debian:bookworm-slim");
        assert_eq!(parse("team/api:1.2"), "docker.io/team/api:1.2");
        assert_eq!(parse("localhost:5000/ns/app:v1"), "localhost:5000/ns/app:v1");
        assert_eq!(parse("ghcr.io/a/b"), "ghcr.io/a/b:latest");
        assert_eq!(parse("index.docker.io/debian"), "docker.io/library/debian:latest");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(parse(&format!("alpine@{d}")), format!("docker.io/library/alpine@{d}"));
    }

    #[test]
    fn familiar_names_are_what_docker_shows() {
        let r: ImageRef = "debian".parse().unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag(), r.digest()),
            ("docker.io", "library/debian", Some("latest"), None)
        );
        assert_eq!(r.familiar_tag(), "debian:latest");
        assert_eq!("team/api:1".parse::<ImageRef>().unwrap().familiar_tag(), "team/api:1");
        let r: ImageRef = "127.0.0.1:5000/team/base:1".parse().unwrap();
        assert_eq!(r.familiar_tag(), "127.0.0.1:5000/team/base:1");
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        let pinned = r.with_digest(d.clone());
        assert_eq!(pinned.digest(), Some(&d));
        assert_eq!(pinned.to_string(), format!("127.0.0.1:5000/team/base:1@{d}"));
        assert_eq!(pinned.with_tag("2").unwrap().to_string(), "127.0.0.1:5000/team/base:2");
        assert_eq!(
            "localhost/x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse::<ImageRef>()
                .unwrap()
                .tag(),
            None
        );
    }

    #[test]
    fn rejects_bad_references() {
        let long = format!("a/{}", "b".repeat(260));
        assert!(long.parse::<ImageRef>().unwrap_err().to_string().contains("longer than 255"));
        for bad in ["Debian", "a//b", "debian:", "debian:-x", "a@sha256:12", "-a", "a__-b/.c", "a..b", ""] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} should be rejected");
        }
        let e = "Debian:12".parse::<ImageRef>().unwrap_err();
        assert!(e.to_string().contains("lower-case"), "{e}");
    }
}
