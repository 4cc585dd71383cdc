//! OCI image layout directories: `oci:DIR[:TAG]`. (Archives of a layout,
//! `oci-archive:`, are read by `archive`, through `berth load`'s reader; the
//! platform and media type rules are the same, from `oci::archive`.)
//!
//! `index.json` names the image: the entry whose
//! `org.opencontainers.image.ref.name` is the tag, or, with no tag, the only
//! entry. An entry may be an image index (a multi-platform image, as
//! `skopeo copy --all` and `docker save` write), possibly nested: berth
//! follows it to the manifest for this machine's platform (GOOS/GOARCH,
//! `linux/amd64` here), skipping attestation entries; an index whose one
//! entry names no platform is followed to that entry.
//!
//! Every blob is found as `blobs/<alg>/<hex>` inside the layout, never
//! outside it (a symlink out is refused), and checked: its size and sha256
//! must match its descriptor before it is parsed or stored, and its media
//! type must fit where it is used (manifest, index, config, layer). Layers
//! are copied as they are (tar or tar+gzip, OCI or Docker types); zstd
//! layers are refused by name. Nothing is stored until every descriptor has
//! been checked; blobs are then stored layers first, manifest last, and
//! the store unpacks the layers, checking each diffID.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, OciLayout};

use super::error::{Context, io_err};
use super::{BaseError, BaseImage, finish, inside, parse_digest, parse_json, read_json_file};
use crate::oci::Digest;
use crate::oci::archive::media::{self, ANNOTATION_REF_NAME, LayerCompression};
use crate::oci::archive::{choose_platform, host_platform};
use crate::oci::digest::Algorithm;
use crate::store::{LayerRecord, Store, StoreError};

/// How many image indexes deep a layout may nest before the manifest.
const MAX_NESTING: usize = 4;

/// Makes the image `tag` (or the only one) of the layout at `dir` a base.
pub(super) fn materialise(store: &Store, base: &str, dir: &Path, tag: Option<&str>) -> Result<BaseImage, BaseError> {
    let layout = Layout::open(base, dir)?;
    let (index_path, entries) = layout.index()?;
    let top = choose_tagged(base, &index_path, &entries, tag, |d| ref_name(d).into_iter().collect())?;
    let (manifest_digest, manifest_bytes, manifest) = layout.manifest_for_host(top)?;

    let config_desc = manifest.config();
    if !media::is_config(config_desc.media_type().as_ref()) {
        return Err(media_type_err(base, "config", config_desc, "the image config", "an OCI or Docker image config"));
    }
    for layer in manifest.layers() {
        match media::layer_compression(layer.media_type().as_ref()) {
            Some(LayerCompression::None | LayerCompression::Gzip) => {}
            Some(LayerCompression::Zstd) => {
                return Err(BaseError::Zstd {
                    base: base.into(),
                    digest: layer.digest().to_string(),
                    media_type: layer.media_type().to_string(),
                });
            }
            None => {
                let expected = "a tar or tar+gzip layer";
                return Err(media_type_err(base, "blob", layer, "a layer", expected));
            }
        }
    }
    let (config_digest, config_bytes) = layout.read_json_blob("config", config_desc)?;
    let config_path = layout.blob_name(&config_digest);
    let config: ImageConfiguration = parse_json(base, &config_path, "an image config", &config_bytes)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        let (layers, diff_ids) = (manifest.layers().len(), diff_ids.len());
        return Err(BaseError::LayerCount { base: base.into(), layers, diff_ids });
    }
    let diff_ids =
        diff_ids.iter().map(|d| parse_digest(base, &config_path, "diff_id", d)).collect::<Result<Vec<_>, _>>()?;

    let mut layers = Vec::with_capacity(diff_ids.len());
    for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let digest = layout.copy_blob(store, "layer", desc)?;
        layers.push(LayerRecord { digest, diff_id, size: desc.size(), media_type: desc.media_type().to_string() });
    }
    store.put_blob(&config_bytes).in_base(base)?;
    store.put_blob(&manifest_bytes).in_base(base)?;
    finish(store, base, (manifest_digest.clone(), manifest), config, layers, Some(manifest_digest))
}

/// An OCI image layout being read.
struct Layout<'a> {
    base: &'a str,
    /// Canonical: every blob must resolve below it.
    root: PathBuf,
}

impl<'a> Layout<'a> {
    /// Opens the layout at `dir`, checking its `oci-layout` marker.
    fn open(base: &'a str, dir: &Path) -> Result<Layout<'a>, BaseError> {
        let not_layout = |why: String| BaseError::NotThisKind {
            base: base.into(),
            path: dir.to_owned(),
            expected: "an OCI image layout directory (oci-layout, index.json, blobs/), as `skopeo copy … oci:DIR:TAG` writes",
            why,
        };
        let root = dir.canonicalize().map_err(|e| not_layout(e.to_string()))?;
        let marker = root.join("oci-layout");
        if !marker.is_file() {
            return Err(not_layout("it has no oci-layout file".to_owned()));
        }
        let layout: OciLayout = parse_json(base, &marker, "an oci-layout marker", &read_json_file(base, &marker)?)?;
        if layout.image_layout_version() != "1.0.0" {
            return Err(not_layout(format!(
                "its layout version is {:?}; berth reads 1.0.0",
                layout.image_layout_version()
            )));
        }
        Ok(Layout { base, root })
    }

    /// `index.json`'s path and entries.
    fn index(&self) -> Result<(PathBuf, Vec<Descriptor>), BaseError> {
        let path = self.root.join("index.json");
        let index: ImageIndex = parse_json(self.base, &path, "an OCI image index", &read_json_file(self.base, &path)?)?;
        Ok((path, index.manifests().clone()))
    }

    /// Follows `top` through image indexes to the image manifest for this
    /// machine: the manifest's digest, bytes and parsed form.
    fn manifest_for_host(&self, top: &Descriptor) -> Result<(Digest, Vec<u8>, ImageManifest), BaseError> {
        let mut desc = top.clone();
        for _ in 0..=MAX_NESTING {
            match desc.media_type().as_ref() {
                t if media::is_index(t) => {
                    let (digest, bytes) = self.read_json_blob("image index", &desc)?;
                    let index: ImageIndex = parse_json(self.base, &self.blob_name(&digest), "an image index", &bytes)?;
                    self.check_own_type("image index", &desc, index.media_type().as_ref().map(|m| m.to_string()))?;
                    desc = choose_platform(index.manifests()).cloned().map_err(|available| BaseError::NoPlatform {
                        base: self.base.into(),
                        digest,
                        wanted: host_platform(),
                        available,
                    })?;
                }
                t if media::is_manifest(t) => {
                    let (digest, bytes) = self.read_json_blob("manifest", &desc)?;
                    let manifest: ImageManifest =
                        parse_json(self.base, &self.blob_name(&digest), "an image manifest", &bytes)?;
                    self.check_own_type("manifest", &desc, manifest.media_type().as_ref().map(|m| m.to_string()))?;
                    return Ok((digest, bytes, manifest));
                }
                _ => {
                    let expected = "an OCI image manifest or index (or the Docker equivalents)";
                    return Err(media_type_err(self.base, "index entry", &desc, "an image", expected));
                }
            }
        }
        Err(BaseError::NotThisKind {
            base: self.base.into(),
            path: self.root.clone(),
            expected: "a usable OCI image layout",
            why: format!("its image indexes nest more than {MAX_NESTING} deep"),
        })
    }

    /// Refuses a manifest or index whose own `mediaType` contradicts the
    /// descriptor that led to it.
    fn check_own_type(&self, what: &'static str, desc: &Descriptor, own: Option<String>) -> Result<(), BaseError> {
        match own {
            Some(own) if own != desc.media_type().to_string() => Err(BaseError::MediaType {
                base: self.base.into(),
                what,
                digest: desc.digest().to_string(),
                found: own,
                role: "what its descriptor says",
                expected: "the descriptor's media type",
            }),
            _ => Ok(()),
        }
    }

    /// Where the blob `digest` is, as a name for messages (it may not exist).
    fn blob_name(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().name()).join(digest.hex())
    }

    /// The sha256 digest of `desc`, and its blob's real path inside the layout.
    fn blob(&self, what: &'static str, desc: &Descriptor) -> Result<(Digest, PathBuf), BaseError> {
        let digest = parse_digest(self.base, &self.root, what, desc.digest().as_ref())?;
        if digest.algorithm() != Algorithm::Sha256 {
            let algorithm = digest.algorithm().name();
            return Err(BaseError::Algorithm { base: self.base.into(), what, digest, algorithm });
        }
        let path = self.blob_name(&digest);
        if path.symlink_metadata().is_err() {
            return Err(BaseError::BlobMissing { base: self.base.into(), what, digest, path });
        }
        let rel = format!("blobs/sha256/{}", digest.hex());
        Ok((digest, inside(self.base, &self.root, &rel, what)?))
    }

    /// The bytes of the JSON blob `desc`, checked against its size and digest.
    fn read_json_blob(&self, what: &'static str, desc: &Descriptor) -> Result<(Digest, Vec<u8>), BaseError> {
        let (digest, path) = self.blob(what, desc)?;
        let bytes = read_json_file(self.base, &path)?;
        check_size(self.base, what, &path, desc.size(), bytes.len() as u64)?;
        let actual = Digest::sha256(&bytes);
        if actual != digest {
            return Err(BaseError::DigestMismatch { base: self.base.into(), what, path, expected: digest, actual });
        }
        Ok((digest, bytes))
    }

    /// Copies the blob `desc` into the store (unless it is there already),
    /// checking its size and digest first; returns its digest.
    fn copy_blob(&self, store: &Store, what: &'static str, desc: &Descriptor) -> Result<Digest, BaseError> {
        let (digest, path) = self.blob(what, desc)?;
        if store.has_blob(&digest) {
            return Ok(digest);
        }
        let base = self.base;
        let mut file = File::open(&path).map_err(io_err(base, "open", &path))?;
        let len = file.metadata().map_err(io_err(base, "inspect", &path))?.len();
        check_size(base, what, &path, desc.size(), len)?;
        let mut out = BufWriter::with_capacity(256 << 10, store.blob_writer().in_base(base)?);
        let copied = io::copy(&mut (&mut file).take(desc.size()), &mut out).map_err(io_err(base, "copy", &path))?;
        check_size(base, what, &path, desc.size(), copied)?;
        let blob = out.into_inner().map_err(|e| io_err(base, "copy", &path)(e.into_error()))?;
        match blob.commit(Some(&digest)) {
            Ok((digest, _)) => Ok(digest),
            Err(StoreError::DigestMismatch { expected, actual }) => {
                Err(BaseError::DigestMismatch { base: base.into(), what, path, expected, actual })
            }
            Err(other) => Err(other).in_base(base),
        }
    }
}

fn check_size(base: &str, what: &'static str, path: &Path, expected: u64, actual: u64) -> Result<(), BaseError> {
    if expected == actual {
        return Ok(());
    }
    Err(BaseError::SizeMismatch { base: base.into(), what, path: path.to_owned(), expected, actual })
}

fn media_type_err(
    base: &str,
    what: &'static str,
    desc: &Descriptor,
    role: &'static str,
    expected: &'static str,
) -> BaseError {
    BaseError::MediaType {
        base: base.into(),
        what,
        digest: desc.digest().to_string(),
        found: desc.media_type().to_string(),
        role,
        expected,
    }
}

fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations().as_ref()?.get(ANNOTATION_REF_NAME).map(String::as_str)
}

/// The entry of `entries` (listed in `index`) that `names` calls `tag`, or
/// the only entry when no tag is given: an `index.json` entry of a layout,
/// or an image of an archive.
pub(super) fn choose_tagged<'d, T>(
    base: &str,
    index: &Path,
    entries: &'d [T],
    tag: Option<&str>,
    names: impl Fn(&'d T) -> Vec<&'d str>,
) -> Result<&'d T, BaseError> {
    let tags = || entries.iter().flat_map(&names).map(str::to_owned).collect::<Vec<_>>();
    match tag {
        Some(tag) => entries.iter().find(|e| names(e).contains(&tag)).ok_or_else(|| BaseError::NoSuchTag {
            base: base.into(),
            index: index.to_owned(),
            tag: tag.to_owned(),
            tags: tags(),
        }),
        None => match entries {
            [only] => Ok(only),
            _ => Err(BaseError::WhichImage {
                base: base.into(),
                index: index.to_owned(),
                count: entries.len(),
                tags: tags(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::image::MediaType;

    use super::*;

    fn tagged(n: u8, tag: &str) -> Descriptor {
        let mut d = Descriptor::new(MediaType::ImageManifest, 2, &Digest::sha256(&[n]));
        d.set_annotations(Some(HashMap::from([(ANNOTATION_REF_NAME.to_owned(), tag.to_owned())])));
        d
    }

    #[test]
    fn tags_choose_entries() {
        let entries = [tagged(1, "v1"), tagged(2, "v2")];
        let index = Path::new("index.json");
        let choose = |entries, tag| choose_tagged("b", index, entries, tag, |d| ref_name(d).into_iter().collect());
        assert_eq!(choose(&entries, Some("v2")).unwrap(), &entries[1]);
        let err = choose(&entries, Some("v3")).unwrap_err();
        assert!(matches!(&err, BaseError::NoSuchTag { tags, .. } if tags == &["v1", "v2"]), "{err:?}");
        let err = choose(&entries, None).unwrap_err();
        assert!(err.to_string().contains("add \":TAG\" to the source with one of: v1, v2"), "{err}");
        assert_eq!(choose(&entries[..1], None).unwrap(), &entries[0]);
    }
}
