//! Input digests of base sources: what identifies a base before it is built.
//!
//! Local files are hashed by content (streamed, never read whole into
//! memory); an OCI layout directory is identified by the manifest digest its
//! index names for the tag; a registry reference by its locked digest when
//! the lock has one, by the reference itself otherwise (a later pull pins
//! it); `scratch` and `bootstrap` by their parameters.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::ResolveError;
use crate::manifest::{Base, Bootstrap, EnvLock, ImageSource};
use crate::oci::Digest;

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
            let hash = file_hash(env, &dir.join(path))?;
            let source = format!("oci-archive:{}{}", path.display(), tag_suffix(tag));
            (source, vec![b"oci-archive".to_vec(), hash.to_vec(), tag.clone().unwrap_or_default().into_bytes()])
        }
        Base::Image(ImageSource::DockerArchive { path }) => (
            format!("docker-archive:{}", path.display()),
            vec![b"docker-archive".to_vec(), file_hash(env, &dir.join(path))?.to_vec()],
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
        d.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name").cloned())
    };
    let chosen = match tag {
        Some(t) => manifests.iter().find(|d| ref_name(d).as_deref() == Some(t)),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    };
    let Some(descriptor) = chosen else {
        let tags: Vec<String> = manifests.iter().filter_map(ref_name).collect();
        let why = match tag {
            Some(t) => format!(
                "no image tagged {t:?}; tags in it: {}",
                if tags.is_empty() { "none".into() } else { tags.join(", ") }
            ),
            None => format!(
                "{} images and no tag given; write oci:DIR:TAG with one of: {}",
                manifests.len(),
                tags.join(", ")
            ),
        };
        return Err(ResolveError::BadBase { env: env.to_owned(), path: index_path, why });
    };
    Digest::try_from(descriptor.digest()).map_err(|e| ResolveError::BadBase {
        env: env.to_owned(),
        path: index_path,
        why: e.to_string(),
    })
}
