//! What an archive holds: its images, each with its names, annotations,
//! manifest, config and layers, every descriptor checked against the file
//! it names.
//!
//! [`interpret`] decides the format from the files a [`RawArchive`] holds —
//! `index.json` makes it an OCI image layout (`layout`), else
//! `manifest.json` a legacy `docker save` archive (`legacy`) — and checks
//! what can be checked without decompressing layers: every blob is present,
//! has the size its descriptor gives and the digest its name gives (so does
//! every other file named `blobs/sha256/<hex>`), every media type fits the
//! role its blob plays, every manifest and config parses, each image has as
//! many layers as diffIDs, and no name or link read from the archive leads
//! out of it (an absolute name or symlink, or `..`). Whether each
//! layer's uncompressed content has its diffID is for whoever reads the
//! layers (the store checks it while unpacking).

use std::collections::BTreeMap;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::media::LayerCompression;
use super::read::{ArchiveFile, Content, Link, RawArchive};
use super::{ArchiveFormat, FormatError, layout, legacy};
use crate::oci::Digest;

/// How many symlinks deep a name may lead before it is refused.
const MAX_LINKS: usize = 8;

/// An archive read and checked; see the module page.
#[derive(Debug)]
pub struct ArchiveContents<B> {
    pub format: ArchiveFormat,
    /// In the order the archive lists them, one per manifest.
    pub images: Vec<ArchiveImage>,
    raw: RawArchive<B>,
    /// Which file of the archive holds each layer blob.
    locations: BTreeMap<Digest, String>,
}

/// One image of an archive.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveImage {
    /// The names it is given, as the archive writes them (familiar form for
    /// Docker Hub names: `busybox:latest`); empty when it has none.
    pub names: Vec<String>,
    /// The annotations on its `index.json` entries other than the two that
    /// name it (which are in `names`): OCI archives only, merged when
    /// several entries name it. Written back as they are by `write`.
    pub annotations: BTreeMap<String, String>,
    /// The names exactly as the archive writes them: the
    /// `org.opencontainers.image.ref.name` of its `index.json` entries (OCI),
    /// or its `RepoTags` (`docker save`). Bases such as
    /// `oci-archive:FILE:TAG` choose an image by these. Not written.
    pub ref_names: Vec<String>,
    /// The image index this manifest was chosen from for this machine's
    /// platform, when the entry was an index.
    pub index: Option<Digest>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// The manifest's bytes: its digest is `manifest_digest`. For a `docker
    /// save` archive, which has no manifest, an OCI manifest berth wrote.
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfiguration,
    /// Bottom first.
    pub layers: Vec<ArchiveLayer>,
}

impl ArchiveImage {
    /// The annotation `key`: from the manifest's own annotations first, then
    /// from its `index.json` entry.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        let own = self.manifest.annotations().as_ref().and_then(|a| a.get(key));
        own.or_else(|| self.annotations.get(key)).map(String::as_str)
    }
}

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveLayer {
    /// The blob's digest.
    pub digest: Digest,
    /// The uncompressed tar's digest, from the image config.
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    pub compression: LayerCompression,
}

impl<B> ArchiveContents<B> {
    pub(super) fn new(
        format: ArchiveFormat,
        images: Vec<ArchiveImage>,
        raw: RawArchive<B>,
        locations: BTreeMap<Digest, String>,
    ) -> Self {
        ArchiveContents { format, images, raw, locations }
    }

    /// The file holding the layer blob `digest`, and its name in the archive.
    pub fn layer_file(&self, digest: &Digest) -> Option<(&str, &ArchiveFile<B>)> {
        let name = self.locations.get(digest)?;
        Some((name.as_str(), self.raw.files.get(name)?))
    }
}

/// Reads the images out of `raw`; see the module page.
pub fn interpret<B>(raw: RawArchive<B>) -> Result<ArchiveContents<B>, FormatError> {
    let contents = if raw.files.contains_key("index.json") {
        layout::interpret(raw)?
    } else if raw.files.contains_key("manifest.json") || raw.links.contains_key("manifest.json") {
        legacy::interpret(raw)?
    } else {
        let why = "it has neither index.json nor manifest.json".to_owned();
        return Err(FormatError::NotAnImageArchive { why });
    };
    check_blob_names(&contents.raw)?;
    Ok(contents)
}

/// Refuses a file named `blobs/sha256/<hex>` whose content has another
/// digest, whether an image uses it or not. (Those an image uses were
/// checked already, with the role they play.)
fn check_blob_names<B>(raw: &RawArchive<B>) -> Result<(), FormatError> {
    for (name, file) in &raw.files {
        let Some(hex) = name.strip_prefix("blobs/sha256/") else { continue };
        if let Ok(expected) = format!("sha256:{hex}").parse::<Digest>()
            && expected != file.digest
        {
            return Err(FormatError::BlobNameMismatch { what: "blob", expected, actual: file.digest.clone() });
        }
    }
    Ok(())
}

/// The file `name` leads to, following links inside the archive, and its
/// final name; `None` if there is no such file. `name` was read from the
/// archive's JSON, where it names the `what`: an absolute name, one with a
/// `..` component, or a link on the way that leads out of the archive is
/// refused.
pub(super) fn resolve<'a, B>(
    raw: &'a RawArchive<B>,
    name: &str,
    what: &'static str,
) -> Option<Result<(String, &'a ArchiveFile<B>), FormatError>> {
    let leads_out = |link| Some(Err(FormatError::LeadsOut { what, name: name.to_owned(), link }));
    if name.starts_with('/') || name.split('/').any(|part| part == "..") {
        return leads_out(None);
    }
    let mut current = join(Vec::new(), name)?;
    for _ in 0..=MAX_LINKS {
        if let Some(file) = raw.files.get(&current) {
            return Some(Ok((current, file)));
        }
        let link = raw.links.get(&current)?;
        current = match join_link(&current, link) {
            Some(next) => next,
            None => return leads_out(Some((current, link.target().to_owned()))),
        };
    }
    let why = "goes through too many links";
    Some(Err(FormatError::BadLink { entry: name.to_owned(), target: current, why }))
}

/// Where the link `link` to `to` points, as an archive name: relative to
/// the root for a hard link, to the link's directory for a symlink; `None`
/// if it leads out (an absolute symlink, or `..` above the root).
fn join_link(link: &str, to: &Link) -> Option<String> {
    match to {
        Link::Hard(target) => join(Vec::new(), target),
        Link::Symbolic(target) if target.starts_with('/') => None,
        Link::Symbolic(target) => {
            let mut dir: Vec<&str> = link.split('/').collect();
            dir.pop();
            join(dir, target)
        }
    }
}

/// The components `parts` followed by the relative path `rel`, as an
/// archive name; `None` if `rel` climbs above the root.
fn join<'a>(mut parts: Vec<&'a str>, rel: &'a str) -> Option<String> {
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// The bytes of the JSON file `file` (named `name`), which must have been
/// kept in memory.
pub(super) fn json_bytes<'a, B>(
    name: &str,
    what: &'static str,
    file: &'a ArchiveFile<B>,
) -> Result<&'a [u8], FormatError> {
    match &file.content {
        Content::Memory(bytes) => Ok(bytes),
        Content::Sink(_) => {
            Err(FormatError::TooLarge { file: name.to_owned(), what, size: file.size, limit: super::read::JSON_FILE })
        }
    }
}

/// Parses `bytes` of the file `name` as `what`.
pub(super) fn parse<T: serde::de::DeserializeOwned>(
    name: &str,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, FormatError> {
    serde_json::from_slice(bytes).map_err(|source| FormatError::Json { file: name.to_owned(), what, source })
}

/// Parses a digest written in the archive's JSON.
pub(super) fn parse_digest(what: &'static str, digest: &str) -> Result<Digest, FormatError> {
    digest.parse().map_err(|source| FormatError::BadDigest { what, digest: digest.to_owned(), source })
}

/// `blobs/sha256/<hex>`: the file holding the blob `digest` in an OCI
/// image layout.
pub fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

/// `name` in the familiar form Docker prints: `docker.io/library/busybox:1`
/// is `busybox:1`, `docker.io/team/app` is `team/app`; other names stay.
pub fn familiar_name(name: &str) -> String {
    for prefix in ["docker.io/library/", "index.docker.io/library/"] {
        if let Some(rest) = name.strip_prefix(prefix)
            && !rest.contains('/')
        {
            return rest.to_owned();
        }
    }
    for prefix in ["docker.io/", "index.docker.io/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_inside_the_archive_only() {
        let sym = |t: &str| Link::Symbolic(t.to_owned());
        assert_eq!(join_link("abc/layer.tar", &sym("../def.tar")).as_deref(), Some("def.tar"));
        assert_eq!(join_link("abc/layer.tar", &Link::Hard("def.tar".to_owned())).as_deref(), Some("def.tar"));
        assert_eq!(join_link("abc/layer.tar", &sym("./x/../y.tar")).as_deref(), Some("abc/y.tar"));
        assert_eq!(join_link("abc/layer.tar", &sym("/def.tar")), None);
        assert_eq!(join_link("abc/layer.tar", &sym("../../etc/passwd")), None);
        assert_eq!(join_link("layer.tar", &sym("../x")), None);
    }

    #[test]
    fn names_from_json_stay_inside_the_archive() {
        let mut raw = RawArchive::<()>::default();
        raw.links.insert("link.tar".to_owned(), Link::Symbolic("/etc/passwd".to_owned()));
        for name in ["../x.tar", "/etc/passwd", "a/../b", "link.tar"] {
            let found = resolve(&raw, name, "layer");
            assert!(matches!(found, Some(Err(FormatError::LeadsOut { what: "layer", .. }))), "{name}: {found:?}");
        }
        assert!(resolve(&raw, "./missing.tar", "layer").is_none());
    }

    #[test]
    fn familiar_names_are_docker_hubs() {
        assert_eq!(familiar_name("docker.io/library/busybox:latest"), "busybox:latest");
        assert_eq!(familiar_name("docker.io/team/app:1"), "team/app:1");
        assert_eq!(familiar_name("localhost/busybox:latest"), "localhost/busybox:latest");
        assert_eq!(familiar_name("quay.io/a/b:c"), "quay.io/a/b:c");
        assert_eq!(familiar_name("busybox"), "busybox");
    }
}
