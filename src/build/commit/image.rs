//! The image a commit writes: the container's image with one more layer
//! (none when nothing changed), its runtime defaults with the `--change`
//! instructions applied, and one more history entry.

use oci_spec::image::{Descriptor, ImageConfiguration, MediaType};

use super::CommitError;
use crate::oci::Digest;
use crate::oci::image::{ImageConfigInput, canonical_json, descriptor, history_entry, image_manifest};
use crate::store::{Image, LayerRecord, Store};

/// What goes into the new image besides the parent.
pub(super) struct NewImage<'a> {
    pub parent: &'a Image,
    /// The runtime defaults, changes applied.
    pub input: &'a ImageConfigInput,
    /// The new layer, `None` when the container changed nothing.
    pub layer: Option<&'a LayerRecord>,
    pub created: &'a str,
    pub created_by: &'a str,
    pub comment: Option<&'a str>,
    pub author: Option<&'a str>,
}

/// The manifest written: its digest and size.
pub(super) struct Written {
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
}

/// Writes the config and manifest blobs of `new` into `store`.
pub(super) fn write(store: &Store, new: &NewImage<'_>) -> Result<Written, CommitError> {
    let config = config(new);
    let encode = |what| move |source| CommitError::Encode { what, source };
    let config_bytes = canonical_json(&config).map_err(encode("config"))?;
    let config_digest = store.put_blob(&config_bytes)?;
    let mut layers: Vec<Descriptor> = new.parent.manifest.layers().clone();
    if let Some(layer) = new.layer {
        layers.push(descriptor(MediaType::from(layer.media_type.as_str()), layer.size, &layer.digest));
    }
    let config_descriptor = descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest);
    let manifest = image_manifest(config_descriptor, layers);
    let manifest_bytes = canonical_json(&manifest).map_err(encode("manifest"))?;
    let manifest_digest = store.put_blob(&manifest_bytes)?;
    Ok(Written { manifest: manifest_digest, manifest_size: manifest_bytes.len() as u64, config: config_digest })
}

/// The parent's config with the new runtime defaults, layer and history
/// entry. What berth does not model of the parent (platform, OS version,
/// variant) is kept as it is.
fn config(new: &NewImage<'_>) -> ImageConfiguration {
    let mut config = new.parent.config.clone();
    config.set_created(Some(new.created.to_owned()));
    config.set_author(new.author.map(str::to_owned));
    config.set_config(new.input.to_config());
    if let Some(layer) = new.layer {
        config.rootfs_mut().diff_ids_mut().push(layer.diff_id.to_string());
    }
    let mut entry = history_entry(new.created, new.created_by, new.layer.is_none());
    entry.set_comment(new.comment.map(str::to_owned));
    entry.set_author(new.author.map(str::to_owned));
    let mut history = config.history().clone().unwrap_or_default();
    history.push(entry);
    config.set_history(Some(history));
    config
}
