//! Finding an image to run: [`Store::resolve_image`] turns what a user
//! typed into an [`Image`] whose manifest, config and layer list have been
//! read and checked.
//!
//! A name is looked up, in this order, as Docker does:
//! 1. a tag (`busybox`, `busybox:latest`, `localhost/x:1`; no tag means
//!    `:latest`);
//! 2. a full manifest digest, `sha256:<64 hex>`;
//! 3. an image ID: at least [`MIN_ID_PREFIX`] hex digits (optionally after
//!    `sha256:`) that begin exactly one manifest's digest, as `berth images`
//!    shows it. Untagged images are found this way too.
//!
//! Every blob under `oci/blobs/sha256/` whose name matches a prefix is
//! opened to see whether it is an image manifest; layers and configs are
//! not images and never match.

use std::fs::{self, File};
use std::io::Read;

use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::de::DeserializeOwned;

use super::{ImageError, LayerRecord, Store, StoreError, normalize_tag_name};
use crate::oci::Digest;

/// The fewest hex digits accepted as an image ID prefix.
pub const MIN_ID_PREFIX: usize = 12;

/// Blobs larger than this are not read when looking for manifests by ID.
const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// An image in the store, read and checked: every digest parsed, as many
/// layers in the manifest as diffIDs in the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// What the image was found by: its tag (`repo:tag`) or manifest digest.
    pub name: String,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The layers, bottom first: blob digest, diffID, size and media type.
    pub layers: Vec<LayerRecord>,
}

impl Store {
    /// The image `name_or_id` names: a tag, a manifest digest or a unique
    /// image ID prefix (see the module page). Reads only; a shared lock is
    /// enough.
    pub fn resolve_image(&self, name_or_id: &str) -> Result<Image, ImageError> {
        if let Ok(wanted) = normalize_tag_name(name_or_id)
            && let Some(tag) = self.tags()?.into_iter().find(|t| t.name == wanted)
        {
            let digest = ImageError::parse_digest(&tag.name, "manifest", tag.descriptor.digest().as_ref())?;
            return self.load_image(tag.name, digest);
        }
        let not_found = || ImageError::NotFound { name: name_or_id.to_owned() };
        let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        let is_hex = !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_hex {
            return Err(not_found());
        }
        if hex.len() < MIN_ID_PREFIX {
            return Err(ImageError::ShortPrefix { name: name_or_id.to_owned(), min: MIN_ID_PREFIX });
        }
        let mut matches = self.manifests_with_prefix(hex)?;
        match matches.len() {
            0 => Err(not_found()),
            1 => {
                let digest = matches.remove(0);
                self.load_image(digest.to_string(), digest)
            }
            _ => Err(ImageError::Ambiguous { prefix: name_or_id.to_owned(), matches }),
        }
    }

    /// The sha256 blobs whose hex starts with `prefix` and which are image
    /// manifests, sorted.
    fn manifests_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>, ImageError> {
        let dir = self.oci_dir().join("blobs/sha256");
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list blobs in", &dir))? {
            let entry = entry.map_err(StoreError::io("list blobs in", &dir))?;
            let name = entry.file_name();
            let Some(digest) = name.to_str().filter(|n| n.starts_with(prefix)).and_then(|n| {
                format!("sha256:{n}").parse::<Digest>().ok() // other names are not blobs
            }) else {
                continue;
            };
            if self.is_manifest(&digest)? {
                found.push(digest);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Whether the blob `digest` parses as an image manifest. Big blobs and
    /// blobs not starting with `{` (layers) are not read.
    fn is_manifest(&self, digest: &Digest) -> Result<bool, ImageError> {
        let path = self.blob_path(digest);
        let mut file = File::open(&path).map_err(StoreError::io("open blob", &path))?;
        let size = file.metadata().map_err(StoreError::io("inspect blob", &path))?.len();
        let mut first = [0u8; 1];
        if size > MAX_MANIFEST_SIZE || file.read(&mut first).map_err(StoreError::io("read blob", &path))? == 0 {
            return Ok(false);
        }
        if first[0] != b'{' {
            return Ok(false);
        }
        let mut bytes = first.to_vec();
        file.read_to_end(&mut bytes).map_err(StoreError::io("read blob", &path))?;
        Ok(serde_json::from_slice::<ImageManifest>(&bytes).is_ok())
    }

    /// Reads and checks the image with manifest `digest`, known as `name`.
    fn load_image(&self, name: String, digest: Digest) -> Result<Image, ImageError> {
        let manifest: ImageManifest = self.read_json(&name, "manifest", &digest)?;
        let config_digest = ImageError::parse_digest(&name, "config", manifest.config().digest().as_ref())?;
        let config: ImageConfiguration = self.read_json(&name, "config", &config_digest)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::LayerCount {
                image: name,
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| {
                Ok(LayerRecord {
                    digest: ImageError::parse_digest(&name, "layer", layer.digest().as_ref())?,
                    diff_id: ImageError::parse_digest(&name, "diff_id", diff_id)?,
                    size: layer.size(),
                    media_type: layer.media_type().to_string(),
                })
            })
            .collect::<Result<_, ImageError>>()?;
        Ok(Image { name, manifest_digest: digest, manifest, config, layers })
    }

    fn read_json<T: DeserializeOwned>(
        &self,
        image: &str,
        what: &'static str,
        digest: &Digest,
    ) -> Result<T, ImageError> {
        let bytes = self.read_blob(digest).map_err(|e| match e {
            StoreError::BlobMissing { digest, path } => {
                ImageError::BlobMissing { image: image.to_owned(), what, digest, path }
            }
            other => other.into(),
        })?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::BadBlob {
            image: image.to_owned(),
            what,
            digest: digest.clone(),
            source,
        })
    }
}
