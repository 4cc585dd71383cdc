//! Manifests and image indexes as registries serve them: the media types
//! berth accepts (OCI and Docker v2 schema 2), fetching one with its digest
//! checked, and choosing the platform's entry of an index.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Descriptor;

use super::RegistryError;
use super::session::{Body, Session, Target, read_small};
use crate::oci::Digest;

#[cfg(test)]
pub use crate::oci::archive::media::OCI_CONFIG;
pub use crate::oci::archive::media::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// What a manifest request accepts, best first.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The most bytes of a manifest or index berth reads.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// An OS and architecture (and variant), as `linux/amd64` or `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform.
    pub fn host() -> Platform {
        Platform {
            os: oci_spec::image::Os::default().to_string(),
            architecture: oci_spec::image::Arch::default().to_string(),
            variant: None,
        }
    }

    fn of(d: &Descriptor) -> Option<Platform> {
        let p = d.platform().as_ref()?;
        Some(Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        })
    }

    fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl FromStr for Platform {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Platform, RegistryError> {
        let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Platform { os: (*os).into(), architecture: (*arch).into(), variant: None })
            }
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform { os: (*os).into(), architecture: (*arch).into(), variant: Some((*variant).into()) })
            }
            _ => Err(RegistryError::BadPlatform(s.to_owned())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The entry of an index for `wanted`, skipping attestations; else the
/// platforms the index has.
pub fn choose<'d>(entries: &'d [Descriptor], wanted: &Platform) -> Result<&'d Descriptor, Vec<String>> {
    let is_attestation = |d: &Descriptor| {
        let annotated = d.annotations().as_ref().and_then(|a| a.get("vnd.docker.reference.type"));
        annotated.is_some_and(|t| t == "attestation-manifest")
            || Platform::of(d).is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
    };
    let images: Vec<&Descriptor> = entries.iter().filter(|d| !is_attestation(d)).collect();
    let found = images.iter().filter(|d| Platform::of(d).is_some_and(|p| wanted.matches(&p)));
    // Without a wanted variant, prefer an entry with none.
    if let Some(best) = found.clone().min_by_key(|d| Platform::of(d).and_then(|p| p.variant).is_some()) {
        return Ok(best);
    }
    if let [only] = images.as_slice()
        && only.platform().is_none()
    {
        return Ok(only);
    }
    Err(images.iter().map(|d| Platform::of(d).map_or_else(|| "unspecified".to_owned(), |p| p.to_string())).collect())
}

/// What a manifest request returned.
pub(crate) struct Fetched {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Fetched {
    pub(crate) fn is_index(&self) -> bool {
        crate::oci::archive::media::is_index(&self.media_type)
    }
}

/// Which manifest to fetch: by tag, or by digest (with the descriptor
/// that named it, when there is one, for its size).
pub(crate) enum Wanted<'a> {
    Tag(&'a str),
    Digest(&'a Digest, Option<u64>),
}

/// Fetches a manifest or index of `repository`, checking its digest (and
/// size, when known) and its media type.
pub(crate) fn fetch(session: &Session<'_>, repository: &str, wanted: Wanted<'_>) -> Result<Fetched, RegistryError> {
    let reference = match &wanted {
        Wanted::Tag(t) => (*t).to_owned(),
        Wanted::Digest(d, _) => d.to_string(),
    };
    let target = match &wanted {
        Wanted::Tag(t) => Target::Tag(repository, t),
        Wanted::Digest(d, _) => Target::Manifest(repository, d),
    };
    let what = format!("the manifest {repository}:{reference}");
    let url = session.url(&format!("/v2/{repository}/manifests/{reference}"));
    let response = session.send("GET", &url, &[("Accept", ACCEPT)], &Body::Empty, &what)?;
    if !response.status().is_success() {
        return Err(match session.fail(response, &what, target) {
            RegistryError::UnknownTag { tag, .. } => missing_tag(session, repository, &tag),
            other => other,
        });
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type").map(|c| c.split(';').next().unwrap_or_default().trim().to_owned());
    let claimed = header("docker-content-digest");
    let bad = |why: String| RegistryError::BadContent { registry: session.registry.clone(), what: what.clone(), why };
    let bytes = response
        .into_body()
        .with_config()
        .limit(MAX_MANIFEST)
        .read_to_vec()
        .map_err(|e| bad(format!("cannot read it ({e}); manifests are at most {MAX_MANIFEST} bytes")))?;
    let digest = Digest::sha256(&bytes);
    let expected = match &wanted {
        Wanted::Digest(d, _) => Some((*d).clone()),
        Wanted::Tag(_) => {
            claimed.and_then(|c| c.parse::<Digest>().ok()).filter(|d| d.algorithm() == digest.algorithm())
        }
    };
    if let Some(expected) = expected.filter(|e| *e != digest) {
        let registry = session.registry.clone();
        return Err(RegistryError::DigestMismatch { registry, what: "the manifest".into(), expected, actual: digest });
    }
    if let Wanted::Digest(d, Some(size)) = wanted
        && size != bytes.len() as u64
    {
        let (registry, digest, actual) = (session.registry.clone(), d.clone(), bytes.len() as u64);
        return Err(RegistryError::SizeMismatch {
            registry,
            what: "the manifest".into(),
            digest,
            expected: size,
            actual,
        });
    }
    let media_type = media_type(content_type.as_deref(), &bytes).map_err(bad)?;
    Ok(Fetched { digest, media_type, bytes })
}

/// Why `repository` has no tag `tag`: registries answer an unknown
/// repository's manifests like unknown tags, so its tag list decides.
fn missing_tag(session: &Session<'_>, repository: &str, tag: &str) -> RegistryError {
    #[derive(serde::Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let what = format!("the tags of {repository}");
    let url = session.url(&format!("/v2/{repository}/tags/list?n=1000"));
    let (registry, repository) = (session.registry.clone(), repository.to_owned());
    let unknown_tag = |message: String| RegistryError::UnknownTag {
        registry: registry.clone(),
        repository: repository.clone(),
        tag: tag.to_owned(),
        message,
    };
    let response = match session.send("GET", &url, &[], &Body::Empty, &what) {
        Ok(r) => r,
        Err(_) => return unknown_tag(String::new()),
    };
    if !response.status().is_success() {
        return match session.fail(response, &what, Target::Repository(&repository)) {
            e @ RegistryError::UnknownRepository { .. } => e,
            _ => unknown_tag(String::new()),
        };
    }
    let tags = serde_json::from_slice::<Tags>(&read_small(response)).ok().and_then(|t| t.tags).unwrap_or_default();
    if tags.is_empty() {
        return RegistryError::UnknownRepository { registry, repository, message: "it has no tags".into() };
    }
    let shown: Vec<&str> = tags.iter().take(10).map(String::as_str).collect();
    let more = if tags.len() > shown.len() { ", …" } else { "" };
    unknown_tag(format!("it has: {}{more}", shown.join(", ")))
}

/// The media type of a manifest body: its own `mediaType`, else the
/// `Content-Type`, else guessed from its shape (OCI allows leaving it out).
fn media_type(content_type: Option<&str>, bytes: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let shape: Shape = serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON ({e})"))?;
    if shape.schema_version == Some(1) {
        return Err("it is a Docker schema 1 manifest, which berth does not read; push the image again with a current client (schema 2 or OCI)".into());
    }
    let known = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
    let chosen =
        shape.media_type.or_else(|| content_type.filter(|c| known.contains(c)).map(str::to_owned)).or_else(|| {
            match (&shape.manifests, &shape.layers) {
                (Some(_), None) => Some(OCI_INDEX.to_owned()),
                (None, Some(_)) => Some(OCI_MANIFEST.to_owned()),
                _ => None,
            }
        });
    match chosen {
        Some(t) if known.contains(&t.as_str()) => Ok(t),
        Some(t) => Err(format!("its media type is {t:?}; berth reads OCI and Docker schema 2 manifests and indexes")),
        None => Err("it is neither a manifest nor an index".into()),
    }
}

/// Reads a small JSON blob (a config) whole, checking size and digest.
pub(crate) fn fetch_json_blob(
    session: &Session<'_>,
    repository: &str,
    digest: &Digest,
    size: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let url = session.url(&format!("/v2/{repository}/blobs/{digest}"));
    let response = session.send("GET", &url, &[], &Body::Empty, what)?;
    if !response.status().is_success() {
        return Err(session.fail(response, what, Target::Blob(repository, digest)));
    }
    let registry = session.registry.clone();
    if size > MAX_MANIFEST * 4 {
        let why = format!("it is {size} bytes; berth reads configs of at most {} bytes", MAX_MANIFEST * 4);
        drop(read_small(response));
        return Err(RegistryError::BadContent { registry, what: what.into(), why });
    }
    let bytes = response
        .into_body()
        .with_config()
        .limit(size + 1)
        .read_to_vec()
        .map_err(|e| RegistryError::Transfer { registry: registry.clone(), what: what.into(), why: e.to_string() })?;
    if bytes.len() as u64 != size {
        let (what, digest, actual) = (what.to_owned(), digest.clone(), bytes.len() as u64);
        return Err(RegistryError::SizeMismatch { registry, what, digest, expected: size, actual });
    }
    let actual = Digest::sha256(&bytes);
    if actual != *digest {
        return Err(RegistryError::DigestMismatch { registry, what: what.into(), expected: digest.clone(), actual });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::image::{Arch, MediaType, Os, PlatformBuilder};

    use super::*;

    fn entry(n: u8, platform: Option<(Os, Arch, Option<&str>)>) -> Descriptor {
        let mut d = Descriptor::new(MediaType::ImageManifest, 2, &Digest::sha256(&[n]));
        if let Some((os, arch, variant)) = platform {
            let mut p = PlatformBuilder::default().os(os).architecture(arch).build().unwrap();
            p.set_variant(variant.map(str::to_owned));
            d.set_platform(Some(p));
        }
        d
    }

    #[test]
    fn platforms_parse_and_print() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()), ("linux", "arm64", Some("v8")));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        assert_eq!(Platform::host().to_string(), format!("{}/{}", Os::default(), Arch::default()));
    }

    #[test]
    fn index_entries_are_chosen_by_platform() {
        let amd = entry(1, Some((Os::Linux, Arch::Amd64, None)));
        let arm = entry(2, Some((Os::Linux, Arch::ARM64, Some("v8"))));
        let arm7 = entry(3, Some((Os::Linux, Arch::ARM, Some("v7"))));
        let mut attestation = entry(4, Some((Os::Other("unknown".into()), Arch::Other("unknown".into()), None)));
        attestation.set_annotations(Some(HashMap::from([(
            "vnd.docker.reference.type".to_owned(),
            "attestation-manifest".to_owned(),
        )])));
        let entries = [attestation, arm7.clone(), amd.clone(), arm.clone()];
        assert_eq!(choose(&entries, &"linux/amd64".parse().unwrap()).unwrap(), &amd);
        assert_eq!(choose(&entries, &"linux/arm64".parse().unwrap()).unwrap(), &arm);
        assert_eq!(choose(&entries, &"linux/arm/v7".parse().unwrap()).unwrap(), &arm7);
        let missing = choose(&entries, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert_eq!(missing, ["linux/arm/v7", "linux/amd64", "linux/arm64/v8"]);
        let unnamed = entry(5, None);
        assert_eq!(choose(std::slice::from_ref(&unnamed), &Platform::host()).unwrap(), &unnamed);
    }

    #[test]
    fn media_types_come_from_the_body_first() {
        let oci = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(media_type(Some("application/json"), oci).unwrap(), OCI_MANIFEST);
        assert_eq!(media_type(Some(DOCKER_MANIFEST), oci).unwrap(), DOCKER_MANIFEST);
        let docker = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[]}}"#);
        assert_eq!(media_type(Some("text/plain"), docker.as_bytes()).unwrap(), DOCKER_LIST);
        assert!(media_type(None, br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err().contains("schema 1"));
        assert!(media_type(None, br#"{"mediaType":"text/html"}"#).unwrap_err().contains("text/html"));
        assert!(media_type(None, b"<html>").unwrap_err().contains("not JSON"));
    }
}
