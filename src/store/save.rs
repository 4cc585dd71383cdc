//! `berth save`: images of the store into an archive (either form; see
//! `oci::archive`), streamed blob by blob from `oci/blobs/`, each blob
//! checked against its digest and size on the way.
//!
//! [`Store::save_archive_file`] writes into a temp file beside the output
//! and renames it over the output only when the archive is complete and
//! fsynced, so the output is never half-written; [`Store::save_archive`]
//! writes to any stream (standard output). Extra annotations on an image's
//! `index.json` entries (for `berth freeze`) come with the
//! [`SaveRequest`]. Reading only: a shared lock is enough.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::atomic::{sync_parent, unique_name};
use super::{ArchiveError, ImageError, Store};
use crate::oci::Digest;
use crate::oci::archive::media::{self, layer_compression};
use crate::oci::archive::{ArchiveFormat, ArchiveImage, ArchiveLayer, BlobSource, WriteStats, write_archive};

/// One image to save.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveRequest {
    /// A tag, manifest digest or image ID, as `berth run` takes it. A tag is
    /// saved as the image's name; an image named by digest or ID has none.
    pub image: String,
    /// Annotations for the image's `index.json` entries (OCI form only),
    /// such as what `berth freeze` records.
    pub annotations: BTreeMap<String, String>,
}

impl SaveRequest {
    /// A request for `image` with no extra annotations.
    pub fn new(image: impl Into<String>) -> SaveRequest {
        SaveRequest { image: image.into(), annotations: BTreeMap::new() }
    }
}

/// Reads blobs straight from `oci/blobs/`.
struct StoreBlobs<'a>(&'a Store);

impl BlobSource for StoreBlobs<'_> {
    fn open(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)> {
        let file = File::open(self.0.blob_path(digest))?;
        let len = file.metadata()?.len();
        Ok((Box::new(BufReader::with_capacity(256 << 10, file)), len))
    }
}

impl Store {
    /// The images `requests` name, ready to be written; several requests
    /// for one image are one image with all their names and annotations.
    pub fn archive_images(&self, requests: &[SaveRequest]) -> Result<Vec<ArchiveImage>, ArchiveError> {
        let mut images: Vec<ArchiveImage> = Vec::with_capacity(requests.len());
        for request in requests {
            let found = self.resolve_image(&request.image)?;
            let name = (found.name != found.manifest_digest.to_string()).then(|| found.name.clone());
            if let Some(same) = images.iter_mut().find(|i| i.manifest_digest == found.manifest_digest) {
                same.names.extend(name.filter(|n| !same.names.contains(n)));
                same.annotations.extend(request.annotations.clone());
                continue;
            }
            let layers = found
                .layers
                .iter()
                .map(|l| {
                    let compression = layer_compression(&l.media_type).ok_or_else(|| ImageError::LayerMediaType {
                        image: found.name.clone(),
                        layer: l.digest.clone(),
                        media_type: l.media_type.clone(),
                    })?;
                    let (digest, diff_id, size) = (l.digest.clone(), l.diff_id.clone(), l.size);
                    Ok(ArchiveLayer { digest, diff_id, size, media_type: l.media_type.clone(), compression })
                })
                .collect::<Result<_, ImageError>>()?;
            let config_digest =
                Digest::try_from(found.manifest.config().digest()).map_err(|source| ImageError::BadDigest {
                    image: found.name.clone(),
                    what: "config",
                    digest: found.manifest.config().digest().to_string(),
                    source,
                })?;
            images.push(ArchiveImage {
                names: name.into_iter().collect(),
                annotations: request.annotations.clone(),
                ref_names: Vec::new(),
                index: None,
                manifest_media_type: found
                    .manifest
                    .media_type()
                    .as_ref()
                    .map_or_else(|| media::OCI_MANIFEST.to_owned(), ToString::to_string),
                manifest_bytes: self.read_blob(&found.manifest_digest)?,
                config_bytes: self.read_blob(&config_digest)?,
                manifest_digest: found.manifest_digest,
                manifest: found.manifest,
                config_digest,
                config: found.config,
                layers,
            });
        }
        Ok(images)
    }

    /// Writes the images `requests` name as an archive of `format` to
    /// `out`, which messages call `dest`.
    pub fn save_archive(
        &self,
        requests: &[SaveRequest],
        format: ArchiveFormat,
        out: impl Write,
        dest: &Path,
    ) -> Result<WriteStats, ArchiveError> {
        let images = self.archive_images(requests)?;
        let (mut out, stats) = write_archive(out, format, &images, &StoreBlobs(self))
            .map_err(|source| ArchiveError::Write { path: dest.to_owned(), source })?;
        out.flush().map_err(|source| ArchiveError::Output { action: "write", path: dest.to_owned(), source })?;
        Ok(stats)
    }

    /// Writes the images `requests` name as an archive of `format` at
    /// `path`, replacing it only once the archive is complete (see the
    /// module page).
    pub fn save_archive_file(
        &self,
        requests: &[SaveRequest],
        format: ArchiveFormat,
        path: &Path,
    ) -> Result<WriteStats, ArchiveError> {
        let images = self.archive_images(requests)?;
        let out_err = |action, path: &Path| {
            let path = path.to_owned();
            move |source| ArchiveError::Output { action, path, source }
        };
        let partial = Partial::create(path).map_err(out_err("create a temp file beside", path))?;
        let out = BufWriter::with_capacity(256 << 10, &partial.file);
        let (out, stats) = write_archive(out, format, &images, &StoreBlobs(self))
            .map_err(|source| ArchiveError::Write { path: path.to_owned(), source })?;
        out.into_inner().map_err(|e| out_err("write", &partial.path)(e.into_error()))?;
        partial.file.sync_all().map_err(out_err("fsync", &partial.path))?;
        partial.persist(path)?;
        Ok(stats)
    }
}

/// The output being written, beside its final path; removed unless persisted.
struct Partial {
    path: PathBuf,
    file: File,
    armed: bool,
}

impl Partial {
    fn create(dest: &Path) -> io::Result<Partial> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let stem = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        loop {
            let path = dir.join(format!(".{stem}.{}.partial", unique_name("berth")));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok(Partial { path, file, armed: true }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn persist(mut self, dest: &Path) -> Result<(), ArchiveError> {
        fs::rename(&self.path, dest).map_err(|source| ArchiveError::Output {
            action: "move the finished archive to",
            path: dest.to_owned(),
            source,
        })?;
        self.armed = false;
        sync_parent(dest).map_err(ArchiveError::Store)
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error that got us here is what matters.
            let _ = fs::remove_file(&self.path);
        }
    }
}
