//! `berth import`: a flat filesystem tar (what `docker export` and `berth
//! export` write) becomes a one-layer OCI image.
//!
//! The tar is streamed through the safe reader into a staging directory,
//! applying any whiteouts (a flat rootfs has none to keep), so the staging
//! directory is already the unpacked layer. The layer blob is then written
//! from that tree by the reproducible layer writer, gzip-compressed, straight
//! into a blob writer, which gives the diffID and blob digest in the same
//! pass. The staging directory becomes `layers/<diffid>`, and the config and
//! manifest are written and tagged last.
//!
//! Order is what keeps a failure harmless: until the tag is set nothing
//! refers to the new blobs and layer, and until each is complete it lives
//! only in `tmp/`, removed on error. A failed import leaves no tag, no
//! partial blob and no staging directory (at worst complete but unused
//! blobs, which garbage collection removes).
//!
//! Entries keep the tar's own mtimes (they are not clamped to an epoch: the
//! tar is already a fixed artifact), so the same tar always gives the same
//! layer. Parent directories the tar does not list are created at import
//! time, so a tar lacking them gives a new layer digest on each import.

use std::io::{BufWriter, Read};
use std::time::SystemTime;

use oci_spec::image::MediaType;

use super::unwritable::from_unpack;
use super::{ImageError, LayerRecord, Store, StoreError, normalize_tag_name, rfc3339};
use crate::oci::image::{canonical_json, descriptor, history_entry, image_config, image_manifest};
use crate::oci::{
    Compression, Digest, ImageConfigInput, MtimePolicy, UnpackOptions, Whiteouts, unpack_compressed, write_tree,
};

/// What [`Store::import_rootfs`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedImage {
    /// The manifest's digest: the image's ID.
    pub manifest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The config blob's digest.
    pub config: Digest,
    /// The one layer.
    pub layer: LayerRecord,
    /// The tag set, in full `repository:tag` form, if a name was given.
    pub tag: Option<String>,
}

/// Mtimes are kept as the tar has them (not clamped to an epoch).
const KEEP_MTIMES: MtimePolicy = MtimePolicy::Keep;

impl Store {
    /// Imports the flat filesystem tar `tar` (plain or gzip) as a one-layer
    /// image with `config` as its runtime defaults and `comment` as the
    /// layer's history `created_by`, and tags it `name` (`:latest` if no tag
    /// is given) when a name is given (see the module page). Owners are
    /// kept when running as root. The caller holds [`Store::lock_exclusive`].
    pub fn import_rootfs(
        &self,
        tar: impl Read,
        name: Option<&str>,
        config: ImageConfigInput,
        comment: &str,
    ) -> Result<ImportedImage, ImageError> {
        let tag = name.map(normalize_tag_name).transpose()?;
        let staging = self.layer_staging_dir()?;
        let options = UnpackOptions { whiteouts: Whiteouts::Apply, preserve_owners: crate::sys::euid() == 0 };
        let stats = unpack_compressed(tar, staging.path(), &options).map_err(|e| {
            // A full store is the store's problem, not the input's.
            match from_unpack(self.root(), e) {
                Ok(store) => ImageError::Store(store),
                Err(source) => ImageError::ImportTar { source },
            }
        })?;
        if stats.entries == 0 {
            return Err(ImageError::EmptyRootfs);
        }
        let layer = self.write_layer_blob(staging.path())?;
        self.commit_layer(staging, &layer.diff_id)?;

        let created = rfc3339(SystemTime::now());
        let history = vec![history_entry(&created, comment, false)];
        let image_config = image_config(&config, std::slice::from_ref(&layer.diff_id), &created, history);
        let config_bytes =
            canonical_json(&image_config).map_err(|source| ImageError::Encode { what: "config", source })?;
        let config_digest = self.put_blob(&config_bytes)?;

        let config_descriptor = descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest);
        let layer_descriptor = descriptor(MediaType::from(layer.media_type.as_str()), layer.size, &layer.digest);
        let manifest = image_manifest(config_descriptor, vec![layer_descriptor]);
        let manifest_bytes =
            canonical_json(&manifest).map_err(|source| ImageError::Encode { what: "manifest", source })?;
        let manifest_digest = self.put_blob(&manifest_bytes)?;
        let manifest_size = manifest_bytes.len() as u64;

        if let Some(tag) = &tag {
            self.set_tag(tag, descriptor(MediaType::ImageManifest, manifest_size, &manifest_digest))?;
        }
        Ok(ImportedImage { manifest: manifest_digest, manifest_size, config: config_digest, layer, tag })
    }

    /// Writes the tree at `root` as a gzip layer blob and returns its record.
    fn write_layer_blob(&self, root: &std::path::Path) -> Result<LayerRecord, ImageError> {
        let out = BufWriter::with_capacity(256 << 10, self.blob_writer()?);
        let (out, digests) = write_tree(root, out, Compression::Gzip, KEEP_MTIMES)
            .map_err(|source| ImageError::WriteLayer { source })?;
        let blob = out
            .into_inner()
            .map_err(|e| StoreError::write("write the layer blob into", self.tmp_dir())(e.into_error()))?;
        let (digest, size) = blob.commit(Some(&digests.digest))?;
        Ok(LayerRecord { digest, diff_id: digests.diff_id, size, media_type: digests.media_type.to_owned() })
    }
}
