//! The image listing behind `berth images`: one row per tag, read from the
//! tag's manifest and config blobs.

use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::de::DeserializeOwned;

use super::refs::Tag;
use super::{Store, StoreError};
use crate::oci::Digest;

/// One row of `berth images`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// Such as `app` or `localhost:5000/team/app`.
    pub repository: String,
    /// Such as `latest`.
    pub tag: String,
    /// The manifest the tag names.
    pub manifest: Digest,
    /// The config's `created` time (RFC 3339), if it has one.
    pub created: Option<String>,
    /// Config size plus the (compressed) sizes of all layers, in bytes.
    pub size: u64,
}

impl Store {
    /// One summary per tag, sorted by tag name. A tag whose manifest or
    /// config blob is missing or unreadable is an error naming the tag.
    pub fn images(&self) -> Result<Vec<ImageSummary>, StoreError> {
        self.tags()?.iter().map(|tag| self.summarize(tag)).collect()
    }

    fn summarize(&self, tag: &Tag) -> Result<ImageSummary, StoreError> {
        let manifest_digest = self.tag_digest(tag, tag.descriptor.digest())?;
        let manifest: ImageManifest = self.read_image_blob(tag, "manifest", &manifest_digest)?;
        let config_digest = self.tag_digest(tag, manifest.config().digest())?;
        let config: ImageConfiguration = self.read_image_blob(tag, "config", &config_digest)?;
        let layers: u64 = manifest.layers().iter().map(|l| l.size()).sum();
        Ok(ImageSummary {
            repository: tag.repository().to_owned(),
            tag: tag.tag().to_owned(),
            manifest: manifest_digest,
            created: config.created().clone(),
            size: manifest.config().size() + layers,
        })
    }

    fn tag_digest(&self, tag: &Tag, digest: &oci_spec::image::Digest) -> Result<Digest, StoreError> {
        Digest::try_from(digest).map_err(|source| StoreError::BadTagDigest {
            name: tag.name.clone(),
            digest: digest.to_string(),
            source,
        })
    }

    fn read_image_blob<T: DeserializeOwned>(
        &self,
        tag: &Tag,
        what: &'static str,
        digest: &Digest,
    ) -> Result<T, StoreError> {
        let path = self.blob_path(digest);
        let bytes = self.read_blob(digest).map_err(|e| match e {
            StoreError::BlobMissing { .. } => {
                StoreError::ImageBlobMissing { tag: tag.name.clone(), what, digest: digest.clone(), path: path.clone() }
            }
            other => other,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadImageBlob {
            tag: tag.name.clone(),
            what,
            digest: digest.clone(),
            path,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::image::{
        ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
    };

    use super::*;
    use crate::store::testutil::temp_store;

    /// A one-layer image built by hand; returns the manifest descriptor.
    fn tiny_image(store: &Store, created: &str) -> Descriptor {
        let layer = store.put_blob(b"not really a tarball").unwrap();
        let config = ImageConfigurationBuilder::default()
            .created(created.to_owned())
            .architecture("amd64")
            .os("linux")
            .config(ConfigBuilder::default().cmd(vec!["/bin/sh".to_owned()]).build().unwrap())
            .rootfs(RootFsBuilder::default().diff_ids(vec![layer.to_string()]).build().unwrap())
            .build()
            .unwrap();
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = store.put_blob(&config_bytes).unwrap();
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest))
            .layers(vec![Descriptor::new(MediaType::ImageLayer, 20, &layer)])
            .build()
            .unwrap();
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = store.put_blob(&manifest_bytes).unwrap();
        Descriptor::new(MediaType::ImageManifest, manifest_bytes.len() as u64, &digest)
    }

    #[test]
    fn empty_store_lists_nothing() {
        let (_dir, store) = temp_store();
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn lists_a_hand_built_image() {
        let (_dir, store) = temp_store();
        let manifest = tiny_image(&store, "2024-05-01T12:00:00Z");
        store.set_tag("localhost:5000/app:1.0", manifest.clone()).unwrap();
        let images = store.images().unwrap();
        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!((image.repository.as_str(), image.tag.as_str()), ("localhost:5000/app", "1.0"));
        assert_eq!(image.manifest, Digest::try_from(manifest.digest()).unwrap());
        assert_eq!(image.created.as_deref(), Some("2024-05-01T12:00:00Z"));
        let config_size = serde_json::from_slice::<ImageManifest>(&store.read_blob(&image.manifest).unwrap())
            .unwrap()
            .config()
            .size();
        assert_eq!(image.size, config_size + 20);
    }

    #[test]
    fn a_tag_with_a_missing_config_is_an_error_naming_it() {
        let (_dir, store) = temp_store();
        let manifest = tiny_image(&store, "2024-05-01T12:00:00Z");
        store.set_tag("app", manifest.clone()).unwrap();
        let parsed: ImageManifest =
            serde_json::from_slice(&store.read_blob(&Digest::try_from(manifest.digest()).unwrap()).unwrap()).unwrap();
        let config = Digest::try_from(parsed.config().digest()).unwrap();
        std::fs::remove_file(store.blob_path(&config)).unwrap();
        let err = store.images().unwrap_err();
        assert!(matches!(err, StoreError::ImageBlobMissing { what: "config", .. }), "{err:?}");
        assert!(err.to_string().contains("app:latest"), "{err}");
    }
}
