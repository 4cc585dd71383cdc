//! Unpacked layers for running an image: [`Store::unpacked_layers`] gives
//! the overlay lower directories of an [`Image`], unpacking from the layer
//! blobs whatever is not unpacked yet.
//!
//! A layer is unpacked from its blob into a staging directory with overlay
//! whiteouts (`Whiteouts::Overlay`), while the uncompressed stream is hashed;
//! only if that hash is the diffID the image's config names is the directory
//! renamed to `layers/<diffid>`. A corrupt or tampered blob is an error that
//! names the layer, and its staging directory is removed. A layer directory
//! that exists is complete (it got there by rename) and is reused as it is.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::image::Image;
use super::unwritable::from_unpack;
use super::{ImageError, LayerRecord, StagingDir, Store, StoreError};
use crate::oci::archive::media::layer_compression;
use crate::oci::{Digest, UnpackOptions, Whiteouts, unpack};

impl Store {
    /// The unpacked directories of `image`'s layers, bottom first, ready to
    /// be overlay lower directories (overlayfs wants them top first: reverse
    /// them for `lowerdir=`). Unpacks any layer not unpacked yet, checking
    /// its diffID (see the module page). Owners are kept when running as
    /// root. The caller holds [`Store::lock_exclusive`] if anything might be
    /// unpacked.
    pub fn unpacked_layers(&self, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        image.layers.iter().map(|layer| self.unpacked_layer(&image.name, layer)).collect()
    }

    /// The unpacked directory of one layer, unpacked from its blob first if
    /// it is missing; `image` names what it belongs to in errors.
    pub fn unpacked_layer(&self, image: &str, layer: &LayerRecord) -> Result<PathBuf, ImageError> {
        let dir = self.layer_dir(&layer.diff_id);
        if dir.is_dir() {
            return Ok(dir);
        }
        let compression = layer_compression(&layer.media_type).ok_or_else(|| ImageError::LayerMediaType {
            image: image.to_owned(),
            layer: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        })?;
        let path = self.blob_path(&layer.digest);
        let blob = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::BlobMissing {
                image: image.to_owned(),
                what: "layer",
                digest: layer.digest.clone(),
                path: path.clone(),
            },
            _ => StoreError::io("open layer blob", &path)(e).into(),
        })?;
        let blob = BufReader::with_capacity(256 << 10, blob);
        let staging = self.layer_staging_dir()?;
        let unpack_err =
            |source| ImageError::UnpackLayer { image: image.to_owned(), layer: layer.digest.clone(), source };
        let options = UnpackOptions { whiteouts: Whiteouts::Overlay, preserve_owners: crate::sys::euid() == 0 };
        let tar = compression
            .decompress(blob)
            .map_err(|source| unpack_err(crate::oci::UnpackError::Read { entries: 0, source }))?;
        let actual = unpack_hashed(tar, staging.path(), &options).map_err(|e| match from_unpack(self.root(), e) {
            Ok(store) => ImageError::Store(store),
            Err(e) => unpack_err(e),
        })?;
        if actual != layer.diff_id {
            return Err(ImageError::DiffIdMismatch {
                image: image.to_owned(),
                layer: layer.digest.clone(),
                expected: layer.diff_id.clone(),
                actual,
            });
        }
        Ok(self.commit_layer(staging, &layer.diff_id)?)
    }

    /// A staging directory whose own mode is 0755 whatever the umask: it
    /// becomes a layer's root directory, and so the container's `/`, when
    /// the tar has no entry for the root.
    pub(super) fn layer_staging_dir(&self) -> Result<StagingDir, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let staging = self.staging_dir()?;
        std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(StoreError::io("set the mode of staging directory", staging.path()))?;
        Ok(staging)
    }
}

/// Unpacks the uncompressed tar `tar` into `root` and returns the sha256 of
/// every byte of it (`unpack` reads the stream to its end).
pub(super) fn unpack_hashed(
    tar: impl Read,
    root: &Path,
    options: &UnpackOptions,
) -> Result<Digest, crate::oci::UnpackError> {
    let mut hashing = HashingReader { inner: tar, hasher: sha2::Sha256::new() };
    unpack(&mut hashing, root, options)?;
    Ok(Digest::from_sha256(hashing.hasher.finalize().into()))
}

/// A reader that hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::oci::archive::media::{LayerCompression, layer_compression};

    #[test]
    fn media_types_berth_unpacks() {
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", Some(LayerCompression::None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(LayerCompression::Gzip)),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Some(LayerCompression::Gzip)),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Some(LayerCompression::Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Some(LayerCompression::Zstd)),
            ("application/vnd.oci.image.config.v1+json", None),
            ("text/plain", None),
        ];
        for (media_type, expected) in cases {
            assert_eq!(layer_compression(media_type), expected, "{media_type}");
        }
    }
}
