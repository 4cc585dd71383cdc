//! `rootfs:FILE.tar`: a flat filesystem tar (what `docker export` and
//! `berth export` write) becomes one layer, and the layer writer shared with
//! `bootstrap`.
//!
//! The tar (plain or gzip) is unpacked with the safe reader into a staging
//! directory, whiteouts applied, owners kept when running as root — the same
//! reader `berth import` uses. Unlike `Store::import_rootfs`, which keeps
//! the tar's mtimes and dates its config now, a base clamps every mtime to
//! the epoch and dates its config at the epoch, so the same tar gives the
//! same layer and config on every machine, including the parent directories
//! a tar may leave out. The staging tree is then written by the reproducible
//! layer writer (gzip), and the store unpacks the new blob into `layers/`,
//! so the unpacked layer is exactly what the blob holds.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use super::error::{Context, io_err};
use super::{BaseError, BaseImage, single_layer};
use crate::oci::{Compression, MtimePolicy, UnpackOptions, Whiteouts, unpack_compressed, write_tree};
use crate::store::{LayerRecord, Store};

/// Makes the filesystem tar `file` a one-layer base.
pub(super) fn materialise(store: &Store, base: &str, file: &Path, epoch: u64) -> Result<BaseImage, BaseError> {
    let input = File::open(file).map_err(io_err(base, "open", file))?;
    let staging = store.staging_dir().in_base(base)?;
    let options = UnpackOptions { whiteouts: Whiteouts::Apply, preserve_owners: crate::sys::euid() == 0 };
    let stats =
        unpack_compressed(BufReader::with_capacity(256 << 10, input), staging.path(), &options).map_err(|e| {
            match crate::store::unwritable::from_unpack(store.root(), e) {
                Ok(full) => BaseError::Store { base: base.into(), source: Box::new(full) },
                Err(source) => BaseError::Unpack { base: base.into(), path: file.to_owned(), source },
            }
        })?;
    if stats.entries == 0 {
        return Err(BaseError::EmptyRootfs { base: base.into(), path: file.to_owned() });
    }
    let layer = tree_layer(store, base, staging.path(), epoch)?;
    drop(staging);
    single_layer(store, base, layer, epoch)
}

/// Writes the tree at `root` as a gzip layer blob in the store, every mtime
/// clamped to `epoch`, and returns its record.
pub(super) fn tree_layer(store: &Store, base: &str, root: &Path, epoch: u64) -> Result<LayerRecord, BaseError> {
    let out = BufWriter::with_capacity(256 << 10, store.blob_writer().in_base(base)?);
    let (out, digests) = write_tree(root, out, Compression::Gzip, MtimePolicy::Clamp(epoch))
        .map_err(|source| BaseError::WriteLayer { base: base.into(), source })?;
    let blob = out.into_inner().map_err(|e| io_err(base, "write the layer blob for", root)(e.into_error()))?;
    let (digest, size) = blob.commit(Some(&digests.digest)).in_base(base)?;
    Ok(LayerRecord { digest, diff_id: digests.diff_id, size, media_type: digests.media_type.to_owned() })
}
