//! Image archives: `oci-archive:FILE[:TAG]` and `docker-archive:FILE`.
//!
//! Either archive is first extracted, with the safe tar reader, into a
//! staging directory in the store's `tmp/`, removed when done (also on
//! error). An OCI archive is then an OCI layout (`layout`). So is a Docker
//! 25+ `docker save` archive, recognised by its `oci-layout` and
//! `index.json`.
//!
//! # The legacy `docker save` form
//!
//! `manifest.json` is `[{"Config": …, "RepoTags": […], "Layers": […]}]`
//! with the config and one tar per layer (plain or gzip) as files in the
//! archive; legacy archives link duplicate layers with symlinks. berth reads
//! archives of one image. Every name is resolved inside the extraction root.
//!
//! Conversion keeps every byte: each layer file becomes a blob as it is —
//! `application/vnd.oci.image.layer.v1.tar` when plain (then its digest is
//! its diffID), `…tar+gzip` when gzip — and the config is stored verbatim.
//! So the image's ID (its config digest) and diffIDs stay Docker's, no time
//! goes into recompression, and nothing depends on a compressor's version;
//! the cost is that plain layers are stored uncompressed. Each layer's
//! diffID is computed and must equal the config's `rootfs.diff_ids` entry
//! before its blob is stored, and a config named `<sha256>.json` must have
//! that digest: a tampered archive is refused, storing nothing. berth then
//! writes an OCI manifest for the image (canonical JSON); the archive has no
//! manifest digest of its own, so the base reports none.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;

use oci_spec::image::{ImageConfiguration, MediaType};
use serde::Deserialize;
use sha2::Digest as _;

use super::error::{Context, io_err};
use super::{BaseError, BaseImage, finish, inside, layout, parse_digest, parse_json, read_json_file};
use crate::oci::image::{canonical_json, descriptor, image_manifest};
use crate::oci::{Digest, UnpackOptions, Whiteouts, unpack_compressed};
use crate::store::{LayerRecord, StagingDir, Store, StoreError};

/// Makes the image `tag` (or the only one) of the OCI archive `file` a base.
pub(super) fn oci_archive(store: &Store, base: &str, file: &Path, tag: Option<&str>) -> Result<BaseImage, BaseError> {
    let staging = extract(store, base, file)?;
    let root = staging.path().canonicalize().map_err(io_err(base, "find", staging.path()))?;
    layout::materialise(store, base, &root, tag).map_err(|e| e.rebase(&root, file))
}

/// Makes the one image of the `docker save` archive `file` a base.
pub(super) fn docker_archive(store: &Store, base: &str, file: &Path) -> Result<BaseImage, BaseError> {
    let staging = extract(store, base, file)?;
    let root = staging.path().canonicalize().map_err(io_err(base, "find", staging.path()))?;
    if root.join("oci-layout").is_file() && root.join("index.json").is_file() {
        return layout::materialise(store, base, &root, None).map_err(|e| e.rebase(&root, file));
    }
    if !root.join("manifest.json").is_file() {
        return Err(BaseError::NotThisKind {
            base: base.into(),
            path: file.to_owned(),
            expected: "a `docker save` archive",
            why: "it has neither manifest.json nor index.json and oci-layout".to_owned(),
        });
    }
    legacy(store, base, file, &root).map_err(|e| e.rebase(&root, file))
}

/// Extracts the archive `file` (plain or gzip) into a new staging directory.
fn extract(store: &Store, base: &str, file: &Path) -> Result<StagingDir, BaseError> {
    let input = File::open(file).map_err(io_err(base, "open", file))?;
    let staging = store.staging_dir().in_base(base)?;
    let options = UnpackOptions { whiteouts: Whiteouts::Apply, preserve_owners: false };
    unpack_compressed(BufReader::with_capacity(256 << 10, input), staging.path(), &options)
        .map_err(|source| BaseError::Unpack { base: base.into(), path: file.to_owned(), source })?;
    Ok(staging)
}

/// One image of a legacy `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Converts the legacy archive `file`, extracted at `root` (canonical).
fn legacy(store: &Store, base: &str, file: &Path, root: &Path) -> Result<BaseImage, BaseError> {
    let manifest_path = root.join("manifest.json");
    let entries: Vec<LegacyEntry> =
        parse_json(base, &manifest_path, "a docker-archive manifest.json", &read_json_file(base, &manifest_path)?)?;
    let entry = match entries.as_slice() {
        [one] => one,
        _ => {
            let tags = entries.iter().flat_map(|e| e.repo_tags.clone().unwrap_or_default()).collect();
            return Err(BaseError::ManyImages { base: base.into(), path: file.to_owned(), count: entries.len(), tags });
        }
    };

    let config_path = inside(base, root, &entry.config, "config")?;
    let config_bytes = read_json_file(base, &config_path)?;
    let config_digest = Digest::sha256(&config_bytes);
    if let Some(named) = digest_in_name(&entry.config)
        && named != config_digest
    {
        let (what, path) = ("config", config_path);
        return Err(BaseError::DigestMismatch {
            base: base.into(),
            what,
            path,
            expected: named,
            actual: config_digest,
        });
    }
    let config: ImageConfiguration = parse_json(base, &config_path, "an image config", &config_bytes)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(BaseError::LayerCount { base: base.into(), layers: entry.layers.len(), diff_ids: diff_ids.len() });
    }

    let mut layers = Vec::with_capacity(entry.layers.len());
    for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
        let path = inside(base, root, name, "layer")?;
        let diff_id = parse_digest(base, &config_path, "diff_id", diff_id)?;
        layers.push(store_layer(store, base, &path, diff_id)?);
    }

    let config_digest = store.put_blob(&config_bytes).in_base(base)?;
    let layer_descriptors =
        layers.iter().map(|l| descriptor(MediaType::from(l.media_type.as_str()), l.size, &l.digest)).collect();
    let manifest = image_manifest(
        descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest),
        layer_descriptors,
    );
    let manifest_bytes = canonical_json(&manifest).map_err(|source| BaseError::Encode {
        base: base.into(),
        what: "manifest",
        source,
    })?;
    let manifest_digest = store.put_blob(&manifest_bytes).in_base(base)?;
    finish(store, base, (manifest_digest, manifest), config, layers, None)
}

/// The digest a legacy archive's file name carries, if it has the form
/// `<64 hex>.json` or `blobs/sha256/<64 hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let hex = name.strip_suffix(".json").or_else(|| name.strip_prefix("blobs/sha256/"))?;
    format!("sha256:{hex}").parse().ok()
}

/// How a layer file is compressed, from its first bytes.
#[derive(Debug, PartialEq, Eq)]
enum Packing {
    Plain,
    Gzip,
    Zstd,
}

fn packing(magic: &[u8]) -> Packing {
    match magic {
        [0x1f, 0x8b, ..] => Packing::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Packing::Zstd,
        _ => Packing::Plain,
    }
}

/// Stores the layer file `path` as a blob, as it is, after checking that
/// its uncompressed content has `diff_id`.
fn store_layer(store: &Store, base: &str, path: &Path, diff_id: Digest) -> Result<LayerRecord, BaseError> {
    let open = || File::open(path).map_err(io_err(base, "open", path));
    let mut magic = [0u8; 4];
    let seen = read_up_to(&mut open()?, &mut magic).map_err(io_err(base, "read", path))?;
    let (packing, media_type) = match packing(&magic[..seen]) {
        Packing::Plain => (Packing::Plain, MediaType::ImageLayer),
        Packing::Gzip => (Packing::Gzip, MediaType::ImageLayerGzip),
        Packing::Zstd => {
            let media_type = "zstd-compressed tar".to_owned();
            return Err(BaseError::Zstd { base: base.into(), digest: path.display().to_string(), media_type });
        }
    };
    let mismatch = |actual| BaseError::DigestMismatch {
        base: base.into(),
        what: "layer",
        path: path.to_owned(),
        expected: diff_id.clone(),
        actual,
    };
    // A plain layer's blob digest is its diffID, which the commit checks;
    // a gzip layer is decompressed and hashed first.
    let expected_blob = match packing {
        Packing::Plain => Some(&diff_id),
        _ => {
            let actual = sha256_of(flate2::read::MultiGzDecoder::new(BufReader::new(open()?))).map_err(io_err(
                base,
                "decompress",
                path,
            ))?;
            if actual != diff_id {
                return Err(mismatch(actual));
            }
            None
        }
    };
    if packing == Packing::Plain && store.has_blob(&diff_id) {
        let size = open()?.metadata().map_err(io_err(base, "inspect", path))?.len();
        return Ok(LayerRecord { digest: diff_id.clone(), diff_id, size, media_type: media_type.to_string() });
    }
    let mut out = BufWriter::with_capacity(256 << 10, store.blob_writer().in_base(base)?);
    io::copy(&mut open()?, &mut out).map_err(io_err(base, "copy", path))?;
    let blob = out.into_inner().map_err(|e| io_err(base, "copy", path)(e.into_error()))?;
    let (digest, size) = match blob.commit(expected_blob) {
        Ok(done) => done,
        Err(StoreError::DigestMismatch { actual, .. }) => return Err(mismatch(actual)),
        Err(other) => return Err(other).in_base(base),
    };
    Ok(LayerRecord { digest, diff_id, size, media_type: media_type.to_string() })
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut seen = 0;
    while seen < buf.len() {
        match reader.read(&mut buf[seen..]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(seen)
}

fn sha256_of(mut reader: impl Read) -> io::Result<Digest> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(Digest::from_sha256(hasher.finalize().into())),
            n => hasher.update(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_carry_digests_when_they_look_like_one() {
        let hex = "04a6cbbf4799c8c043e071904290e51f94092bda7b3a8f212889916eaeb3696a";
        let digest: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(digest_in_name(&format!("{hex}.json")), Some(digest.clone()));
        assert_eq!(digest_in_name(&format!("blobs/sha256/{hex}")), Some(digest));
        assert_eq!(digest_in_name("config.json"), None);
        assert_eq!(digest_in_name("abc/json"), None);
    }

    #[test]
    fn layer_packing_from_magic() {
        assert_eq!(packing(&[0x1f, 0x8b, 8, 0]), Packing::Gzip);
        assert_eq!(packing(&[0x28, 0xb5, 0x2f, 0xfd]), Packing::Zstd);
        assert_eq!(packing(b"etc/"), Packing::Plain);
        assert_eq!(packing(b""), Packing::Plain);
    }
}
