//! The legacy `docker save` form (also `podman save --format
//! docker-archive`): `manifest.json` is `[{"Config": …, "RepoTags": […],
//! "Layers": […]}]`, naming a config file and one tar per layer (plain,
//! gzip or zstd), possibly through symlinks (Docker links duplicate layers;
//! podman links `<id>/layer.tar` to `<diffid>.tar`). Names and links are
//! followed inside the archive only: one leading out is refused.
//!
//! The archive has no manifests, so berth writes an OCI manifest for each
//! image (canonical JSON): the config as it is, each layer file as a blob
//! as it is, with the OCI media type its first bytes call for. A plain
//! layer's digest is its diffID, which is checked here; a config named
//! `<hex>.json` (or `blobs/sha256/<hex>`) must have that digest.

use std::collections::BTreeMap;

use oci_spec::image::{ImageConfiguration, MediaType};
use serde::Deserialize;

use super::contents::{
    ArchiveContents, ArchiveImage, ArchiveLayer, familiar_name, json_bytes, parse, parse_digest, resolve,
};
use super::media::{self, LayerCompression};
use super::read::{ArchiveFile, RawArchive};
use super::{ArchiveFormat, FormatError};
use crate::oci::Digest;
use crate::oci::image::{canonical_json, descriptor, image_manifest};

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct LegacyEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

pub(super) fn interpret<B>(raw: RawArchive<B>) -> Result<ArchiveContents<B>, FormatError> {
    let what = "a docker-archive manifest.json";
    let (real, file) = found(&raw, "manifest.json", "manifest")?;
    let entries: Vec<LegacyEntry> = parse(&real, what, json_bytes(&real, what, file)?)?;
    let mut images = Vec::with_capacity(entries.len());
    let mut locations = BTreeMap::new();
    for entry in &entries {
        let (image, files) = image(&raw, entry)?;
        locations.extend(files);
        images.push(image);
    }
    Ok(ArchiveContents::new(ArchiveFormat::Docker, images, raw, locations))
}

/// The file `name` (after links), which manifest.json names as `what`.
fn found<'a, B>(
    raw: &'a RawArchive<B>,
    name: &str,
    what: &'static str,
) -> Result<(String, &'a ArchiveFile<B>), FormatError> {
    resolve(raw, name, what).unwrap_or_else(|| Err(FormatError::FileMissing { what, file: name.to_owned() }))
}

/// One image, and the archive file holding each of its layer blobs.
fn image<B>(raw: &RawArchive<B>, entry: &LegacyEntry) -> Result<(ArchiveImage, Vec<(Digest, String)>), FormatError> {
    let (config_name, config_file) = found(raw, &entry.config, "config")?;
    let config_bytes = json_bytes(&config_name, "an image config", config_file)?;
    let config_digest = config_file.digest.clone();
    if let Some(named) = digest_in_name(&entry.config)
        && named != config_digest
    {
        return Err(FormatError::ConfigDigest { file: entry.config.clone(), expected: named, actual: config_digest });
    }
    let config: ImageConfiguration = parse(&config_name, "an image config", config_bytes)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        let (layers, diff_ids) = (entry.layers.len(), diff_ids.len());
        return Err(FormatError::LayerCount { image: entry.config.clone(), layers, diff_ids });
    }

    let mut layers = Vec::with_capacity(entry.layers.len());
    let mut files = Vec::with_capacity(entry.layers.len());
    for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
        let diff_id = parse_digest("diff_id", diff_id)?;
        let (real, file) = found(raw, name, "layer")?;
        let compression = media::sniff_compression(&file.magic);
        if compression == LayerCompression::None && file.digest != diff_id {
            return Err(FormatError::LegacyDiffId {
                file: name.clone(),
                expected: diff_id,
                actual: file.digest.clone(),
            });
        }
        files.push((file.digest.clone(), real));
        layers.push(ArchiveLayer {
            digest: file.digest.clone(),
            diff_id,
            size: file.size,
            media_type: compression.oci_media_type().to_owned(),
            compression,
        });
    }

    let layer_descriptors =
        layers.iter().map(|l| descriptor(MediaType::from(l.media_type.as_str()), l.size, &l.digest)).collect();
    let config_descriptor = descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest);
    let manifest = image_manifest(config_descriptor, layer_descriptors);
    let manifest_bytes =
        canonical_json(&manifest).map_err(|source| FormatError::Encode { what: "an image manifest", source })?;
    let image = ArchiveImage {
        names: entry.repo_tags.iter().flatten().map(|t| familiar_name(t)).collect(),
        annotations: BTreeMap::new(),
        ref_names: entry.repo_tags.clone().unwrap_or_default(),
        index: None,
        manifest_digest: Digest::sha256(&manifest_bytes),
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        manifest_bytes,
        manifest,
        config_digest,
        config_bytes: config_bytes.to_vec(),
        config,
        layers,
    };
    Ok((image, files))
}

/// The digest a file name carries, if it has the form `<64 hex>.json` or
/// `blobs/sha256/<64 hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let hex = name.strip_suffix(".json").or_else(|| name.strip_prefix("blobs/sha256/"))?;
    format!("sha256:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_carry_digests_when_they_look_like_one() {
        let hex = "04a6cbbf4799c8c043e071904290e51f94092bda7b3a8f212889916eaeb3696a";
        let digest: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(digest_in_name(&format!("{hex}.json")), Some(digest.clone()));
        assert_eq!(digest_in_name(&format!("blobs/sha256/{hex}")), Some(digest));
        assert_eq!(digest_in_name("config.json"), None);
    }
}
