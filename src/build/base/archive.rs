//! Image archives as bases: `oci-archive:FILE[:TAG]` and
//! `docker-archive:FILE`, read by the code `berth load` uses
//! ([`Store::stage_archive`] and [`Store::commit_images`]; the formats are
//! `oci::archive`'s).
//!
//! The archive is read in one pass into the store's `tmp/`, every blob
//! checked against its descriptor (in a legacy `docker save` archive: every
//! plain layer against its diffID, a config named `<hex>.json` against its
//! name); then one image is chosen, its layers are decompressed, their
//! diffIDs checked and the layers unpacked, and only then is anything
//! committed. A tampered archive is refused storing nothing. Nothing is
//! tagged: a base is not an image of the user's.
//!
//! `oci-archive:` takes the image whose `index.json` entry has the
//! `org.opencontainers.image.ref.name` TAG, or with no tag the only one.
//! `docker-archive:` takes a Docker 25+ archive (an OCI layout) as
//! `oci-archive:` with no tag, and a legacy archive of one image as it is:
//! its config verbatim and its layers as they are (plain, gzip or zstd), so
//! the image's ID and diffIDs stay Docker's. A legacy archive has no
//! manifest (berth writes one), so that base reports no digest.
//!
//! Errors of the kinds other bases report too (a digest that does not
//! match, a name leading out of the archive, …) keep their [`BaseError`]
//! variants, naming the member inside the archive; the rest are
//! [`BaseError::Archive`].

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::layout::choose_tagged;
use super::{BaseError, BaseImage};
use crate::oci::archive::{ArchiveFormat, ArchiveImage, FormatError, blob_name};
use crate::store::{ArchiveError, LayerRecord, StagedArchive, Store};

const OCI_ARCHIVE: &str =
    "an OCI archive (an OCI image layout in a tar, as `skopeo copy … oci-archive:FILE:TAG` writes)";
const DOCKER_ARCHIVE: &str = "a `docker save` archive";

/// Makes the image `tag` (or the only one) of the OCI archive `file` a base.
pub(super) fn oci_archive(store: &Store, base: &str, file: &Path, tag: Option<&str>) -> Result<BaseImage, BaseError> {
    let staged = stage(store, base, file, OCI_ARCHIVE)?;
    if staged.format == ArchiveFormat::Docker {
        let why = "it is a legacy `docker save` archive (manifest.json, no index.json); name it as docker-archive:FILE";
        return Err(not_this_kind(base, file, OCI_ARCHIVE, why.to_owned()));
    }
    let image = choose_tagged(base, &file.join("index.json"), &staged.images, tag, ref_names)?;
    commit(store, base, file, &staged, image)
}

/// Makes the one image of the `docker save` archive `file` a base.
pub(super) fn docker_archive(store: &Store, base: &str, file: &Path) -> Result<BaseImage, BaseError> {
    let staged = stage(store, base, file, DOCKER_ARCHIVE)?;
    let image = match (staged.format, staged.images.as_slice()) {
        (ArchiveFormat::Oci, images) => choose_tagged(base, &file.join("index.json"), images, None, ref_names)?,
        (ArchiveFormat::Docker, [one]) => one,
        (ArchiveFormat::Docker, images) => {
            let tags = images.iter().flat_map(|i| i.ref_names.clone()).collect();
            return Err(BaseError::ManyImages { base: base.into(), path: file.to_owned(), count: images.len(), tags });
        }
    };
    commit(store, base, file, &staged, image)
}

fn ref_names(image: &ArchiveImage) -> Vec<&str> {
    image.ref_names.iter().map(String::as_str).collect()
}

/// Reads `file` into the store's `tmp/` and checks it; `expected` says
/// what the base's kind of archive is, for a file that is none.
fn stage(store: &Store, base: &str, file: &Path, expected: &'static str) -> Result<StagedArchive, BaseError> {
    let input = File::open(file).map_err(io_err(base, "open", file))?;
    store.stage_archive(BufReader::with_capacity(256 << 10, input)).map_err(|e| format_err(base, file, expected, e))
}

/// Puts `image` of `staged` in the store, unpacked, and returns it as a base.
fn commit(
    store: &Store,
    base: &str,
    file: &Path,
    staged: &StagedArchive,
    image: &ArchiveImage,
) -> Result<BaseImage, BaseError> {
    store.commit_images(staged, &[image], &file.display().to_string()).map_err(|e| load_err(base, file, e))?;
    let layers = image.layers.iter().map(|l| LayerRecord {
        digest: l.digest.clone(),
        diff_id: l.diff_id.clone(),
        size: l.size,
        media_type: l.media_type.clone(),
    });
    let digest = (staged.format == ArchiveFormat::Oci).then(|| image.manifest_digest.clone());
    Ok(BaseImage { layers: layers.collect(), config: image.config.clone(), digest })
}

fn not_this_kind(base: &str, file: &Path, expected: &'static str, why: String) -> BaseError {
    BaseError::NotThisKind { base: base.into(), path: file.to_owned(), expected, why }
}

/// `e`, found reading `file`, as the base's error.
fn format_err(base: &str, file: &Path, expected: &'static str, e: FormatError) -> BaseError {
    let mismatch = |what, name: &str, expected, actual| BaseError::DigestMismatch {
        base: base.into(),
        what,
        path: file.join(name),
        expected,
        actual,
    };
    match e {
        FormatError::BlobNameMismatch { what, expected, actual } => {
            mismatch(what, &blob_name(&expected), expected, actual)
        }
        FormatError::LegacyDiffId { file: name, expected, actual } => mismatch("layer", &name, expected, actual),
        FormatError::ConfigDigest { file: name, expected, actual } => mismatch("config", &name, expected, actual),
        FormatError::LeadsOut { what, name, .. } => {
            BaseError::Escapes { base: base.into(), what, path: PathBuf::from(name), root: file.to_owned() }
        }
        FormatError::NotAnImageArchive { why } => not_this_kind(base, file, expected, why),
        FormatError::NoPlatform { digest, wanted, available } => {
            BaseError::NoPlatform { base: base.into(), digest, wanted, available }
        }
        source => load_err(base, file, ArchiveError::format(&file.display().to_string())(source)),
    }
}

/// `e`, from putting an image of `file` in the store, as the base's error.
fn load_err(base: &str, file: &Path, e: ArchiveError) -> BaseError {
    let base = base.into();
    match e {
        ArchiveError::DiffId { file: name, expected, actual, .. } => {
            BaseError::DigestMismatch { base, what: "layer", path: file.join(name), expected, actual }
        }
        ArchiveError::ReadLayer { file: name, source, .. } => {
            BaseError::Io { base, op: "read", path: file.join(name), source }
        }
        ArchiveError::Unpack { file: name, source, .. } => {
            BaseError::Unpack { base, path: file.join(name), source: *source }
        }
        ArchiveError::Store(source) => BaseError::Store { base, source: Box::new(source) },
        ArchiveError::Image(source) => BaseError::Image { base, source },
        other => BaseError::Archive { base, source: Box::new(other) },
    }
}
