//! OCI image layouts: `oci:DIR[:TAG]`, and what `oci-archive:` and Docker
//! 25+ `docker-archive:` files extract to.
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
//! been checked; blobs are then stored layers first, manifest last.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, OciLayout};

use super::error::{Context, io_err};
use super::{BaseError, BaseImage, finish, inside, parse_digest, parse_json, read_json_file};
use crate::oci::Digest;
use crate::oci::digest::Algorithm;
use crate::store::{LayerRecord, Store, StoreError};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// How many image indexes deep a layout may nest before the manifest.
const MAX_NESTING: usize = 4;

/// What a layer's media type says about it.
#[derive(Debug, PartialEq, Eq)]
enum LayerType {
    /// A tar or tar+gzip layer the store unpacks.
    Usable,
    /// A zstd layer: refused by name.
    Zstd,
    /// Not a layer at all (a config, a manifest, anything else).
    NotALayer,
}

fn layer_type(media_type: &str) -> LayerType {
    const USABLE: &[&str] = &[
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ];
    if USABLE.contains(&media_type) {
        LayerType::Usable
    } else if media_type.starts_with("application/vnd.oci.image.layer.") && media_type.ends_with("+zstd") {
        LayerType::Zstd
    } else {
        LayerType::NotALayer
    }
}

/// Makes the image `tag` (or the only one) of the layout at `dir` a base.
pub(super) fn materialise(store: &Store, base: &str, dir: &Path, tag: Option<&str>) -> Result<BaseImage, BaseError> {
    let layout = Layout::open(base, dir)?;
    let (index_path, entries) = layout.index()?;
    let top = choose_tagged(base, &index_path, &entries, tag)?;
    let (manifest_digest, manifest_bytes, manifest) = layout.manifest_for_host(top)?;

    let config_desc = manifest.config();
    let config_type = config_desc.media_type().to_string();
    if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
        return Err(media_type_err(base, "config", config_desc, "the image config", "an OCI or Docker image config"));
    }
    for layer in manifest.layers() {
        match layer_type(layer.media_type().as_ref()) {
            LayerType::Usable => {}
            LayerType::Zstd => {
                return Err(BaseError::Zstd {
                    base: base.into(),
                    digest: layer.digest().to_string(),
                    media_type: layer.media_type().to_string(),
                });
            }
            LayerType::NotALayer => {
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
            let media_type = desc.media_type().to_string();
            match media_type.as_str() {
                OCI_INDEX | DOCKER_LIST => {
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
                OCI_MANIFEST | DOCKER_MANIFEST => {
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
    desc.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

/// The entry of `index.json` (at `index`) tagged `tag`, or its only entry
/// when no tag is given.
fn choose_tagged<'d>(
    base: &str,
    index: &Path,
    entries: &'d [Descriptor],
    tag: Option<&str>,
) -> Result<&'d Descriptor, BaseError> {
    let tags = || entries.iter().filter_map(ref_name).map(str::to_owned).collect::<Vec<_>>();
    match tag {
        Some(tag) => entries.iter().find(|d| ref_name(d) == Some(tag)).ok_or_else(|| BaseError::NoSuchTag {
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

/// This machine's platform as an image index names it, such as `linux/amd64`.
fn host_platform() -> String {
    format!("{}/{}", oci_spec::image::Os::default(), oci_spec::image::Arch::default())
}

/// The entry of an image index for this machine's platform; otherwise the
/// platforms it has.
fn choose_platform(entries: &[Descriptor]) -> Result<&Descriptor, Vec<String>> {
    choose_platform_for(entries, &host_platform())
}

fn choose_platform_for<'d>(entries: &'d [Descriptor], wanted: &str) -> Result<&'d Descriptor, Vec<String>> {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::image::{Arch, MediaType, Os, PlatformBuilder};

    use super::*;

    fn entry(n: u8, platform: Option<(Os, Arch)>, annotations: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::new(MediaType::ImageManifest, 2, &Digest::sha256(&[n]));
        if let Some((os, arch)) = platform {
            d.set_platform(Some(PlatformBuilder::default().os(os).architecture(arch).build().unwrap()));
        }
        if !annotations.is_empty() {
            let map: HashMap<String, String> =
                annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            d.set_annotations(Some(map));
        }
        d
    }

    #[test]
    fn media_types_of_layers() {
        assert_eq!(layer_type("application/vnd.oci.image.layer.v1.tar+gzip"), LayerType::Usable);
        assert_eq!(layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"), LayerType::Usable);
        assert_eq!(layer_type("application/vnd.oci.image.layer.v1.tar+zstd"), LayerType::Zstd);
        assert_eq!(layer_type(OCI_CONFIG), LayerType::NotALayer);
        assert_eq!(layer_type(OCI_MANIFEST), LayerType::NotALayer);
    }

    #[test]
    fn tags_choose_entries() {
        let entries = [entry(1, None, &[(REF_NAME, "v1")]), entry(2, None, &[(REF_NAME, "v2")])];
        let index = Path::new("index.json");
        assert_eq!(choose_tagged("b", index, &entries, Some("v2")).unwrap(), &entries[1]);
        let err = choose_tagged("b", index, &entries, Some("v3")).unwrap_err();
        assert!(matches!(&err, BaseError::NoSuchTag { tags, .. } if tags == &["v1", "v2"]), "{err:?}");
        let err = choose_tagged("b", index, &entries, None).unwrap_err();
        assert!(err.to_string().contains("add \":TAG\" to the source with one of: v1, v2"), "{err}");
        assert_eq!(choose_tagged("b", index, &entries[..1], None).unwrap(), &entries[0]);
    }

    #[test]
    fn platforms_choose_entries_and_skip_attestations() {
        let arm = entry(1, Some((Os::Linux, Arch::ARM64)), &[]);
        let amd = entry(2, Some((Os::Linux, Arch::Amd64)), &[]);
        let attestation = entry(3, Some((Os::Other("unknown".into()), Arch::Other("unknown".into()))), &[]);
        let entries = [arm.clone(), attestation.clone(), amd.clone()];
        assert_eq!(choose_platform_for(&entries, "linux/amd64").unwrap(), &amd);
        assert_eq!(choose_platform_for(&entries, "linux/arm64").unwrap(), &arm);
        let missing = choose_platform_for(&entries, "linux/s390x").unwrap_err();
        assert_eq!(missing, ["linux/arm64", "linux/amd64"]);

        let unnamed = entry(4, None, &[]);
        let buildkit = entry(5, None, &[("vnd.docker.reference.type", "attestation-manifest")]);
        let entries = [unnamed.clone(), buildkit];
        assert_eq!(choose_platform_for(&entries, "linux/amd64").unwrap(), &unnamed);
        assert_eq!(choose_platform_for(&[], "linux/amd64").unwrap_err(), Vec::<String>::new());
    }
}
