//! Input digests of base sources: what identifies a base before it is built.
//!
//! Local files are hashed by content (streamed, never read whole into
//! memory); an OCI layout directory is identified by the manifest digest its
//! index names for the tag; a registry reference by its locked digest when
//! the lock has one, by the reference itself otherwise (a later pull pins
//! it); `scratch` and `bootstrap` by their parameters.
//!
//! An image archive (`oci-archive:`, `docker-archive:`) is read in the same
//! pass that hashes it, and the image the build will take is chosen here
//! by the build's rule (the tag, or the only image), so a base that names
//! no image of its file is refused by `plan`, not first by `up`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::ResolveError;
use crate::manifest::{Base, Bootstrap, EnvLock, ImageSource};
use crate::oci::Digest;
use crate::oci::archive::{ArchiveFormat, ArchiveImage, Discard, interpret, read_stream};

/// The canonical parameters and input digest of a base, for its cache key.
pub struct BaseInput {
    /// How the manifest names the base, for listings.
    pub source: String,
    /// Length-prefixed fields for the key.
    pub fields: Vec<Vec<u8>>,
}

pub fn base_input(dir: &Path, env: &str, base: &Base, lock: Option<&EnvLock>) -> Result<BaseInput, ResolveError> {
    let locked = lock.and_then(|l| l.base.as_ref()).map(Digest::to_string);
    let (source, mut fields) = match base {
        Base::Env(_) => unreachable!("`from` bases hang under their parent env's last node"),
        Base::Build(_) => unreachable!("`build` bases are a Dockerfile's nodes (resolve::build_base)"),
        Base::Bootstrap(b) => {
            (describe_bootstrap(b), vec![b"bootstrap".to_vec(), serde_json::to_vec(b).unwrap_or_default()])
        }
        Base::Image(ImageSource::Scratch) => ("scratch".to_owned(), vec![b"scratch".to_vec()]),
        Base::Image(ImageSource::Registry { reference }) => {
            let canonical =
                reference.parse::<crate::oci::ImageRef>().map(|r| r.to_string()).unwrap_or_else(|_| reference.clone());
            (reference.clone(), vec![b"registry".to_vec(), canonical.into_bytes()])
        }
        Base::Image(ImageSource::OciDir { path, tag }) => {
            let digest = oci_layout_manifest(env, &dir.join(path), tag.as_deref())?;
            (
                format!("oci:{}{}", path.display(), tag_suffix(tag)),
                vec![b"oci".to_vec(), digest.to_string().into_bytes()],
            )
        }
        Base::Image(ImageSource::OciArchive { path, tag }) => {
            let hash = archive_hash(env, &dir.join(path), ArchiveFormat::Oci, tag.as_deref())?;
            let source = format!("oci-archive:{}{}", path.display(), tag_suffix(tag));
            (source, vec![b"oci-archive".to_vec(), hash.to_vec(), tag.clone().unwrap_or_default().into_bytes()])
        }
        Base::Image(ImageSource::DockerArchive { path }) => (
            format!("docker-archive:{}", path.display()),
            vec![b"docker-archive".to_vec(), archive_hash(env, &dir.join(path), ArchiveFormat::Docker, None)?.to_vec()],
        ),
        Base::Image(ImageSource::Rootfs { path }) => {
            (format!("rootfs:{}", path.display()), vec![b"rootfs".to_vec(), file_hash(env, &dir.join(path))?.to_vec()])
        }
    };
    if let Some(d) = locked {
        fields.push(d.into_bytes());
    }
    Ok(BaseInput { source, fields })
}

fn tag_suffix(tag: &Option<String>) -> String {
    tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
}

fn describe_bootstrap(b: &Bootstrap) -> String {
    format!("bootstrap {} ({}, {}) from {}", b.suite, b.variant, b.components.join(","), b.mirror)
}

fn missing(env: &str, path: &Path, source: std::io::Error) -> ResolveError {
    ResolveError::BaseInput { env: env.to_owned(), path: path.to_owned(), source }
}

/// blake3 of a file's content, streamed.
fn file_hash(env: &str, path: &Path) -> Result<[u8; 32], ResolveError> {
    let mut file = File::open(path).map_err(|e| missing(env, path, e))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut file).map_err(|e| missing(env, path, e))?;
    Ok(*hasher.finalize().as_bytes())
}

/// A blake3 reader: hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// blake3 of the image archive `path`, read in one pass that also checks it
/// holds the image the build will take: for `oci-archive:` (`kind` Oci) the
/// one tagged `tag`, or the only one; for `docker-archive:` its only image.
fn archive_hash(env: &str, path: &Path, kind: ArchiveFormat, tag: Option<&str>) -> Result<[u8; 32], ResolveError> {
    let file = File::open(path).map_err(|e| missing(env, path, e))?;
    let mut reader = Hashing { inner: BufReader::with_capacity(256 << 10, file), hasher: blake3::Hasher::new() };
    let bad = |why: String| ResolveError::BadBase { env: env.to_owned(), path: path.to_owned(), why };
    let expected = match kind {
        ArchiveFormat::Oci => "an OCI archive (an OCI image layout in a tar)",
        ArchiveFormat::Docker => "a `docker save` archive",
    };
    let contents = read_stream(&mut reader, &mut Discard)
        .and_then(interpret)
        .map_err(|e| bad(format!("{e}; expected {expected}")))?;
    // The tar's end may leave padding unread: the hash covers the whole file.
    io::copy(&mut reader, &mut io::sink()).map_err(|e| missing(env, path, e))?;
    let names = |i: &ArchiveImage| i.ref_names.clone();
    match (kind, contents.format) {
        (ArchiveFormat::Oci, ArchiveFormat::Docker) => {
            return Err(bad(
                "it is a legacy `docker save` archive (manifest.json, no index.json); name it as docker-archive:FILE"
                    .to_owned(),
            ));
        }
        (ArchiveFormat::Oci, _) => drop(choose(&contents.images, names, tag, "oci-archive:FILE:TAG").map_err(bad)?),
        (ArchiveFormat::Docker, _) if contents.images.len() != 1 => {
            let tags: Vec<String> = contents.images.iter().flat_map(names).collect();
            return Err(bad(format!(
                "it holds {} images ({}); docker-archive:FILE takes an archive of one image",
                contents.images.len(),
                if tags.is_empty() { "untagged".to_owned() } else { tags.join(", ") }
            )));
        }
        (ArchiveFormat::Docker, _) => {}
    }
    Ok(*reader.hasher.finalize().as_bytes())
}

/// The entry named `tag`, or with no tag the only entry, as the build
/// chooses; otherwise what is there, for the error. `instead` is what to
/// write when there are many and no tag.
fn choose<'a, T>(
    entries: &'a [T],
    names: impl Fn(&T) -> Vec<String>,
    tag: Option<&str>,
    instead: &str,
) -> Result<&'a T, String> {
    let chosen = match tag {
        Some(t) => entries.iter().find(|e| names(e).iter().any(|n| n == t)),
        None if entries.len() == 1 => entries.first(),
        None => None,
    };
    chosen.ok_or_else(|| {
        let tags: Vec<String> = entries.iter().flat_map(&names).collect();
        let tags = if tags.is_empty() { "none".to_owned() } else { tags.join(", ") };
        match tag {
            Some(t) => format!("no image tagged {t:?}; tags in it: {tags}"),
            None => format!("{} images and no tag given; write {instead} with one of: {tags}", entries.len()),
        }
    })
}

/// The manifest digest an OCI layout's index names for `tag` (or its only
/// manifest when no tag is given).
fn oci_layout_manifest(env: &str, dir: &Path, tag: Option<&str>) -> Result<Digest, ResolveError> {
    let index_path: PathBuf = dir.join("index.json");
    let index = oci_spec::image::ImageIndex::from_file(&index_path).map_err(|e| ResolveError::BadBase {
        env: env.to_owned(),
        path: index_path.clone(),
        why: format!("{e}; expected an OCI image layout directory"),
    })?;
    let manifests = index.manifests();
    let ref_name = |d: &oci_spec::image::Descriptor| {
        d.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name").cloned()).into_iter().collect()
    };
    let descriptor = choose(manifests, ref_name, tag, "oci:DIR:TAG").map_err(|why| ResolveError::BadBase {
        env: env.to_owned(),
        path: index_path.clone(),
        why,
    })?;
    Digest::try_from(descriptor.digest()).map_err(|e| ResolveError::BadBase {
        env: env.to_owned(),
        path: index_path,
        why: e.to_string(),
    })
}
