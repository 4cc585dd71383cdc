//! Writing archives, streaming, in either form.
//!
//! **OCI** (`oci-archive`, the default): `oci-layout`, `index.json`, a
//! Docker-style `manifest.json` and `blobs/sha256/…`, as Docker 25+ writes.
//! Each name of each image is one `index.json` entry annotated with
//! `org.opencontainers.image.ref.name` (the name as berth knows it, as
//! berth's own store and `skopeo`/`umoci` look it up) and
//! `io.containerd.image.name` (fully qualified, which Docker 25+ and podman
//! read), plus the caller's annotations. `manifest.json` lets `docker load`
//! and podman's docker-archive reader (which podman uses for archives of
//! several images) find the images and their names too. Blobs are written
//! as they are: the manifest digests stay the store's.
//!
//! **Docker** (`docker-archive`): the legacy `docker save` form as podman
//! writes it: `manifest.json`, `<config hex>.json` and `<diffID hex>.tar`,
//! each layer uncompressed. A compressed layer is read twice, once to
//! measure it (and check its diffID) for the tar header, once to write it.
//!
//! Entries are written in a fixed order with owner 0:0, mode 0644 (0755 for
//! directories) and mtime 0, so the same images give the same bytes. Every
//! blob read from the [`BlobSource`] is checked against its size and digest
//! as it is copied; a mismatch stops the write with an error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use serde::Serialize;
use sha2::Digest as _;

use super::contents::{ArchiveImage, blob_name};
use super::media::{self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, LayerCompression};
use super::{ArchiveFormat, FormatError};
use crate::oci::Digest;
use crate::oci::image::canonical_json;

/// Where the writer reads layer blobs from.
pub trait BlobSource {
    /// The blob `digest` for reading, and its length.
    fn open(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)>;
}

/// What a write put in the archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub images: usize,
    /// Distinct blobs (or layer files) written.
    pub blobs: usize,
    /// Bytes of the tar stream.
    pub bytes: u64,
}

/// One entry of a Docker-style `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes `images` as an archive of `format` to `out`, reading layer blobs
/// from `source`; returns `out` and what was written. See the module page.
pub fn write_archive<W: Write>(
    out: W,
    format: ArchiveFormat,
    images: &[ArchiveImage],
    source: &dyn BlobSource,
) -> Result<(W, WriteStats), FormatError> {
    let counting = Counting { inner: out, count: 0, poisoned: false };
    let mut tar = Tar { builder: tar::Builder::new(counting), blobs: 0 };
    let written = match format {
        ArchiveFormat::Oci => write_oci(&mut tar, images, source),
        ArchiveFormat::Docker => write_docker(&mut tar, images, source),
    };
    if let Err(e) = written {
        // Dropping the builder writes the end-of-archive marker; a failed
        // archive must not look complete.
        tar.builder.get_mut().poisoned = true;
        return Err(e);
    }
    let blobs = tar.blobs;
    let counting = tar.builder.into_inner().map_err(|source| FormatError::Write { source })?;
    let stats = WriteStats { images: images.len(), blobs, bytes: counting.count };
    Ok((counting.inner, stats))
}

fn write_oci(tar: &mut Tar<impl Write>, images: &[ArchiveImage], source: &dyn BlobSource) -> Result<(), FormatError> {
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    tar.file("index.json", &encode("index.json", &index_json(images))?)?;
    let entries: Vec<ManifestEntry> = images
        .iter()
        .map(|image| ManifestEntry {
            config: blob_name(&image.config_digest),
            repo_tags: repo_tags(image),
            layers: image.layers.iter().map(|l| blob_name(&l.digest)).collect(),
        })
        .collect();
    tar.file("manifest.json", &encode("manifest.json", &entries)?)?;
    tar.dir("blobs")?;
    tar.dir("blobs/sha256")?;
    let mut written = BTreeSet::new();
    for image in images {
        for (digest, bytes) in
            [(&image.manifest_digest, &image.manifest_bytes), (&image.config_digest, &image.config_bytes)]
        {
            if written.insert(digest.clone()) {
                check_bytes(digest, bytes)?;
                tar.file(&blob_name(digest), bytes)?;
                tar.blobs += 1;
            }
        }
        for layer in &image.layers {
            if written.insert(layer.digest.clone()) {
                tar.blob(&blob_name(&layer.digest), &layer.digest, layer.size, source)?;
            }
        }
    }
    Ok(())
}

fn write_docker(
    tar: &mut Tar<impl Write>,
    images: &[ArchiveImage],
    source: &dyn BlobSource,
) -> Result<(), FormatError> {
    let mut written = BTreeSet::new();
    let mut entries = Vec::with_capacity(images.len());
    for image in images {
        let config = format!("{}.json", image.config_digest.hex());
        if written.insert(image.config_digest.clone()) {
            check_bytes(&image.config_digest, &image.config_bytes)?;
            tar.file(&config, &image.config_bytes)?;
            tar.blobs += 1;
        }
        let mut layers = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let name = format!("{}.tar", layer.diff_id.hex());
            if written.insert(layer.diff_id.clone()) {
                if layer.compression == LayerCompression::None {
                    tar.blob(&name, &layer.digest, layer.size, source)?;
                } else {
                    let size = measure(layer.compression, &layer.digest, &layer.diff_id, source)?;
                    let (blob, _) = source.open(&layer.digest).map_err(read_err(&layer.digest))?;
                    let tar_stream = layer.compression.decompress(blob).map_err(read_err(&layer.digest))?;
                    tar.stream(&name, size, tar_stream, &layer.diff_id)?;
                }
            }
            layers.push(name);
        }
        entries.push(ManifestEntry { config, repo_tags: repo_tags(image), layers });
    }
    tar.file("manifest.json", &encode("manifest.json", &entries)?)
}

/// `index.json`: one entry per name of each image (see the module page).
fn index_json(images: &[ArchiveImage]) -> serde_json::Value {
    let mut manifests = Vec::new();
    for image in images {
        let entry = |name: Option<&String>| {
            let mut annotations: BTreeMap<String, String> = image.annotations.clone();
            if let Some(name) = name {
                annotations.insert(ANNOTATION_REF_NAME.to_owned(), name.clone());
                annotations.insert(ANNOTATION_CONTAINERD_NAME.to_owned(), qualified(name));
            }
            let mut d = serde_json::json!({
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest,
                "size": image.manifest_bytes.len(),
            });
            if !annotations.is_empty() {
                d["annotations"] = serde_json::json!(annotations);
            }
            d
        };
        if image.names.is_empty() {
            manifests.push(entry(None));
        }
        manifests.extend(image.names.iter().map(|n| entry(Some(n))));
    }
    serde_json::json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests })
}

/// `name` fully qualified, as containerd names images
/// (`docker.io/library/busybox:latest`); as it is if it does not parse.
fn qualified(name: &str) -> String {
    name.parse::<crate::oci::ImageRef>().map_or_else(|_| name.to_owned(), |r| r.to_string())
}

/// `manifest.json`'s `RepoTags`: fully qualified, so that podman (which
/// puts short names under `localhost/`) names images as Docker does.
fn repo_tags(image: &ArchiveImage) -> Option<Vec<String>> {
    (!image.names.is_empty()).then(|| image.names.iter().map(|n| qualified(n)).collect())
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, FormatError> {
    canonical_json(value).map_err(|source| FormatError::Encode { what, source })
}

fn read_err(digest: &Digest) -> impl FnOnce(io::Error) -> FormatError {
    let digest = digest.clone();
    move |source| FormatError::ReadBlob { digest, source }
}

/// Refuses JSON blob bytes that do not have the digest the image gives them.
fn check_bytes(digest: &Digest, bytes: &[u8]) -> Result<(), FormatError> {
    let actual = Digest::sha256(bytes);
    if actual != *digest {
        let (expected, actual) = (digest.to_string(), actual.to_string());
        return Err(FormatError::BlobChanged { digest: digest.clone(), what: "digest", expected, actual });
    }
    Ok(())
}

/// The uncompressed length of the layer blob `digest`, checking on the way
/// that its content has `diff_id`.
fn measure(
    compression: LayerCompression,
    digest: &Digest,
    diff_id: &Digest,
    source: &dyn BlobSource,
) -> Result<u64, FormatError> {
    let (blob, _) = source.open(digest).map_err(read_err(digest))?;
    let mut tar_stream = compression.decompress(blob).map_err(read_err(digest))?;
    let mut hashing = HashingWriter { hasher: sha2::Sha256::new(), count: 0 };
    io::copy(&mut tar_stream, &mut hashing).map_err(read_err(digest))?;
    let actual = Digest::from_sha256(hashing.hasher.finalize().into());
    if actual != *diff_id {
        let (expected, actual) = (diff_id.to_string(), actual.to_string());
        return Err(FormatError::BlobChanged { digest: digest.clone(), what: "diffID", expected, actual });
    }
    Ok(hashing.count)
}

/// The tar being written.
struct Tar<W: Write> {
    builder: tar::Builder<Counting<W>>,
    blobs: usize,
}

impl<W: Write> Tar<W> {
    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    }

    fn dir(&mut self, name: &str) -> Result<(), FormatError> {
        let mut header = Self::header(tar::EntryType::Directory, 0, 0o755);
        self.builder
            .append_data(&mut header, format!("{name}/"), io::empty())
            .map_err(|source| FormatError::Write { source })
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), FormatError> {
        let mut header = Self::header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
        self.builder.append_data(&mut header, name, bytes).map_err(|source| FormatError::Write { source })
    }

    /// Copies the blob `digest` of `size` bytes from `source` as `name`.
    fn blob(&mut self, name: &str, digest: &Digest, size: u64, source: &dyn BlobSource) -> Result<(), FormatError> {
        let (reader, len) = source.open(digest).map_err(read_err(digest))?;
        if len != size {
            let (expected, actual) = (format!("{size} bytes"), format!("{len} bytes"));
            return Err(FormatError::BlobChanged { digest: digest.clone(), what: "size", expected, actual });
        }
        self.stream(name, size, reader, digest)
    }

    /// Writes `size` bytes of `reader` as `name`, checking that there are
    /// exactly that many and that they hash to `digest`.
    fn stream(&mut self, name: &str, size: u64, reader: impl Read, digest: &Digest) -> Result<(), FormatError> {
        let mut hashing = HashingReader { inner: reader.take(size), hasher: sha2::Sha256::new(), count: 0 };
        let mut header = Self::header(tar::EntryType::Regular, size, 0o644);
        self.builder.append_data(&mut header, name, &mut hashing).map_err(|source| FormatError::Write { source })?;
        if hashing.count != size {
            let (expected, actual) = (format!("{size} bytes"), format!("{} bytes", hashing.count));
            return Err(FormatError::BlobChanged { digest: digest.clone(), what: "length", expected, actual });
        }
        let actual = Digest::from_sha256(hashing.hasher.finalize().into());
        if actual != *digest {
            let (expected, actual) = (digest.to_string(), actual.to_string());
            return Err(FormatError::BlobChanged { digest: digest.clone(), what: "content digest", expected, actual });
        }
        self.blobs += 1;
        Ok(())
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

struct HashingWriter {
    hasher: sha2::Sha256,
    count: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes written through it; once poisoned, writes nothing more.
struct Counting<W> {
    inner: W,
    count: u64,
    poisoned: bool,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other("the archive write failed"));
        }
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
