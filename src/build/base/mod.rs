//! Base sources: the bottom of an env's layer stack, made from what the
//! manifest's `image` or `bootstrap` names. [`materialise`] turns a
//! [`Base`] into layers in the store — every blob stored, every layer
//! unpacked — plus the base's image config.
//!
//! | source | how | layers | config | digest |
//! |---|---|---|---|---|
//! | `scratch` | nothing to do | none | empty | none |
//! | `oci:DIR[:TAG]` | read the layout (`layout`) | copied, verified | the image's | its manifest |
//! | `oci-archive:FILE[:TAG]` | read as `berth load` reads it (`archive`) | copied, verified | the image's | its manifest |
//! | `docker-archive:FILE` | Docker 25+ form as `oci-archive:`; legacy form converted (`archive`) | kept as they are | the image's | manifest, if the archive has one |
//! | `rootfs:FILE.tar` | unpack, write one layer (`rootfs`) | one, written by berth | empty | none |
//! | `bootstrap` | mmdebstrap or debootstrap, normalised (`bootstrap`, `normalise`) | one, written by berth | empty | none |
//! | registry reference | the store's copy, else pulled (`registry`), by the locked digest if any | as pulled, verified | the image's | its manifest |
//!
//! # Trust
//!
//! Inputs are files the user named, but their contents are not trusted.
//! Archives go through `berth load`'s reader (`oci::archive`,
//! `store::load`): staged in the store's `tmp/` (removed afterwards, also on
//! error), every blob checked and every layer's diffID checked before
//! anything is committed. In a layout directory, names are resolved inside
//! it and refused if they lead out, and every blob copied is checked
//! against its descriptor's digest and size before it is stored. Either
//! way media types must fit the role a blob plays (a config listed as a
//! layer is refused), and layers are unpacked by the store's safe tar
//! reader. A refused input leaves at most complete, verified blobs that
//! nothing refers to (garbage collection removes them) — never a blob that
//! does not match its name.
//!
//! # Reproducibility
//!
//! Layers copied from an image keep their bytes, so their digests are the
//! source's. Layers berth writes (`rootfs:`, `bootstrap`) go through the
//! reproducible layer writer with every mtime clamped to `epoch`
//! (`SOURCE_DATE_EPOCH` semantics), so the same input tree gives the same
//! layer; `bootstrap` also removes what Debian's installers leave that
//! differs from run to run (see `normalise`).
//!
//! The caller holds [`Store::lock_exclusive`](crate::store::Store::lock_exclusive).

mod archive;
mod bootstrap;
mod error;
mod layout;
mod normalise;
mod registry;
mod rootfs;

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_spec::image::{ImageConfiguration, ImageManifest, MediaType};

pub use error::BaseError;
use error::{Context, io_err};

use crate::manifest::{Base, Bootstrap, ImageSource};
use crate::oci::image::{canonical_json, descriptor, history_entry, image_config, image_manifest};
use crate::oci::{Digest, ImageConfigInput};
use crate::store::{Image, LayerRecord, Store, rfc3339};

/// A base, ready for the steps above it.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseImage {
    /// Bottom first; each blob is in the store and each layer is unpacked
    /// (`Store::layer_dir(diff_id)` exists).
    pub layers: Vec<LayerRecord>,
    /// The base image's config (env, cmd, …), or one with no runtime
    /// settings for `scratch`, `rootfs:` and `bootstrap`. Its rootfs lists
    /// the diffIDs of `layers`.
    pub config: ImageConfiguration,
    /// The source's image manifest digest, when the source has a manifest
    /// (for `berth.lock`). For an image index, the manifest chosen for this
    /// machine's platform.
    pub digest: Option<Digest>,
}

/// Makes `source` (an `image` or `bootstrap` base; paths relative to
/// `project_dir`) into layers in `store`; `epoch` clamps the mtimes of the
/// layers berth writes itself. See the module page.
pub fn materialise(store: &Store, project_dir: &Path, source: &Base, epoch: u64) -> Result<BaseImage, BaseError> {
    materialise_pinned(store, project_dir, source, epoch, RegistryPin::Tag)
}

/// How a registry base is found (other sources ignore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryPin<'a> {
    /// The store's copy of the tag, else a pull of the tag.
    Tag,
    /// Exactly this manifest (the digest in `berth.lock`).
    Digest(&'a Digest),
    /// A pull of the tag, even if the store has it (`berth lock`).
    Refresh,
}

/// [`materialise`], with a registry base found as `pin` says rather than
/// by its tag.
pub fn materialise_pinned(
    store: &Store,
    project_dir: &Path,
    source: &Base,
    epoch: u64,
    pin: RegistryPin<'_>,
) -> Result<BaseImage, BaseError> {
    let base = source_text(source);
    let base = base.as_str();
    match source {
        Base::Env(parent) => Err(BaseError::NotASource { parent: parent.clone() }),
        Base::Build(b) => Err(BaseError::NotABuildSource { context: b.context.clone() }),
        Base::Bootstrap(b) => bootstrap::materialise(store, base, b, epoch),
        Base::Image(image) => match image {
            ImageSource::Scratch => {
                Ok(BaseImage { layers: Vec::new(), config: own_config(&[], epoch, None), digest: None })
            }
            ImageSource::Registry { reference } => registry::materialise(store, base, reference, pin),
            ImageSource::OciDir { path, tag } => {
                layout::materialise(store, base, &project_dir.join(path), tag.as_deref())
            }
            ImageSource::OciArchive { path, tag } => {
                archive::oci_archive(store, base, &project_dir.join(path), tag.as_deref())
            }
            ImageSource::DockerArchive { path } => archive::docker_archive(store, base, &project_dir.join(path)),
            ImageSource::Rootfs { path } => rootfs::materialise(store, base, &project_dir.join(path), epoch),
        },
    }
}

/// How the manifest wrote `source`, for messages.
pub fn source_text(source: &Base) -> String {
    let tagged = |kind: &str, path: &Path, tag: &Option<String>| match tag {
        Some(tag) => format!("{kind}:{}:{tag}", path.display()),
        None => format!("{kind}:{}", path.display()),
    };
    match source {
        Base::Env(parent) => format!("from {parent}"),
        Base::Build(b) => format!("build {}", b.dockerfile_path(Path::new("")).display()),
        Base::Bootstrap(Bootstrap { suite, mirror, variant, components }) => {
            format!("bootstrap {suite} ({variant}; {}) from {mirror}", components.join(","))
        }
        Base::Image(ImageSource::Scratch) => "scratch".to_owned(),
        Base::Image(ImageSource::Registry { reference }) => reference.clone(),
        Base::Image(ImageSource::OciDir { path, tag }) => tagged("oci", path, tag),
        Base::Image(ImageSource::OciArchive { path, tag }) => tagged("oci-archive", path, tag),
        Base::Image(ImageSource::DockerArchive { path }) => format!("docker-archive:{}", path.display()),
        Base::Image(ImageSource::Rootfs { path }) => format!("rootfs:{}", path.display()),
    }
}

/// Unpacks the layers of an image whose manifest, config and layer blobs
/// are all in the store, and returns it as a base.
fn finish(
    store: &Store,
    base: &str,
    manifest: (Digest, ImageManifest),
    config: ImageConfiguration,
    layers: Vec<LayerRecord>,
    digest: Option<Digest>,
) -> Result<BaseImage, BaseError> {
    let (manifest_digest, manifest) = manifest;
    let image = Image { name: base.to_owned(), manifest_digest, manifest, config, layers };
    store.unpacked_layers(&image).in_base(base)?;
    Ok(BaseImage { layers: image.layers, config: image.config, digest })
}

/// A config with no runtime settings for layers berth wrote itself, dated
/// `epoch` so that it is reproducible.
fn own_config(diff_ids: &[Digest], epoch: u64, created_by: Option<&str>) -> ImageConfiguration {
    let created = rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch));
    let history = created_by.map(|by| history_entry(&created, by, false)).into_iter().collect();
    image_config(&ImageConfigInput::default(), diff_ids, &created, history)
}

/// A base of the one layer `layer` berth wrote from a tree: stores a config
/// and manifest for it and unpacks it.
fn single_layer(store: &Store, base: &str, layer: LayerRecord, epoch: u64) -> Result<BaseImage, BaseError> {
    let config = own_config(std::slice::from_ref(&layer.diff_id), epoch, Some(&format!("berth base {base}")));
    let encode = |what| move |source| BaseError::Encode { base: base.into(), what, source };
    let config_bytes = canonical_json(&config).map_err(encode("config"))?;
    let config_digest = store.put_blob(&config_bytes).in_base(base)?;
    let manifest = image_manifest(
        descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest),
        vec![descriptor(MediaType::from(layer.media_type.as_str()), layer.size, &layer.digest)],
    );
    let manifest_digest = store.put_blob(&canonical_json(&manifest).map_err(encode("manifest"))?).in_base(base)?;
    finish(store, base, (manifest_digest, manifest), config, vec![layer], None)
}

/// `rel`, a name read from inside the layout at `root`
/// (canonical), as a path that exists and stays inside `root` once every
/// symlink is followed. Absolute names and `..` are refused outright.
fn inside(base: &str, root: &Path, rel: &str, what: &'static str) -> Result<PathBuf, BaseError> {
    let escapes = || BaseError::Escapes { base: base.into(), what, path: PathBuf::from(rel), root: root.to_owned() };
    let plain = Path::new(rel).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if rel.is_empty() || !plain {
        return Err(escapes());
    }
    let path = root.join(rel);
    let real = path.canonicalize().map_err(io_err(base, "find", &path))?;
    if !real.starts_with(root) {
        return Err(escapes());
    }
    Ok(real)
}

/// The most bytes read from a JSON file (index, manifest, config).
const MAX_JSON: u64 = 16 << 20;

/// Reads the JSON file `path` whole, refusing files over [`MAX_JSON`].
fn read_json_file(base: &str, path: &Path) -> Result<Vec<u8>, BaseError> {
    let file = File::open(path).map_err(io_err(base, "open", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON + 1).read_to_end(&mut bytes).map_err(io_err(base, "read", path))?;
    if bytes.len() as u64 > MAX_JSON {
        let why = format!("it is larger than {MAX_JSON} bytes");
        return Err(BaseError::NotThisKind {
            base: base.into(),
            path: path.to_owned(),
            expected: "a JSON document",
            why,
        });
    }
    Ok(bytes)
}

/// Parses `bytes` (read from `path`) as `what`.
fn parse_json<T: serde::de::DeserializeOwned>(
    base: &str,
    path: &Path,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, BaseError> {
    serde_json::from_slice(bytes).map_err(|source| BaseError::BadJson {
        base: base.into(),
        path: path.to_owned(),
        what,
        source,
    })
}

/// Parses the digest `digest` named by `path` as `what`.
fn parse_digest(base: &str, path: &Path, what: &'static str, digest: &str) -> Result<Digest, BaseError> {
    digest.parse().map_err(|source| BaseError::BadDigest { base: base.into(), path: path.to_owned(), what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::temp_store;

    #[test]
    fn scratch_has_no_layers_and_an_empty_config() {
        let (_dir, store) = temp_store();
        let base = materialise(&store, Path::new("/"), &Base::Image(ImageSource::Scratch), 0).unwrap();
        assert!(base.layers.is_empty());
        assert!(base.config.config().is_none());
        assert!(base.config.rootfs().diff_ids().is_empty());
        assert_eq!(base.digest, None);
    }

    #[test]
    fn an_unreachable_registry_base_says_so() {
        let (_dir, store) = temp_store();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let reference = format!("127.0.0.1:{port}/team/base:1");
        let source = Base::Image(ImageSource::Registry { reference: reference.clone() });
        let err = materialise(&store, Path::new("/"), &source, 0).unwrap_err();
        assert!(matches!(&err, BaseError::Registry { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("base {reference}: cannot reach the registry 127.0.0.1:{port}")), "{text}");
    }

    #[test]
    fn source_text_is_what_the_manifest_wrote() {
        let oci = Base::Image(ImageSource::OciArchive { path: "img/app.tar".into(), tag: Some("v1".to_owned()) });
        assert_eq!(source_text(&oci), "oci-archive:img/app.tar:v1");
        let rootfs = Base::Image(ImageSource::Rootfs { path: "root.tar".into() });
        assert_eq!(source_text(&rootfs), "rootfs:root.tar");
    }

    #[test]
    fn names_inside_a_root_may_not_lead_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("a.json"), b"{}").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("out")).unwrap();
        std::os::unix::fs::symlink("a.json", root.join("in")).unwrap();
        assert_eq!(inside("b", &root, "./a.json", "config").unwrap(), root.join("a.json"));
        assert_eq!(inside("b", &root, "in", "config").unwrap(), root.join("a.json"));
        for bad in ["out", "../a.json", "/etc/passwd", "x/../a.json", ""] {
            let err = inside("b", &root, bad, "config").unwrap_err();
            assert!(matches!(err, BaseError::Escapes { .. }), "{bad}: {err:?}");
        }
    }
}
