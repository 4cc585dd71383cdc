//! `berth load`: the images of an archive (either form; see
//! `oci::archive`) into the store, all or nothing.
//!
//! 1. One pass over the archive stream: layer files are staged as blobs in
//!    `tmp/` ([`StagedBlob`]), JSON is kept in memory, every file is hashed.
//! 2. Every descriptor is checked against the file it names (digest, size,
//!    media type), and every image name is checked.
//! 3. Every layer is decompressed and its diffID checked; a layer not yet
//!    unpacked in the store is unpacked into a staging directory on the way,
//!    by the safe tar reader (an entry escaping the root is refused).
//! 4. Only then is anything committed: blobs (layers, configs, manifests),
//!    then unpacked layers, then tags.
//!
//! A corrupt or truncated archive therefore changes nothing: what was
//! staged is removed when the staging handles drop. A crash during step 4
//! leaves at most complete, verified blobs and layers that no tag names,
//! which garbage collection removes. The caller holds
//! [`Store::lock_exclusive`] for the whole load (staging lives in `tmp/`,
//! which a sweep would otherwise empty).
//!
//! The steps are also there one by one for the builder's archive bases
//! (`build::base`), which take one image of an archive and tag nothing:
//! [`Store::stage_archive`] is steps 1 and 2 (less the names),
//! [`Store::commit_images`] steps 3 and 4 (less the tags).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, BufWriter, Cursor, Read};

use oci_spec::image::MediaType;
use sha2::Digest as _;

use super::unpack::unpack_hashed;
use super::unwritable::from_unpack;
use super::{ArchiveError, StagedBlob, StagingDir, Store, StoreError, normalize_tag_name};
use crate::oci::archive::{
    ArchiveContents, ArchiveFormat, ArchiveImage, ArchiveLayer, BlobSink, Content, FormatError, interpret, read_stream,
};
use crate::oci::image::descriptor;
use crate::oci::{Digest, UnpackOptions, Whiteouts};

/// One image [`Store::load_archive`] put in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// The tags set, in full `repository:tag` form; empty if the archive
    /// gave the image no name (it is then found by its ID).
    pub tags: Vec<String>,
    /// The manifest's digest: the image's ID.
    pub manifest: Digest,
    /// The config's digest (Docker's image ID).
    pub config: Digest,
    /// The annotations of its `index.json` entries other than its names
    /// (see `ArchiveImage::annotations`); the manifest's own annotations
    /// are in the stored manifest.
    pub annotations: BTreeMap<String, String>,
}

/// What a load did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub format: ArchiveFormat,
    pub images: Vec<LoadedImage>,
}

/// An archive read into the store's `tmp/` and checked, nothing committed:
/// what [`Store::stage_archive`] returns. Dropping it removes what was staged.
pub type StagedArchive = ArchiveContents<StagedBlob>;

/// Stages each large archive file as a blob in the store's `tmp/`.
struct StagingSink<'a> {
    store: &'a Store,
}

impl BlobSink for StagingSink<'_> {
    type Blob = StagedBlob;

    fn receive(&mut self, content: &mut dyn Read) -> io::Result<StagedBlob> {
        // The store's errors travel inside the io::Error, for
        // `ArchiveError::format` to take out again.
        let mut out = BufWriter::with_capacity(256 << 10, self.store.blob_writer().map_err(io::Error::other)?);
        io::copy(content, &mut out)?;
        let blob = out.into_inner().map_err(|e| e.into_error())?;
        blob.stage().map_err(io::Error::other)
    }
}

impl Store {
    /// Loads every image of the archive `input` (a tar, plain or
    /// compressed), which messages call `archive`; see the module page.
    pub fn load_archive(&self, input: impl Read, archive: &str) -> Result<Loaded, ArchiveError> {
        let contents = self.stage_archive(input).map_err(ArchiveError::format(archive))?;
        if contents.images.is_empty() {
            return Err(ArchiveError::NoImages { archive: archive.to_owned() });
        }
        let mut tags = Vec::with_capacity(contents.images.len());
        for image in &contents.images {
            let checked = image.names.iter().map(|name| {
                normalize_tag_name(name)
                    .map_err(|source| ArchiveError::BadName { archive: archive.to_owned(), source: Box::new(source) })
            });
            tags.push(checked.collect::<Result<Vec<_>, _>>()?);
        }
        self.commit_images(&contents, &contents.images.iter().collect::<Vec<_>>(), archive)?;
        let mut loaded = Vec::with_capacity(contents.images.len());
        for (image, tags) in contents.images.iter().zip(tags) {
            let media_type = MediaType::from(image.manifest_media_type.as_str());
            let manifest = descriptor(media_type, image.manifest_bytes.len() as u64, &image.manifest_digest);
            for tag in &tags {
                self.set_tag(tag, manifest.clone())?;
            }
            let (manifest, config) = (image.manifest_digest.clone(), image.config_digest.clone());
            loaded.push(LoadedImage { tags, manifest, config, annotations: image.annotations.clone() });
        }
        Ok(Loaded { format: contents.format, images: loaded })
    }

    /// Reads the archive `input` (a tar, plain or compressed) into `tmp/`
    /// and checks it, committing nothing: steps 1 and 2 of the module page,
    /// less the check of image names.
    pub fn stage_archive(&self, input: impl Read) -> Result<StagedArchive, FormatError> {
        interpret(read_stream(input, &mut StagingSink { store: self })?)
    }

    /// Puts `images` (images of `staged`) in the store, tagging nothing:
    /// every layer's diffID is checked, and the layers unpacked, before any
    /// blob is committed (steps 3 and 4 of the module page). Messages call
    /// the archive `archive`.
    pub fn commit_images(
        &self,
        staged: &StagedArchive,
        images: &[&ArchiveImage],
        archive: &str,
    ) -> Result<(), ArchiveError> {
        let unpacked = self.check_layers(staged, images, archive)?;
        for image in images {
            for layer in &image.layers {
                self.commit_layer_blob(staged, layer)?;
            }
            self.put_blob(&image.config_bytes)?;
            self.put_blob(&image.manifest_bytes)?;
        }
        for (diff_id, staging) in unpacked {
            self.commit_layer(staging, &diff_id)?;
        }
        Ok(())
    }

    /// Decompresses every layer of `images` and checks its diffID, unpacking
    /// those the store does not have yet into staging directories, which it
    /// returns.
    fn check_layers(
        &self,
        contents: &StagedArchive,
        images: &[&ArchiveImage],
        archive: &str,
    ) -> Result<Vec<(Digest, StagingDir)>, ArchiveError> {
        let options = UnpackOptions { whiteouts: Whiteouts::Overlay, preserve_owners: crate::sys::euid() == 0 };
        let mut checked = BTreeSet::new();
        let mut unpacked: Vec<(Digest, StagingDir)> = Vec::new();
        for layer in images.iter().flat_map(|i| &i.layers) {
            if !checked.insert((layer.digest.clone(), layer.diff_id.clone())) {
                continue;
            }
            let (file, content) = contents.layer_file(&layer.digest).expect("interpret found every layer's file");
            let read_err =
                |source| ArchiveError::ReadLayer { archive: archive.to_owned(), file: file.to_owned(), source };
            let blob: Box<dyn Read> = match &content.content {
                Content::Memory(bytes) => Box::new(Cursor::new(bytes.as_slice())),
                Content::Sink(staged) => Box::new(BufReader::with_capacity(256 << 10, staged.open()?)),
            };
            let tar = layer.compression.decompress(blob).map_err(read_err)?;
            let already = self.has_layer(&layer.diff_id) || unpacked.iter().any(|(d, _)| *d == layer.diff_id);
            let actual = if already {
                sha256_of(tar).map_err(read_err)?
            } else {
                let staging = self.layer_staging_dir()?;
                let actual =
                    unpack_hashed(tar, staging.path(), &options).map_err(|e| match from_unpack(self.root(), e) {
                        Ok(store) => ArchiveError::Store(store),
                        Err(source) => ArchiveError::Unpack {
                            archive: archive.to_owned(),
                            file: file.to_owned(),
                            source: Box::new(source),
                        },
                    })?;
                unpacked.push((layer.diff_id.clone(), staging));
                actual
            };
            if actual != layer.diff_id {
                return Err(ArchiveError::DiffId {
                    archive: archive.to_owned(),
                    file: file.to_owned(),
                    expected: layer.diff_id.clone(),
                    actual,
                });
            }
        }
        Ok(unpacked)
    }

    /// Puts the layer blob `layer` of `contents` in the store.
    fn commit_layer_blob(&self, contents: &StagedArchive, layer: &ArchiveLayer) -> Result<(), StoreError> {
        let (_, file) = contents.layer_file(&layer.digest).expect("interpret found every layer's file");
        match &file.content {
            Content::Memory(bytes) => self.put_blob(bytes).map(drop),
            Content::Sink(staged) => staged.commit(),
        }
    }
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
