//! Pulling: a reference becomes an image in the store.
//!
//! 1. The tag (or digest) is resolved to a manifest; an image index is
//!    followed to the entry for the wanted platform.
//! 2. The manifest is checked: an OCI or Docker config, and tar, tar+gzip
//!    or tar+zstd layers (what the store unpacks), as many as the config has
//!    diffIDs.
//! 3. The config is fetched and checked; the layers the store lacks are
//!    fetched side by side into the store's `tmp/`, each verified (size and
//!    digest) while it streams, retried and resumed when a connection breaks.
//! 4. Only when every blob has been verified are they committed, then the
//!    config and the manifest, and last the tag. A pull that fails leaves the
//!    store as it was.
//!
//! Layers are not unpacked here: running or building on the image unpacks
//! them (and checks each diffID) on first use.
//!
//! The caller holds [`Store::lock_exclusive`].

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::manifest::{self, Platform, Wanted};
use super::session::Session;
use super::transfer::{self, Event, Progress};
use super::{Client, RegistryError};
use crate::oci::archive::media;
use crate::oci::{Digest, ImageRef};
use crate::store::{LayerRecord, Store};

/// How many image indexes deep berth follows before a manifest.
const MAX_NESTING: usize = 4;

/// What to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The platform to choose from an image index.
    pub platform: Platform,
    /// Tag the image in the store with the reference's name (when the
    /// reference has a tag).
    pub tag: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions { platform: Platform::host(), tag: true }
    }
}

/// What a pull stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulled {
    /// The image manifest's digest (for an index, the platform's manifest).
    pub digest: Digest,
    /// The digest the reference resolved to first (an index, or the manifest).
    pub resolved: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The tag set in the store, such as `127.0.0.1:5000/team/app:1`.
    pub tag: Option<String>,
    /// Blobs fetched, and their bytes; blobs the store already had.
    pub fetched: usize,
    pub fetched_bytes: u64,
    pub present: usize,
}

impl Client {
    /// Pulls `reference` into `store` (see the module page).
    pub fn pull(
        &self,
        store: &Store,
        reference: &ImageRef,
        options: &PullOptions,
        progress: Progress<'_>,
    ) -> Result<Pulled, RegistryError> {
        let repository = reference.repository();
        let session = Session::open(self, reference.registry(), vec![format!("repository:{repository}:pull")])?;
        let mut fetched = match (reference.digest(), reference.tag()) {
            (Some(d), _) => manifest::fetch(&session, repository, Wanted::Digest(d, None))?,
            (None, Some(t)) => manifest::fetch(&session, repository, Wanted::Tag(t))?,
            (None, None) => unreachable!("a reference has a tag or a digest"),
        };
        let resolved = fetched.digest.clone();
        for _ in 0..MAX_NESTING {
            if !fetched.is_index() {
                break;
            }
            let index: ImageIndex = parse(&session, "the image index", &fetched.bytes)?;
            let entry = manifest::choose(index.manifests(), &options.platform).map_err(|available| {
                RegistryError::NoPlatform {
                    reference: reference.to_string(),
                    digest: fetched.digest.clone(),
                    wanted: options.platform.to_string(),
                    available,
                }
            })?;
            let digest = descriptor_digest(&session, "an index entry", entry)?;
            fetched = manifest::fetch(&session, repository, Wanted::Digest(&digest, Some(entry.size())))?;
        }
        if fetched.is_index() {
            return Err(bad(&session, "the image index", format!("its indexes nest more than {MAX_NESTING} deep")));
        }
        let image: ImageManifest = parse(&session, "the manifest", &fetched.bytes)?;
        let (config_digest, layers) = check_manifest(&session, &image)?;

        let config_size = image.config().size();
        let config_bytes = manifest::fetch_json_blob(&session, repository, &config_digest, config_size, "the config")?;
        let config: ImageConfiguration = parse(&session, "the config", &config_bytes)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != layers.len() {
            let why = format!("the manifest lists {} layers but the config {} diffIDs", layers.len(), diff_ids.len());
            return Err(bad(&session, "the image", why));
        }
        let mut records = Vec::with_capacity(layers.len());
        for ((digest, desc), diff_id) in layers.iter().zip(diff_ids) {
            let diff_id = diff_id.parse().map_err(|e| bad(&session, "the config", format!("diffID: {e}")))?;
            let media_type = desc.media_type().to_string();
            records.push(LayerRecord { digest: digest.clone(), diff_id, size: desc.size(), media_type });
        }

        // Fetch what the store lacks, verify all, then commit.
        let mut missing: Vec<(Digest, u64)> = Vec::new();
        let mut present = 0;
        for layer in &records {
            if store.has_blob(&layer.digest) {
                present += 1;
                progress(Event::Present { digest: layer.digest.clone(), size: layer.size });
            } else if !missing.iter().any(|(d, _)| *d == layer.digest) {
                missing.push((layer.digest.clone(), layer.size));
            }
        }
        let settings = self.settings();
        let writers = transfer::parallel(settings.jobs, &missing, |(digest, size), cancel| {
            transfer::download(&session, store, repository, (digest, *size), cancel, progress)
        })?;
        for (writer, (digest, _)) in writers.into_iter().zip(&missing) {
            writer.commit(Some(digest))?;
        }
        store.put_blob(&config_bytes)?;
        store.put_blob(&fetched.bytes)?;
        let tag = match reference.tag().filter(|_| options.tag) {
            Some(_) => {
                let name = reference.familiar_tag();
                let size = fetched.bytes.len() as u64;
                let media_type = MediaType::from(fetched.media_type.as_str());
                store.set_tag(&name, Descriptor::new(media_type, size, &fetched.digest))?;
                Some(name)
            }
            None => None,
        };
        Ok(Pulled {
            digest: fetched.digest,
            resolved,
            manifest: image,
            config,
            layers: records,
            tag,
            fetched: missing.len(),
            fetched_bytes: missing.iter().map(|(_, s)| s).sum(),
            present,
        })
    }
}

/// Each layer's digest with its descriptor.
type Layers<'m> = Vec<(Digest, &'m Descriptor)>;

/// The config digest and the layers' digests of `image`, with every media
/// type checked.
fn check_manifest<'m>(session: &Session<'_>, image: &'m ImageManifest) -> Result<(Digest, Layers<'m>), RegistryError> {
    let config_type = image.config().media_type().to_string();
    if !media::is_config(&config_type) {
        let why = format!("its config has media type {config_type:?}, which is not an image config (an artifact?)");
        return Err(bad(session, "the manifest", why));
    }
    let config = descriptor_digest(session, "the config", image.config())?;
    let mut layers = Vec::new();
    for layer in image.layers() {
        let media_type = layer.media_type().to_string();
        // What the store unpacks: tar, tar+gzip or tar+zstd, OCI or Docker.
        if media::layer_compression(&media_type).is_none() {
            let why = format!(
                "layer {} has media type {media_type:?}, which is not a tar, tar+gzip or tar+zstd layer",
                layer.digest()
            );
            return Err(bad(session, "the manifest", why));
        }
        layers.push((descriptor_digest(session, "a layer", layer)?, layer));
    }
    Ok((config, layers))
}

fn descriptor_digest(session: &Session<'_>, what: &str, d: &Descriptor) -> Result<Digest, RegistryError> {
    let digest: Digest = d.digest().as_ref().parse().map_err(|e| bad(session, what, format!("{e}")))?;
    if digest.algorithm() != crate::oci::digest::Algorithm::Sha256 {
        return Err(bad(session, what, format!("{digest} is not sha256, the only algorithm berth stores")));
    }
    Ok(digest)
}

fn parse<T: serde::de::DeserializeOwned>(session: &Session<'_>, what: &str, bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| bad(session, what, format!("it is not valid JSON of that kind: {e}")))
}

fn bad(session: &Session<'_>, what: &str, why: String) -> RegistryError {
    RegistryError::BadContent { registry: session.registry.clone(), what: what.to_owned(), why }
}
