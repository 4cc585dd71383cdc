//! Layers from a step's upper dir: [`layer_from_upper`] turns what a build
//! step changed (the overlay upper dir) into an OCI layer blob and the same
//! layer unpacked in the store, in one pass.
//!
//! # What goes in
//!
//! The layer is the diff of the upper dir against the lower layers it was
//! mounted on: added and changed files, OCI whiteouts for deletions, opaque
//! markers for replaced directories. The upper dir is read without
//! following symlinks; for each entry:
//!
//! - an overlayfs whiteout (0:0 character device) becomes `.wh.NAME`, except
//!   under a new or opaque directory, where it hides nothing and is dropped;
//! - a directory marked opaque (`trusted.overlay.opaque=y`, or
//!   `user.overlay.opaque=y` under `userxattr`) becomes its entry plus
//!   `.wh..wh..opq`, and everything in it is new;
//! - a non-directory the lowers do not have is added. One they have (looked
//!   up as overlayfs does: whiteouts, opaque directories and files in upper
//!   layers hide what is below; see `lower`) is left out when it is the
//!   same: type, mode, owner, device number, size, mtime to the nanosecond,
//!   `security.capability`, symlink target and contents (streamed byte
//!   comparison, only when all the rest is equal). overlayfs copies a file up
//!   on open-for-write, chmod, chown and touch, so such copies are common;
//! - **a touch is a change**: an mtime that differs makes the file changed
//!   even if the bytes are the same, as in Docker (`docker diff` and its
//!   layers compare mtimes, not contents). A rewrite with identical bytes
//!   that also restores the mtime — what `dpkg` does when it reinstalls a
//!   package — is left out;
//! - a directory goes in if it is new, opaque, its own mode or owner changed
//!   (its mtime is ignored, as Docker ignores it), **or anything below it
//!   goes in**. OCI lets a layer omit parent directories, but an unpacker
//!   then makes them with mode 0755 and owner root, and in overlay form the
//!   layer's copy of the directory decides the merged directory's metadata:
//!   a new file in `/tmp` would make `/tmp` 0755. So parents are always
//!   written, as Docker's overlay driver does;
//! - all names of a hard-linked file go in if any of them does, so they stay
//!   one file (the writer makes the later names hard link entries);
//! - a name that starts with `.wh.` cannot be held by an OCI layer: error;
//! - overlayfs redirects and metacopy (`*.overlay.redirect`,
//!   `*.overlay.metacopy`) are **refused** with an error naming the path:
//!   berth mounts without `redirect_dir` and `metacopy` (renaming a lower
//!   directory then copies it, and a chmod copies data), so these only
//!   appear in an upper dir that another mount wrote, and following them
//!   would mean merging trees from other paths of the lowers.
//!
//! The root of the upper dir gets no entry (a layer tar has none). No
//! overlay xattr reaches the layer: the writer carries only
//! `security.capability`.
//!
//! # How it is written
//!
//! `plan::scan` decides the entries first (nothing is written), sorted as
//! the writer needs. Then one pass: the writer reads each upper file once
//! and its tar stream goes to two threads (`pipe`): one gzips it into a
//! store blob, on all cores (`gzip`: level 1, fixed 1 MiB blocks, blocks
//! that do not compress stored as they are), the other unpacks it with
//! overlay whiteouts (0:0 devices, the opaque xattr) into a staging
//! directory. The staged files are fsynced several at a time, then
//! [`Store::commit_layer`] renames the directory to `layers/<diffid>`. The
//! unpacked layer is thus exactly what unpacking the blob gives, as for a
//! pulled image. mtimes follow [`LayerOptions::mtimes`]: a build clamps
//! them to its epoch (and dates whiteouts and opaque markers at it), so the
//! same upper dir gives the same diffID and digest; a commit keeps them.
//!
//! 500 new files of 100 KiB and three deletions (`time_50_mib_in_500_files`
//! in `tests/layers.rs`, 2 CPUs, ext4): 0.27–0.39 s with random contents,
//! 0.17–0.30 s with text, when the machine is otherwise quiet; `podman
//! commit` of the same change, which neither compresses nor fsyncs, took
//! 0.21–0.38 s in the same runs. Under load from other processes berth falls
//! behind first, as it does more work (gzip, sha256, fsync).
//!
//! Without [`LayerOptions::unpack`] (`berth commit`) there is no staging
//! thread: only the blob is written and fsynced, and the store unpacks it
//! the first time an image with it runs. The same change on a Debian base
//! then commits in about 0.14 s against 0.77 s for `podman commit`
//! (`bench/snapshot.sh`, 2 CPUs shared with other builds). With
//! [`LayerOptions::compression`] set to zstd the blob is one zstd frame
//! written by zstd's own worker threads (level 3) instead of gzip.
//!
//! # Reading an upper dir that may change
//!
//! A running container's upper dir can change while it is read (`berth
//! commit` freezes the container, but `--pause=false` does not). The upper
//! dir is therefore opened once and every path below it is opened relative
//! to that fd without following any symlink, nor `..` above it, nor
//! crossing a mount (`upper`, `sys::beneath`); what is learnt about an
//! object comes from its fd. A directory swapped for a symlink to `/`
//! between the scan and the write fails the commit; host files never reach
//! the layer (CVE-2018-15664, `docker cp`). The lowers are the store's
//! read-only layers, which nothing changes; they are read by path, and
//! never through a symlink (see `lower`).
//!
//! The caller holds the store's exclusive lock and keeps the upper dir
//! unmounted and unchanged while this runs (or, for a container, frozen).

mod gzip;
pub(crate) mod lower;
mod pipe;
pub mod plan;
mod upper;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::oci::{Compression, Digest, LayerWriter, MtimePolicy, TarWriteError, UnpackError, UnpackOptions, Whiteouts};
use crate::store::{LayerRecord, Store, StoreError};
use upper::Upper;

pub use plan::{Entry, Plan};

/// A layer made from an upper dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOutput {
    /// The blob, as the image manifest and the cache record it.
    pub record: LayerRecord,
    /// The unpacked layer in the store (`layers/<diffid>`), in overlay form;
    /// there only if [`LayerOptions::unpack`] asked for it or the store had
    /// the layer already.
    pub unpacked: PathBuf,
    /// The step changed nothing: the layer has no entries. The blob and the
    /// (empty) unpacked layer exist anyway; the caller decides whether to
    /// use it or record the step as an `empty_layer` in the history.
    pub empty: bool,
}

/// Why a layer could not be made from an upper dir.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {} in the step's upper dir: {source}", path.display())]
    ReadUpper { path: PathBuf, source: io::Error },
    #[error("cannot read {} in the lower layers: {source}", path.display())]
    ReadLower { path: PathBuf, source: io::Error },
    #[error(
        "{}: overlayfs metacopy ({xattr}): only the metadata of this file was copied up, its data is still in a lower layer; berth mounts overlays without metacopy and cannot make a layer of this upper dir; redo the step on an overlay mounted with metacopy=off (the default)",
        path.display()
    )]
    Metacopy { path: PathBuf, xattr: String },
    #[error(
        "{}: overlayfs redirect ({xattr} = {target:?}): this directory was renamed and its contents merge from another path; berth mounts overlays without redirect_dir and cannot make a layer of this upper dir; redo the step on an overlay mounted with redirect_dir=off (the default)",
        path.display()
    )]
    Redirect { path: PathBuf, xattr: String, target: String },
    #[error(
        "{}: the name starts with \".wh.\", which OCI layers reserve for whiteouts, so no layer can hold it; rename it in the step",
        path.display()
    )]
    ReservedName { path: PathBuf },
    #[error("writing the layer of {}: {source}", upper.display())]
    Write { upper: PathBuf, source: TarWriteError },
    #[error("compressing the layer of {} into the store: {source}", upper.display())]
    Compress { upper: PathBuf, source: io::Error },
    #[error("unpacking the layer of {} into the store: {source}", upper.display())]
    Stage { upper: PathBuf, source: UnpackError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How [`layer_from_upper_with`] writes a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// Clamped to an epoch (a build step) or kept (a commit).
    pub mtimes: MtimePolicy,
    /// Gzip (the default) or zstd; `None` is not a layer blob berth writes.
    pub compression: Compression,
    /// Paths relative to the upper dir (no leading `/`) left out of the
    /// layer, with everything below them: the mount points a runtime made.
    pub exclude: HashSet<PathBuf>,
    /// Also unpack the layer into the store (`layers/<diffid>`, fsynced) in
    /// the same pass, as a build needs for its next step. Without it only
    /// the blob is written, and the store unpacks it from the blob (checking
    /// the diffID) when an image first runs with it: `berth commit` writes
    /// 50 MiB once instead of twice and fsyncs one file instead of every one.
    pub unpack: bool,
    /// The upper dir belongs to a `--userns=auto` container whose ids
    /// start at this host id: owners in `base..base+65536` are written as
    /// the container sees them (`id - base`).
    pub id_base: Option<u32>,
}

/// The destinations of the mounts of the runtime spec `spec`, relative to
/// the root: what a runtime put in an upper dir there is a mount point (an
/// empty `/etc/hosts` or `/proc` when the image had none, a volume's
/// directory), not a change, and goes into [`LayerOptions::exclude`]. One
/// rule for build steps and commits, as BuildKit removes the mount stubs a
/// `RUN` made and Docker leaves its init layer out of a commit. Where the
/// image below has the path, the mount covers it and the upper dir holds
/// nothing there: the lower's file stays as it is.
pub fn mount_points(spec: &oci_spec::runtime::Spec) -> HashSet<PathBuf> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    mounts
        .iter()
        .filter_map(|m| {
            let rel: PathBuf =
                m.destination().components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect();
            (!rel.as_os_str().is_empty()).then_some(rel)
        })
        .collect()
}

impl LayerOptions {
    /// Gzip, mtimes clamped to `epoch`, nothing excluded, unpacked: a build
    /// step's (the engine adds the build container's [`mount_points`]).
    pub fn build(epoch: u64) -> LayerOptions {
        LayerOptions {
            mtimes: MtimePolicy::Clamp(epoch),
            compression: Compression::Gzip,
            exclude: HashSet::new(),
            unpack: true,
            id_base: None,
        }
    }
}

/// Makes the layer of the upper dir `upper` of a step whose overlay had the
/// lower layers `lowers` (top first), with mtimes clamped to `epoch`: the
/// blob (gzip) and the unpacked layer go into `store`. See the module page.
pub fn layer_from_upper(
    store: &Store,
    upper: &Path,
    lowers: &[PathBuf],
    epoch: u64,
) -> Result<LayerOutput, LayerError> {
    layer_from_upper_with(store, upper, lowers, &LayerOptions::build(epoch))
}

/// [`layer_from_upper`] as `opts` says: the compression, the mtimes, and
/// paths to leave out.
pub fn layer_from_upper_with(
    store: &Store,
    upper: &Path,
    lowers: &[PathBuf],
    opts: &LayerOptions,
) -> Result<LayerOutput, LayerError> {
    let compression = match opts.compression {
        Compression::None => Compression::Gzip,
        other => other,
    };
    let upper = Upper::open(upper).map_err(|source| LayerError::ReadUpper { path: upper.to_owned(), source })?;
    let plan = plan::scan(&upper, lowers, &opts.exclude)?;
    let blob = store.blob_writer()?;
    let staging = if opts.unpack {
        let staging = store.staging_dir()?;
        set_layer_root_mode(staging.path())?;
        Some(staging)
    } else {
        None
    };
    let unpack = UnpackOptions { whiteouts: Whiteouts::Overlay, preserve_owners: crate::sys::euid() == 0 };
    let gone = AtomicBool::new(false);
    let (written, compressed, staged) = std::thread::scope(|s| {
        let (gz_tx, gz_rx) = pipe::channel();
        let mut outs = vec![gz_tx];
        let compressing = s.spawn(move || pipe::compress(gz_rx, blob, compression));
        let staging = staging.as_ref().map(|staging| {
            let (stage_tx, stage_rx) = pipe::channel();
            outs.push(stage_tx);
            let (path, unpack) = (staging.path(), &unpack);
            s.spawn(move || pipe::stage(stage_rx, path, unpack))
        });
        let written = write(&plan, &upper, opts, pipe::Tee::new(outs, &gone));
        let compressed = compressing.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let staged = staging.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (written, compressed, staged.transpose())
    });
    let compress_err = |source| LayerError::Compress { upper: upper.path().to_owned(), source };
    let stage_err = |source| LayerError::Stage { upper: upper.path().to_owned(), source };
    let diff_id = match written {
        Ok(diff_id) => diff_id,
        Err(write_err) if gone.load(Ordering::Relaxed) => {
            // A consumer stopped first; its error is the cause.
            compressed.map_err(compress_err)?;
            staged.map_err(stage_err)?;
            return Err(write_err);
        }
        Err(write_err) => return Err(write_err),
    };
    let blob = compressed.map_err(compress_err)?;
    staged.map_err(stage_err)?;
    let (digest, size) = blob.commit(None)?;
    if let Some(staging) = staging {
        // A layer already in the store is complete; the staged copy is not
        // needed, and flushing it would be wasted.
        if !store.has_layer(&diff_id) {
            pipe::flush_tree(staging.path())
                .map_err(|(path, source)| StoreError::io("fsync staged layer file", path)(source))?;
            store.commit_layer(staging, &diff_id)?;
        }
    }
    let media_type = compression.media_type().to_owned();
    Ok(LayerOutput {
        unpacked: store.layer_dir(&diff_id),
        record: LayerRecord { digest, diff_id, size, media_type },
        empty: plan.entries.is_empty(),
    })
}

/// Writes the plan's entries as an uncompressed tar into `out`; returns the
/// tar's digest (the diffID).
fn write(plan: &Plan, upper: &Upper, opts: &LayerOptions, out: pipe::Tee<'_>) -> Result<Digest, LayerError> {
    let fail = |source| LayerError::Write { upper: upper.path().to_owned(), source };
    let mut writer = LayerWriter::new(out, Compression::None, opts.mtimes);
    if let Some(base) = opts.id_base {
        writer.shift_ids(base);
    }
    for entry in &plan.entries {
        match entry {
            Entry::Add(rel) => writer.add_beneath(rel, &mut upper.source(rel)),
            Entry::Whiteout(rel) => writer.add_whiteout(rel),
            Entry::Opaque(dir) => writer.add_opaque(dir),
        }
        .map_err(fail)?;
    }
    let (_, digests) = writer.finish().map_err(fail)?;
    Ok(digests.diff_id)
}

/// The staging directory becomes the layer's root directory: 0755 whatever
/// the umask, as for unpacked pulled layers.
fn set_layer_root_mode(path: &Path) -> Result<(), LayerError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| StoreError::io("set the mode of staging directory", path)(e).into())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// The scan saw a directory; by the time its files are written it is a
    /// symlink to a directory outside the upper dir (a container racing the
    /// commit). The write fails; the outside file is never read.
    #[test]
    fn a_directory_swapped_for_a_symlink_after_the_scan_is_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let (upper_path, lower, host) = (t.path().join("upper"), t.path().join("lower"), t.path().join("host"));
        for d in [upper_path.join("escape/d"), lower.clone(), host.clone()] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(upper_path.join("escape/d/secret"), "container").unwrap();
        fs::write(host.join("secret"), "host").unwrap();
        let upper = Upper::open(&upper_path).unwrap();
        let plan = plan::scan(&upper, std::slice::from_ref(&lower), &HashSet::new()).unwrap();
        assert!(plan.entries.contains(&Entry::Add("escape/d/secret".into())), "{:?}", plan.entries);

        fs::rename(upper_path.join("escape/d"), upper_path.join("escape/real")).unwrap();
        std::os::unix::fs::symlink(&host, upper_path.join("escape/d")).unwrap();
        let gone = AtomicBool::new(false);
        let (tx, _rx) = pipe::channel();
        let err = write(
            &plan,
            &upper,
            &LayerOptions { mtimes: MtimePolicy::Keep, ..LayerOptions::build(0) },
            pipe::Tee::new(vec![tx], &gone),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("escape/d/secret") && text.contains("never follows links"), "{text}");

        // The upper dir itself a symlink: refused at once.
        let link = t.path().join("upper-link");
        std::os::unix::fs::symlink(&upper_path, &link).unwrap();
        assert!(Upper::open(&link).is_err());
    }
}
