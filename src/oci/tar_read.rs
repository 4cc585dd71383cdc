//! The safe tar reader: unpacks a layer (or any tar) into a root directory
//! without ever writing outside it.
//!
//! Safety comes from the kernel, not from string checks: the root is opened
//! once as a directory fd, and every entry's *parent* directory is resolved
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symlink on
//! the way (`-> /`, `-> ../..`, `-> /etc`) resolves inside the root, as it
//! would inside the container. The final component is then created relative
//! to that fd with `*at` calls that never follow it; whatever already has
//! that name is removed first (unless a directory is re-declared as a
//! directory) and never written through. Modes, owners and times are set
//! through the new file's fd or with `AT_SYMLINK_NOFOLLOW`.
//!
//! Names (see `tar_name`) are *neutralised* when harmless — a leading `/`
//! or `./` is dropped, so `/etc/passwd` lands at `root/etc/passwd` — and
//! *rejected* with an error naming the entry when they have no safe
//! meaning: a `..` component, a NUL byte, a non-directory that would replace
//! the root itself (`.`, `/.`), a whiteout whose target is not one plain
//! name, a hard link whose target is not already inside the root.
//!
//! Missing parent directories are created with mode 0755 (less the umask).
//! Directory modes and mtimes are applied at the end, after their contents
//! are written, so the result matches the archive.
//!
//! PAX records override the header as GNU tar and Go read them: `path`,
//! `linkpath` and `size` (applied by the `tar` crate), `uid`, `gid` and
//! `mtime` (whole seconds; a malformed value is an error naming the entry).
//! Only the `security.capability` xattr is applied from PAX
//! `SCHILY.xattr.*` records; others are ignored, so an archive can never set
//! `trusted.overlay.*` or security labels.
//!
//! The work per entry type is in `tar_unpack`, the in-root resolution in
//! `tar_root`, the name rules in `tar_name`.
//!
//! The reader is meant to write into a fresh staging directory: on error it
//! stops and returns the error, leaving a partial tree behind, and the
//! caller removes the staging directory.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::tar_root::Root;
use super::tar_unpack::Unpacker;

/// What to do with OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete what they name: for flattening layers onto one tree. An opaque
    /// marker deletes what the directory held before this archive (entries
    /// of this archive, and the directories they needed, stay). A whiteout
    /// for something absent is a no-op. AUFS `.wh..wh.*` files are skipped.
    Apply,
    /// Keep them as overlayfs does: a 0:0 character device for `.wh.NAME`,
    /// the xattr `trusted.overlay.opaque=y` for an opaque directory. For
    /// unpacked layers used as overlay lower directories.
    Overlay,
}

/// How to unpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackOptions {
    pub whiteouts: Whiteouts,
    /// Give entries the archive's numeric uid/gid (needs root); otherwise
    /// they belong to the unpacking user. Modes, setuid/setgid included,
    /// are applied either way.
    pub preserve_owners: bool,
}

/// What an unpack did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries handled, whiteouts included.
    pub entries: u64,
    /// Bytes of regular file contents written.
    pub bytes: u64,
}

/// Why an unpack stopped. The root may hold a partial tree: remove it.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot open unpack root {root}: {source}; expected an existing directory")]
    OpenRoot { root: PathBuf, source: io::Error },
    #[error("cannot read the tar stream after {entries} entries: {source}")]
    Read { entries: u64, source: io::Error },
    #[error("tar entry {entry:?} {reason}")]
    BadName { entry: String, reason: &'static str },
    #[error("tar entry {entry:?} {reason}")]
    BadWhiteout { entry: String, reason: &'static str },
    #[error("tar entry {entry:?} is a hard link to {target:?}, which {reason}")]
    BadLinkTarget { entry: String, target: String, reason: &'static str },
    #[error(
        "tar entry {entry:?} has type {kind:?}, which berth cannot unpack; expected a file, directory, link, fifo or device"
    )]
    Unsupported { entry: String, kind: EntryType },
    /// A field of the entry's header or its PAX records could not be read.
    #[error("tar entry {entry:?}: cannot {op}: {source}")]
    Header { entry: String, op: &'static str, source: io::Error },
    /// Creating, writing or changing the entry below the root failed.
    #[error("tar entry {entry:?}: cannot {op}: {source}")]
    Io { entry: String, op: &'static str, source: io::Error },
    #[error("cannot set mode and mtime of directory {dir:?} after unpacking: {source}")]
    FinishDir { dir: PathBuf, source: io::Error },
}

impl UnpackError {
    /// The I/O error of writing below the root (creating, writing or
    /// changing an entry there), if that is what stopped the unpack: the
    /// destination's failure, not the tar's. `None` for errors reading the
    /// tar and for what the tar holds.
    pub fn write_error(&self) -> Option<&io::Error> {
        match self {
            UnpackError::OpenRoot { source, .. } | UnpackError::Io { source, .. } => Some(source),
            UnpackError::FinishDir { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Unpacks the uncompressed tar `reader` into the existing directory `root`
/// (see the module page). Reads the stream to its end, so a hashing reader
/// sees every byte.
pub fn unpack<R: Read>(reader: R, root: &Path, opts: &UnpackOptions) -> Result<UnpackStats, UnpackError> {
    let root = Root::open(root).map_err(|source| UnpackError::OpenRoot { root: root.to_owned(), source })?;
    let mut unpacker = Unpacker::new(root, *opts);
    let mut archive = tar::Archive::new(reader);
    let read_err = |entries, source| UnpackError::Read { entries, source };
    for entry in archive.entries().map_err(|e| read_err(0, e))? {
        let mut entry = entry.map_err(|e| read_err(unpacker.entries(), e))?;
        unpacker.entry(&mut entry)?;
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| read_err(unpacker.entries(), e))?;
    unpacker.finish()
}

/// Like [`unpack`], but first looks at the stream's first bytes and
/// decompresses gzip (`1f 8b`) or zstd (`28 b5 2f fd`); anything else is
/// read as a plain tar.
pub fn unpack_compressed<R: Read>(
    mut reader: R,
    root: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let mut magic = [0u8; 4];
    let mut seen = 0;
    while seen < magic.len() {
        match reader.read(&mut magic[seen..]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(UnpackError::Read { entries: 0, source }),
        }
    }
    let stream = io::Cursor::new(magic[..seen].to_vec()).chain(reader);
    if magic[..seen].starts_with(&[0x1f, 0x8b]) {
        unpack(flate2::read::MultiGzDecoder::new(stream), root, opts)
    } else if magic[..seen] == [0x28, 0xb5, 0x2f, 0xfd] {
        let z = zstd::stream::read::Decoder::new(stream).map_err(|source| UnpackError::Read { entries: 0, source })?;
        unpack(z, root, opts)
    } else {
        unpack(stream, root, opts)
    }
}

/// Maps an I/O error reading field `op` of entry `shown`'s header.
pub(super) fn header_err(shown: &str, op: &'static str) -> impl FnOnce(io::Error) -> UnpackError {
    let entry = shown.to_owned();
    move |source| UnpackError::Header { entry, op, source }
}

/// Maps an I/O error on entry `shown` while doing `op` below the root.
pub(super) fn io_err(shown: &str, op: &'static str) -> impl FnOnce(io::Error) -> UnpackError {
    let entry = shown.to_owned();
    move |source| {
        // An owner that berth's user namespace has no id for (berth without
        // root, and the user has no subordinate range, or too small a one).
        let unmapped = op.contains("owner")
            && source.raw_os_error() == Some(libc::EINVAL)
            && crate::sys::userns::in_user_namespace();
        let source = if unmapped {
            io::Error::new(
                source.kind(),
                format!(
                    "{source}: the image's owner has no id in berth's user namespace; without root, ids other \
                     than 0 come from your subordinate range: ask for one with `sudo usermod --add-subuids \
                     100000-165535 --add-subgids 100000-165535 $USER` (see /etc/subuid)"
                ),
            )
        } else {
            source
        };
        UnpackError::Io { entry, op, source }
    }
}
