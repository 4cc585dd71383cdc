//! The OCI form: an image layout (`oci-layout`, `index.json`, `blobs/`) as
//! `berth save`, `podman save --format oci-archive`, `skopeo copy …
//! oci-archive:` and Docker 25+ `docker save` write it.
//!
//! Each `index.json` entry is an image: an image manifest, or an image index
//! (possibly nested) followed to the manifest for this machine's platform.
//! Its names come from the entry's annotations: `io.containerd.image.name`
//! (Docker 25+, containerd) when present, else
//! `org.opencontainers.image.ref.name`; an entry with neither takes the
//! `RepoTags` of a Docker-style `manifest.json` entry with the same config,
//! if the archive has one. Entries naming the same manifest are one image.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, OciLayout};

use super::contents::{
    ArchiveContents, ArchiveImage, ArchiveLayer, blob_name, familiar_name, json_bytes, parse, parse_digest, resolve,
};
use super::legacy::LegacyEntry;
use super::media::{self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use super::read::RawArchive;
use super::{ArchiveFormat, FormatError};
use crate::oci::Digest;
use crate::oci::digest::Algorithm;

/// How many image indexes deep an entry may nest before its manifest.
const MAX_NESTING: usize = 4;

pub(super) fn interpret<B>(raw: RawArchive<B>) -> Result<ArchiveContents<B>, FormatError> {
    let reader = Reader { raw: &raw };
    let marker = reader
        .json_file("oci-layout", "an OCI layout marker")?
        .ok_or_else(|| FormatError::NotAnImageArchive { why: "it has index.json but no oci-layout".to_owned() })?;
    let layout: OciLayout = parse("oci-layout", "an OCI layout marker", marker)?;
    if layout.image_layout_version() != "1.0.0" {
        return Err(FormatError::LayoutVersion { found: layout.image_layout_version().clone() });
    }
    let index_bytes = reader.json_file("index.json", "an image index")?.unwrap_or_default();
    let index: ImageIndex = parse("index.json", "an OCI image index", index_bytes)?;
    let repo_tags = reader.repo_tags()?;

    let mut images: Vec<ArchiveImage> = Vec::new();
    let mut locations = BTreeMap::new();
    for entry in index.manifests() {
        let (image_index, (manifest_digest, manifest_bytes, manifest)) = reader.manifest_for_host(entry)?;
        let mut annotations: BTreeMap<String, String> =
            entry.annotations().clone().unwrap_or_default().into_iter().collect();
        let names = names_of(&annotations);
        let ref_name = annotations.remove(ANNOTATION_REF_NAME);
        annotations.remove(ANNOTATION_CONTAINERD_NAME);
        if let Some(seen) = images.iter_mut().find(|i| i.manifest_digest == manifest_digest) {
            for name in names {
                if !seen.names.contains(&name) {
                    seen.names.push(name);
                }
            }
            seen.ref_names.extend(ref_name);
            seen.annotations.extend(annotations);
            continue;
        }
        let mut image = reader.image(image_index, entry, manifest_digest, manifest_bytes, manifest, annotations)?;
        image.names = names;
        image.ref_names.extend(ref_name);
        for layer in &image.layers {
            locations.insert(layer.digest.clone(), blob_name(&layer.digest));
        }
        images.push(image);
    }
    for image in &mut images {
        if image.names.is_empty()
            && let Some(tags) = repo_tags.get(&image.config_digest)
        {
            image.names = tags.iter().map(|t| familiar_name(t)).collect();
        }
    }
    let locations = locations
        .into_iter()
        .map(|(digest, name)| match resolve(&raw, &name, "layer") {
            Some(Ok((real, _))) => Ok((digest, real)),
            Some(Err(e)) => Err(e),
            None => Ok((digest, name)),
        })
        .collect::<Result<_, _>>()?;
    Ok(ArchiveContents::new(ArchiveFormat::Oci, images, raw, locations))
}

/// The names an `index.json` entry's annotations give.
fn names_of(annotations: &BTreeMap<String, String>) -> Vec<String> {
    let containerd = annotations.get(ANNOTATION_CONTAINERD_NAME).filter(|n| !n.is_empty() && !n.contains('@'));
    match containerd.or_else(|| annotations.get(ANNOTATION_REF_NAME).filter(|n| !n.is_empty())) {
        Some(name) => vec![familiar_name(name)],
        None => Vec::new(),
    }
}

struct Reader<'a, B> {
    raw: &'a RawArchive<B>,
}

impl<'a, B> Reader<'a, B> {
    /// The bytes of the JSON file `name`, if the archive has it.
    fn json_file(&self, name: &str, what: &'static str) -> Result<Option<&'a [u8]>, FormatError> {
        match resolve(self.raw, name, "file") {
            None => Ok(None),
            Some(found) => {
                let (real, file) = found?;
                json_bytes(&real, what, file).map(Some)
            }
        }
    }

    /// Config digest → `RepoTags` from a Docker-style `manifest.json`, if any.
    fn repo_tags(&self) -> Result<BTreeMap<Digest, Vec<String>>, FormatError> {
        let Some(bytes) = self.json_file("manifest.json", "a docker-archive manifest.json")? else {
            return Ok(BTreeMap::new());
        };
        let entries: Vec<LegacyEntry> = parse("manifest.json", "a docker-archive manifest.json", bytes)?;
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let hex = e.config.strip_prefix("blobs/sha256/")?;
                let digest = format!("sha256:{hex}").parse().ok()?;
                Some((digest, e.repo_tags.unwrap_or_default()))
            })
            .collect())
    }

    /// The blob `desc` names (`what` says which role it plays), checked
    /// against the descriptor's digest and size.
    fn blob(&self, what: &'static str, desc: &Descriptor) -> Result<(Digest, String), FormatError> {
        let digest = parse_digest(what, desc.digest().as_ref())?;
        if digest.algorithm() != Algorithm::Sha256 {
            let algorithm = digest.algorithm().name();
            return Err(FormatError::Algorithm { digest, algorithm });
        }
        let name = blob_name(&digest);
        let (real, file) = match resolve(self.raw, &name, what) {
            Some(found) => found?,
            None => return Err(FormatError::BlobMissing { what, digest, file: name }),
        };
        if file.digest != digest {
            return Err(FormatError::BlobNameMismatch { what, expected: digest, actual: file.digest.clone() });
        }
        if file.size != desc.size() {
            return Err(FormatError::SizeMismatch { digest, expected: desc.size(), actual: file.size });
        }
        Ok((digest, real))
    }

    /// The bytes of the JSON blob `desc`, checked as [`blob`](Self::blob) does.
    fn json_blob(&self, what: &'static str, desc: &Descriptor) -> Result<(Digest, &'a [u8]), FormatError> {
        let (digest, real) = self.blob(what, desc)?;
        let file = &self.raw.files[&real];
        Ok((digest, json_bytes(&real, what, file)?))
    }

    /// Follows the `index.json` entry `entry` through image indexes to the
    /// manifest for this machine: the last index followed, and the
    /// manifest's digest, bytes and parsed form.
    #[allow(clippy::type_complexity)]
    fn manifest_for_host(
        &self,
        entry: &Descriptor,
    ) -> Result<(Option<Digest>, (Digest, Vec<u8>, ImageManifest)), FormatError> {
        let mut desc = entry.clone();
        let mut followed = None;
        for _ in 0..=MAX_NESTING {
            let media_type = desc.media_type().to_string();
            if media::is_index(&media_type) {
                let (digest, bytes) = self.json_blob("image index", &desc)?;
                let index: ImageIndex = parse(&blob_name(&digest), "an image index", bytes)?;
                check_own_type(&digest, &media_type, index.media_type().as_ref().map(ToString::to_string))?;
                desc = choose_platform(index.manifests())
                    .map_err(|available| FormatError::NoPlatform {
                        digest: digest.clone(),
                        wanted: host_platform(),
                        available,
                    })?
                    .clone();
                followed = Some(digest);
            } else if media::is_manifest(&media_type) {
                let (digest, bytes) = self.json_blob("manifest", &desc)?;
                let value: serde_json::Value = parse(&blob_name(&digest), "an image manifest", bytes)?;
                let own = value.get("mediaType").and_then(serde_json::Value::as_str).map(str::to_owned);
                check_own_type(&digest, &media_type, own)?;
                if value.get("manifests").is_some() {
                    return Err(FormatError::IndexAsManifest { digest, listed: media_type });
                }
                let manifest: ImageManifest = parse(&blob_name(&digest), "an image manifest", bytes)?;
                return Ok((followed, (digest, bytes.to_vec(), manifest)));
            } else {
                let expected = "an image manifest or image index (OCI or Docker)";
                let digest = desc.digest().to_string();
                return Err(FormatError::MediaType { what: "index entry", digest, found: media_type, expected });
            }
        }
        Err(FormatError::Nesting(MAX_NESTING))
    }

    /// The image with manifest `manifest`: config read and parsed, every
    /// layer blob present with the right size and a layer media type.
    fn image(
        &self,
        index: Option<Digest>,
        entry: &Descriptor,
        manifest_digest: Digest,
        manifest_bytes: Vec<u8>,
        manifest: ImageManifest,
        annotations: BTreeMap<String, String>,
    ) -> Result<ArchiveImage, FormatError> {
        let config_desc = manifest.config();
        let config_type = config_desc.media_type().to_string();
        if !media::is_config(&config_type) {
            let digest = config_desc.digest().to_string();
            let expected = "an OCI or Docker image config";
            return Err(FormatError::MediaType { what: "config", digest, found: config_type, expected });
        }
        let mut layers = Vec::with_capacity(manifest.layers().len());
        for desc in manifest.layers() {
            let media_type = desc.media_type().to_string();
            let Some(compression) = media::layer_compression(&media_type) else {
                let digest = desc.digest().to_string();
                let expected = "a layer: tar, tar+gzip or tar+zstd (OCI or Docker)";
                return Err(FormatError::MediaType { what: "layer", digest, found: media_type, expected });
            };
            let (digest, _) = self.blob("layer", desc)?;
            layers.push((digest, desc.size(), media_type, compression));
        }
        let (config_digest, config_bytes) = self.json_blob("config", config_desc)?;
        let config: ImageConfiguration = parse(&blob_name(&config_digest), "an image config", config_bytes)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != layers.len() {
            let (image, layers, diff_ids) = (manifest_digest.to_string(), layers.len(), diff_ids.len());
            return Err(FormatError::LayerCount { image, layers, diff_ids });
        }
        let layers = layers
            .into_iter()
            .zip(diff_ids)
            .map(|((digest, size, media_type, compression), diff_id)| {
                let diff_id = parse_digest("diff_id", diff_id)?;
                Ok(ArchiveLayer { digest, diff_id, size, media_type, compression })
            })
            .collect::<Result<_, FormatError>>()?;
        Ok(ArchiveImage {
            names: Vec::new(),
            annotations,
            ref_names: Vec::new(),
            index,
            manifest_digest,
            manifest_media_type: entry_manifest_type(entry, &manifest),
            manifest_bytes,
            manifest,
            config_digest,
            config_bytes: config_bytes.to_vec(),
            config,
            layers,
        })
    }
}

/// The manifest's media type: its own field, else its descriptor's (when
/// the entry was not an index).
fn entry_manifest_type(entry: &Descriptor, manifest: &ImageManifest) -> String {
    match manifest.media_type() {
        Some(own) => own.to_string(),
        None if media::is_manifest(entry.media_type().as_ref()) => entry.media_type().to_string(),
        None => media::OCI_MANIFEST.to_owned(),
    }
}

/// Refuses a manifest or index whose own `mediaType` contradicts the
/// descriptor that led to it.
fn check_own_type(digest: &Digest, listed: &str, own: Option<String>) -> Result<(), FormatError> {
    match own {
        Some(own) if own != listed => {
            Err(FormatError::OwnMediaType { digest: digest.clone(), listed: listed.to_owned(), own })
        }
        _ => Ok(()),
    }
}

/// This machine's platform as image indexes name it, such as `linux/amd64`.
pub fn host_platform() -> String {
    format!("{}/{}", oci_spec::image::Os::default(), oci_spec::image::Arch::default())
}

/// The entry of an image index for this machine's platform, skipping
/// attestations; an index whose one image names no platform gives that
/// image. Otherwise the platforms it has.
pub fn choose_platform(entries: &[Descriptor]) -> Result<&Descriptor, Vec<String>> {
    choose_platform_for(entries, &host_platform())
}

/// [`choose_platform`] for the platform `wanted`.
pub(super) fn choose_platform_for<'d>(entries: &'d [Descriptor], wanted: &str) -> Result<&'d Descriptor, Vec<String>> {
    let name = |d: &Descriptor| d.platform().as_ref().map(|p| format!("{}/{}", p.os(), p.architecture()));
    let is_attestation = |d: &Descriptor| {
        let annotated = d.annotations().as_ref().and_then(|a| a.get("vnd.docker.reference.type"));
        annotated.is_some_and(|t| t == "attestation-manifest") || name(d).as_deref() == Some("unknown/unknown")
    };
    let images: Vec<&Descriptor> = entries.iter().filter(|d| !is_attestation(d)).collect();
    if let Some(found) = images.iter().find(|d| name(d).as_deref() == Some(wanted)) {
        return Ok(found);
    }
    if let [only] = images.as_slice()
        && only.platform().is_none()
    {
        return Ok(only);
    }
    Err(images.iter().map(|d| name(d).unwrap_or_else(|| "unspecified".to_owned())).collect())
}
