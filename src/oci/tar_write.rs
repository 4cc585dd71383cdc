//! The reproducible layer writer: filesystem objects in, an OCI layer blob
//! out, with its diffID and digest computed in the same pass.
//!
//! Byte-identical input trees give byte-identical layers, on any machine:
//! - [`write_tree`] adds entries sorted by path, comparing component by
//!   component, each bytewise (the order of `tar --sort=name`: a directory's
//!   whole subtree follows it before its next sibling), with `./`-less
//!   relative names and a trailing `/` on directories (the root itself gets
//!   no entry);
//! - mtimes follow the writer's [`MtimePolicy`]: clamped to the epoch
//!   (`min(mtime, epoch)`; the epoch is `SOURCE_DATE_EPOCH` or 0, see
//!   [`source_date_epoch`]) for layers that must be reproducible, kept for
//!   commits, exports and imports; entries no source tree holds (whiteouts,
//!   opaque markers, the parents of a copy destination) get the epoch, or 0
//!   when mtimes are kept; there is no atime or ctime;
//! - owners are numeric uid/gid with empty uname/gname; the mode keeps the
//!   permission bits with setuid, setgid and sticky;
//! - a second path to an inode already added by the same writer becomes a
//!   hard link entry to the first path;
//! - the only xattr kept is `security.capability` (as a PAX
//!   `SCHILY.xattr.` record): the other namespaces hold host-specific state
//!   (SELinux labels, overlay internals) or user data we do not promise to
//!   carry; sockets are skipped, as tar cannot hold them;
//! - headers are ustar, with PAX records only for what ustar cannot hold;
//!   every header is made by `tar_header`, which refuses what no tar reader
//!   takes; the gzip header has no name and mtime 0.
//!
//! The stream is hashed twice as it is written: sha256 over the tar (the
//! diffID) and sha256 over the compressed bytes (the blob digest).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::digest::Digest;
use super::layer_sink::{Hashing, Sink};
use super::tar_header::EntryMeta;
use super::tar_name::{OPAQUE_MARKER, WHITEOUT_PREFIX};
pub use super::tar_source::Beneath;
use super::tar_source::{AtPath, Source};

/// The one xattr the writer carries (file capabilities).
const CAPABILITY_XATTR: &str = "security.capability";

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TarWriteError {
    #[error("cannot use {rel:?} as a layer entry name: {reason}")]
    BadName { rel: PathBuf, reason: &'static str },
    #[error("cannot read {path} for layer entry {rel:?}: {source}")]
    Read { rel: PathBuf, path: PathBuf, source: io::Error },
    #[error(
        "{path} changed while it was added to the layer as {rel:?}; layers must be written from a tree nothing else writes to"
    )]
    Changed { rel: PathBuf, path: PathBuf },
    #[error("cannot write layer entry {rel:?}: {source}")]
    Write { rel: PathBuf, source: io::Error },
    #[error("cannot finish the layer stream: {source}")]
    Finish { source: io::Error },
    #[error("cannot list {path} while writing it as a layer: {source}")]
    Walk { path: PathBuf, source: io::Error },
    #[error(
        "SOURCE_DATE_EPOCH is {value:?}; expected a whole number of seconds since 1970-01-01 UTC, at most {MAX_EPOCH} (9999-12-31T23:59:59Z), such as 1700000000"
    )]
    BadEpoch { value: String },
}

/// The latest epoch [`source_date_epoch`] takes: 9999-12-31T23:59:59Z, the
/// last second an image config's RFC 3339 `created` can hold.
pub const MAX_EPOCH: u64 = 253_402_300_799;

/// How a layer's entries get their mtimes. There is no "no mtime" value:
/// every entry, also one no source tree holds, gets a time every tar
/// reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtimePolicy {
    /// Reproducible layers (builds, bases): each mtime is `min(mtime,
    /// epoch)`, in seconds since 1970-01-01 UTC; whiteouts, opaque markers
    /// and directories no source tree holds get the epoch.
    Clamp(u64),
    /// Each object keeps its own mtime (commits, snapshots, exports, imports
    /// of a fixed tar); whiteouts, opaque markers and directories no source
    /// tree holds get 0 (1970-01-01), as containerd 2 writes whiteouts, so
    /// the same changes give the same layer (Docker stamps whiteouts with
    /// the time of writing instead).
    Keep,
}

impl MtimePolicy {
    /// The entry mtime of an object whose mtime is `mtime` (seconds, as
    /// `stat` gives it); times before 1970 become 0.
    pub fn of(self, mtime: i64) -> u64 {
        let mtime = u64::try_from(mtime).unwrap_or(0);
        match self {
            MtimePolicy::Clamp(epoch) => mtime.min(epoch),
            MtimePolicy::Keep => mtime,
        }
    }

    /// The mtime of an entry no source tree holds (a whiteout, an opaque
    /// marker, an implied parent directory).
    pub fn synthetic(self) -> u64 {
        match self {
            MtimePolicy::Clamp(epoch) => epoch,
            MtimePolicy::Keep => 0,
        }
    }
}

/// How the layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    /// `gzip` or `zstd` (as `--compression` takes them), or `none`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" => Ok(Compression::None),
            other => Err(format!("unknown compression {other:?}; expected gzip (the default), zstd or none")),
        }
    }
}

/// What a finished layer is known by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as written (compressed).
    pub digest: Digest,
    /// Length of the blob as written, in bytes.
    pub size: u64,
    pub media_type: &'static str,
}

/// What [`LayerWriter::add_as`] replaces in an entry's metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `(uid, gid)` instead of the source's.
    pub owner: Option<(u32, u32)>,
    /// Permission bits instead of the source's.
    pub mode: Option<u32>,
}

/// Writes one layer: add entries in the order they should appear, then
/// [`finish`](LayerWriter::finish). Entries are written as they are added;
/// sorting is the caller's job ([`write_tree`] does it).
pub struct LayerWriter<W: Write> {
    builder: tar::Builder<Hashing<Sink<W>>>,
    compression: Compression,
    /// Whether the stream is hashed (not for [`LayerWriter::plain_tar`]).
    hashed: bool,
    mtimes: MtimePolicy,
    /// `(dev, ino)` of multiply-linked objects → the first name written.
    inodes: HashMap<(u64, u64), Vec<u8>>,
    /// Owners in `base..base+65536` are written as `id - base` (a tree of
    /// a container with a user namespace of its own, see [`Self::shift_ids`]).
    id_base: Option<u32>,
}

impl<W: Write> LayerWriter<W> {
    /// A writer into `out`, giving entries mtimes as `mtimes` says.
    ///
    /// # Panics
    /// If the zstd encoder cannot be set up (only when it cannot allocate).
    pub fn new(out: W, compression: Compression, mtimes: MtimePolicy) -> Self {
        // Uncompressed, the blob is the tar: one hash gives both digests.
        let hash_blob = compression != Compression::None;
        let sink = Sink::new(out, compression, hash_blob).expect("a zstd encoder with valid parameters");
        let builder = tar::Builder::new(Hashing::new(sink));
        LayerWriter { builder, compression, hashed: true, mtimes, inodes: HashMap::new(), id_base: None }
    }

    /// A writer of a plain tar that nobody needs digests of (a flat
    /// filesystem tar for `berth export`): nothing is hashed; end it with
    /// [`LayerWriter::finish_plain`].
    pub fn plain_tar(out: W, mtimes: MtimePolicy) -> Self {
        let sink = Sink::new(out, Compression::None, false).expect("a plain sink cannot fail");
        let builder = tar::Builder::new(Hashing::off(sink));
        LayerWriter {
            builder,
            compression: Compression::None,
            hashed: false,
            mtimes,
            inodes: HashMap::new(),
            id_base: None,
        }
    }

    /// Writes host owners `base..base+65536` as `0..65536`: the files of a
    /// container whose user namespace maps its ids there (`--userns=auto`),
    /// as the container (and the image) mean them. Other owners are kept.
    pub fn shift_ids(&mut self, base: u32) {
        self.id_base = Some(base);
    }

    /// Adds the filesystem object at `source` (never following a symlink
    /// there) as the entry `rel`: a file, directory, symlink, fifo or device,
    /// or a hard link if its inode was already added. Sockets are skipped.
    pub fn add(&mut self, rel: &Path, source: &Path) -> Result<(), TarWriteError> {
        self.add_as(rel, source, &Overrides::default())
    }

    /// [`LayerWriter::add`] with the owner and permission bits replaced as
    /// `overrides` says (a copy step's `owner` and `mode`); a symlink keeps
    /// its own mode.
    pub fn add_as(&mut self, rel: &Path, source: &Path, overrides: &Overrides) -> Result<(), TarWriteError> {
        self.add_from(rel, &mut AtPath(source), overrides)
    }

    /// Adds the object `source` as the entry `rel`, as [`LayerWriter::add`]
    /// does, but reads it below a directory fd without following any
    /// symlink on the way (see `tar_source`): for trees someone else may be
    /// changing, such as a container's upper dir.
    pub fn add_beneath(&mut self, rel: &Path, source: &mut Beneath<'_>) -> Result<(), TarWriteError> {
        self.add_from(rel, source, &Overrides::default())
    }

    fn add_from(&mut self, rel: &Path, source: &mut impl Source, overrides: &Overrides) -> Result<(), TarWriteError> {
        let mut name = entry_name(rel)?;
        let meta = source.metadata().map_err(|e| read_err_at(rel, &source.shown(), e))?;
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let mtime = self.mtimes.of(meta.mtime());
        let mode = match overrides.mode {
            Some(perm) if !ft.is_symlink() => (meta.mode() & !0o7777) | (perm & 0o7777),
            _ => meta.mode(),
        };
        let mut entry = EntryMeta::new(Vec::new(), EntryType::Regular, mode, mtime);
        let shift = |id: u32| match self.id_base {
            Some(base) if (base..base.saturating_add(65536)).contains(&id) => id - base,
            _ => id,
        };
        let (uid, gid) = overrides.owner.unwrap_or((shift(meta.uid()), shift(meta.gid())));
        entry.uid = uid;
        entry.gid = gid;
        if ft.is_dir() {
            name.push(b'/');
            entry.name = name;
            entry.kind = EntryType::Directory;
            return self.append(rel, &entry, io::empty());
        }
        if meta.nlink() > 1 {
            if let Some(first) = self.inodes.get(&(meta.dev(), meta.ino())) {
                entry.name = name;
                entry.kind = EntryType::Link;
                entry.link = first.clone();
                return self.append(rel, &entry, io::empty());
            }
            self.inodes.insert((meta.dev(), meta.ino()), name.clone());
        }
        entry.name = name;
        if ft.is_file() {
            let file = open_unchanged(rel, source, &meta)?;
            entry.size = meta.len();
            let cap = crate::sys::beneath::get_xattr(file.as_fd(), CAPABILITY_XATTR)
                .map_err(|e| read_err_at(rel, &source.shown(), e))?;
            if let Some(cap) = cap {
                entry.xattrs.push((CAPABILITY_XATTR.to_owned(), cap));
            }
            // Large reads: io::copy reads through a BufReader's own buffer.
            let buffer = usize::try_from(meta.len()).unwrap_or(usize::MAX).clamp(4096, 256 << 10);
            let file = io::BufReader::with_capacity(buffer, file);
            return self.append(rel, &entry, Exact { inner: file, left: meta.len() });
        }
        if ft.is_symlink() {
            entry.kind = EntryType::Symlink;
            entry.link = source.read_link().map_err(|e| read_err_at(rel, &source.shown(), e))?.into_vec();
        } else if ft.is_fifo() {
            entry.kind = EntryType::Fifo;
        } else {
            entry.kind = if ft.is_char_device() { EntryType::Char } else { EntryType::Block };
            let rdev = meta.rdev();
            let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
            entry.device = (major as u32, minor as u32);
        }
        self.append(rel, &entry, io::empty())
    }

    /// Adds a directory entry that exists in no source tree (the parents of
    /// a copy destination): `mode`, owner 0:0, the policy's
    /// [synthetic](MtimePolicy::synthetic) mtime.
    pub fn add_dir(&mut self, rel: &Path, mode: u32) -> Result<(), TarWriteError> {
        let mut name = entry_name(rel)?;
        name.push(b'/');
        let entry = EntryMeta::new(name, EntryType::Directory, mode & 0o7777, self.mtimes.synthetic());
        self.append(rel, &entry, io::empty())
    }

    /// Adds the OCI whiteout `dir/.wh.name` for `rel` = `dir/name`: the
    /// layer deletes `rel` from the layers below it.
    pub fn add_whiteout(&mut self, rel: &Path) -> Result<(), TarWriteError> {
        let name = entry_name(rel)?;
        let split = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        let mut marker = name[..split].to_vec();
        marker.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
        marker.extend_from_slice(&name[split..]);
        self.append_marker(rel, marker)
    }

    /// Adds the OCI opaque marker `dir/.wh..wh..opq`: the layer hides
    /// everything the layers below have in `dir_rel` (empty: the root).
    pub fn add_opaque(&mut self, dir_rel: &Path) -> Result<(), TarWriteError> {
        let mut marker = if dir_rel.as_os_str().is_empty() { Vec::new() } else { entry_name(dir_rel)? };
        if !marker.is_empty() {
            marker.push(b'/');
        }
        marker.extend_from_slice(OPAQUE_MARKER.as_bytes());
        self.append_marker(dir_rel, marker)
    }

    /// Writes the end of the archive, flushes the compressor and `out`, and
    /// returns `out` with the layer's digests.
    pub fn finish(self) -> Result<(W, LayerDigests), TarWriteError> {
        let finish = |source| TarWriteError::Finish { source };
        if !self.hashed {
            return Err(finish(io::Error::other("a plain_tar writer computes no digests; end it with finish_plain")));
        }
        let media_type = self.compression.media_type();
        let tar = self.builder.into_inner().map_err(finish)?;
        let (sink, diff_id, _) = tar.into_parts();
        let (mut out, digest, size) = sink.finish().map_err(finish)?.into_parts();
        out.flush().map_err(finish)?;
        let Some(diff_id) = diff_id else { unreachable!("a hashed writer hashes the tar") };
        let digest = digest.unwrap_or_else(|| diff_id.clone());
        Ok((out, LayerDigests { diff_id, digest, size, media_type }))
    }

    /// Writes the end of the archive and flushes `out`; returns it with the
    /// number of bytes written. For any writer; computes no digest.
    pub fn finish_plain(self) -> Result<(W, u64), TarWriteError> {
        let finish = |source| TarWriteError::Finish { source };
        let tar = self.builder.into_inner().map_err(finish)?;
        let (sink, _, _) = tar.into_parts();
        let (mut out, _, size) = sink.finish().map_err(finish)?.into_parts();
        out.flush().map_err(finish)?;
        Ok((out, size))
    }

    /// A whiteout or opaque marker: an empty regular file, mode 0644, owned
    /// by 0:0, with the policy's [synthetic](MtimePolicy::synthetic) mtime.
    fn append_marker(&mut self, rel: &Path, name: Vec<u8>) -> Result<(), TarWriteError> {
        let entry = EntryMeta::new(name, EntryType::Regular, 0o644, self.mtimes.synthetic());
        self.append(rel, &entry, io::empty())
    }

    fn append(&mut self, rel: &Path, entry: &EntryMeta, data: impl Read) -> Result<(), TarWriteError> {
        entry.append(&mut self.builder, data).map_err(|source| TarWriteError::Write { rel: rel.to_owned(), source })
    }
}

fn read_err_at(rel: &Path, path: &Path, source: io::Error) -> TarWriteError {
    TarWriteError::Read { rel: rel.to_owned(), path: path.to_owned(), source }
}

/// The entry name for `rel`: its plain components joined by `/`.
fn entry_name(rel: &Path) -> Result<Vec<u8>, TarWriteError> {
    let bad = |reason| TarWriteError::BadName { rel: rel.to_owned(), reason };
    let mut name = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => {
                if !name.is_empty() {
                    name.push(b'/');
                }
                name.extend_from_slice(part.as_bytes());
            }
            _ => {
                return Err(bad("expected a relative path of plain components, without `/`, `.` or `..` at the front"));
            }
        }
    }
    if name.is_empty() {
        return Err(bad("the name is empty; the layer root has no entry of its own"));
    }
    Ok(name)
}

/// Opens the regular file `source` without following symlinks or blocking,
/// and checks it is still the object `meta` describes.
fn open_unchanged(rel: &Path, source: &mut impl Source, meta: &fs::Metadata) -> Result<File, TarWriteError> {
    let file = source.open_file().map_err(|e| read_err_at(rel, &source.shown(), e))?;
    let now = file.metadata().map_err(|e| read_err_at(rel, &source.shown(), e))?;
    if (now.dev(), now.ino(), now.len()) != (meta.dev(), meta.ino(), meta.len()) {
        return Err(TarWriteError::Changed { rel: rel.to_owned(), path: source.shown() });
    }
    Ok(file)
}

/// Reads exactly `left` bytes from `inner`: stops there if the file grew and
/// fails if it shrank, so the header's size is always right.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being read"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes the directory `root` as one layer, mtimes as `mtimes` says (see
/// the module page), and returns `out` with the layer's digests.
pub fn write_tree<W: Write>(
    root: &Path,
    out: W,
    compression: Compression,
    mtimes: MtimePolicy,
) -> Result<(W, LayerDigests), TarWriteError> {
    let mut paths = Vec::new();
    collect(root, Path::new(""), &mut paths)?;
    // `Path`'s order compares component by component, each bytewise.
    paths.sort();
    let mut writer = LayerWriter::new(out, compression, mtimes);
    for rel in &paths {
        writer.add(rel, &root.join(rel))?;
    }
    writer.finish()
}

/// Appends every path below `root.join(rel)` to `paths`, relative to `root`,
/// descending into directories but not into symlinks.
fn collect(root: &Path, rel: &Path, paths: &mut Vec<PathBuf>) -> Result<(), TarWriteError> {
    let dir = root.join(rel);
    let walk = |source| TarWriteError::Walk { path: dir.clone(), source };
    for entry in fs::read_dir(&dir).map_err(walk)? {
        let entry = entry.map_err(walk)?;
        let child = rel.join(entry.file_name());
        let is_dir = entry.file_type().map_err(walk)?.is_dir();
        paths.push(child.clone());
        if is_dir {
            collect(root, &child, paths)?;
        }
    }
    Ok(())
}

/// The epoch to clamp mtimes to: `SOURCE_DATE_EPOCH` if set, else 0. Read
/// it once at the edge (the CLI) and pass it down; a malformed value, or
/// one past [`MAX_EPOCH`], is an error, as reproducible-builds.org asks.
pub fn source_date_epoch() -> Result<u64, TarWriteError> {
    parse_epoch(std::env::var_os("SOURCE_DATE_EPOCH").as_deref())
}

/// Parses a `SOURCE_DATE_EPOCH` value; `None` (unset) is 0.
fn parse_epoch(value: Option<&std::ffi::OsStr>) -> Result<u64, TarWriteError> {
    let Some(value) = value else { return Ok(0) };
    let text = value.to_string_lossy();
    match text.trim().parse() {
        Ok(epoch) if epoch <= MAX_EPOCH => Ok(epoch),
        _ => Err(TarWriteError::BadEpoch { value: text.into_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn source_date_epoch_parses_or_fails_loudly() {
        assert_eq!(parse_epoch(None).unwrap(), 0);
        assert_eq!(parse_epoch(Some(OsStr::new("1700000000"))).unwrap(), 1_700_000_000);
        assert_eq!(parse_epoch(Some(OsStr::new("253402300799"))).unwrap(), MAX_EPOCH);
        for bad in ["", "yesterday", "-5", "1.5", "253402300800", "18446744073709551615"] {
            let err = parse_epoch(Some(OsStr::new(bad))).unwrap_err();
            assert!(matches!(err, TarWriteError::BadEpoch { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn every_mtime_policy_gives_every_entry_a_time() {
        assert_eq!(MtimePolicy::Clamp(100).of(50), 50);
        assert_eq!(MtimePolicy::Clamp(100).of(i64::MAX), 100);
        assert_eq!(MtimePolicy::Keep.of(i64::MAX), i64::MAX as u64);
        assert_eq!(MtimePolicy::Keep.of(-5), 0, "before 1970");
        assert_eq!(MtimePolicy::Clamp(100).synthetic(), 100);
        assert_eq!(MtimePolicy::Keep.synthetic(), 0);
    }

    #[test]
    fn entry_names_must_be_plain_relative_paths() {
        assert_eq!(entry_name(Path::new("a/b/c")).unwrap(), b"a/b/c");
        assert_eq!(entry_name(Path::new("a//b/")).unwrap(), b"a/b");
        for bad in ["", "/a", "../a", "./a", "a/../b"] {
            assert!(matches!(entry_name(Path::new(bad)), Err(TarWriteError::BadName { .. })), "{bad}");
        }
    }
}
