//! Creating each kind of tar entry below an unpack root: the per-entry work
//! of the safe tar reader (`tar_read` has the rules and the public API).
//!
//! Every entry's parent comes from [`Root`] (resolved inside the root); the
//! entry itself is created relative to that parent fd, after whatever had
//! its name is removed, and its metadata is set through its own fd or with
//! `AT_SYMLINK_NOFOLLOW`. Owner before mode (chown clears setuid/setgid and
//! capabilities), capabilities after both, mtime last; directory modes and
//! mtimes wait until [`Unpacker::finish`].

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::tar_name::{CleanName, NameKind, WhiteoutProblem, classify};
use super::tar_read::{UnpackError, UnpackOptions, UnpackStats, Whiteouts, header_err, io_err};
use super::tar_root::{Root, clear_slot};
use crate::sys::fs::{self as sysfs, FileKind, NodeKind};

/// The xattr whose PAX record the reader applies (file capabilities); other
/// `SCHILY.xattr.*` records are ignored, so an archive can never set
/// `trusted.overlay.*` or security labels.
const CAPABILITY_XATTR: &str = "security.capability";
/// What failed when an entry's parent could not be found or made.
const PARENT_OP: &str = "open or create its parent directory inside the root";
/// What failed when the old occupant of an entry's name could not go.
const REPLACE_OP: &str = "remove the existing entry it replaces";
/// The xattr overlayfs reads to mark a directory opaque: `trusted.` as
/// root, `user.` in a user namespace (rootless, mounted with `userxattr`).
fn overlay_opaque_xattr() -> String {
    format!("{}opaque", crate::sys::userns::overlay_xattr_prefix())
}

/// A directory whose mode and mtime are applied at the end.
struct PendingDir {
    path: PathBuf,
    id: (u64, u64),
    mode: u32,
    mtime: u64,
}

/// The numbers an entry's header carries.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

/// The state of one unpack.
pub struct Unpacker {
    root: Root,
    opts: UnpackOptions,
    dirs: Vec<PendingDir>,
    /// `(dev, ino)` → index in `dirs`, so a re-declared directory's last
    /// header wins.
    dir_index: HashMap<(u64, u64), usize>,
    /// Names written by this archive, which an opaque marker must keep
    /// (`Apply` mode only).
    written: HashSet<PathBuf>,
    stats: UnpackStats,
    /// The buffer file contents are copied through.
    buf: Vec<u8>,
}

impl Unpacker {
    /// An unpack into `root`.
    pub fn new(root: Root, opts: UnpackOptions) -> Self {
        Unpacker {
            root,
            opts,
            dirs: Vec::new(),
            dir_index: HashMap::new(),
            written: HashSet::new(),
            stats: UnpackStats::default(),
            buf: vec![0u8; 64 << 10],
        }
    }

    /// Entries handled so far.
    pub fn entries(&self) -> u64 {
        self.stats.entries
    }

    /// Applies the queued directory modes and mtimes and returns the totals.
    pub fn finish(self) -> Result<UnpackStats, UnpackError> {
        self.finish_dirs()?;
        Ok(self.stats)
    }

    /// Unpacks one entry.
    pub fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let name =
            CleanName::parse(&raw).map_err(|p| UnpackError::BadName { entry: shown.clone(), reason: p.reason() })?;
        let bad_whiteout = |p: WhiteoutProblem| UnpackError::BadWhiteout { entry: shown.clone(), reason: p.reason() };
        match classify(&name).map_err(bad_whiteout)? {
            NameKind::Plain => {}
            NameKind::Meta => return Ok(()),
            NameKind::Whiteout(target) => {
                let meta = header_meta(&shown, entry)?;
                return self.whiteout(&shown, &name, target, &meta);
            }
            NameKind::Opaque => return self.opaque(&shown, &name.parent()),
        }
        let meta = header_meta(&shown, entry)?;
        let Some(file_name) = name.file_name() else {
            if kind != EntryType::Directory {
                let reason = "would replace the root directory itself; only a directory entry may name the root";
                return Err(UnpackError::BadName { entry: shown, reason });
            }
            let root = self.root.open_dir(Path::new("")).map_err(io_err(&shown, "open the root"))?;
            return self.directory_metadata(&shown, PathBuf::new(), root, &meta);
        };
        let parent = self.root.make_dir(&name.parent()).map_err(io_err(&shown, PARENT_OP))?;
        let parent = parent.as_fd();
        match kind {
            EntryType::Directory => self.directory(&shown, &name, parent, file_name, &meta)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&shown, entry, parent, file_name, &meta)?
            }
            EntryType::Symlink => self.symlink(&shown, entry, parent, file_name, &meta)?,
            EntryType::Link => self.hardlink(&shown, entry, parent, file_name)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(&shown, entry, parent, file_name, &meta)?
            }
            other => return Err(UnpackError::Unsupported { entry: shown, kind: other }),
        }
        if self.opts.whiteouts == Whiteouts::Apply {
            // With its parents, which may have been created implicitly.
            for path in name.to_path().ancestors().take_while(|p| !p.as_os_str().is_empty()) {
                if !self.written.insert(path.to_owned()) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn directory(
        &mut self,
        shown: &str,
        name: &CleanName<'_>,
        parent: BorrowedFd<'_>,
        file_name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        if !clear_slot(parent, file_name, true).map_err(io_err(shown, REPLACE_OP))? {
            sysfs::mkdir_at(parent, file_name, 0o700).map_err(io_err(shown, "create the directory"))?;
        }
        let dir = sysfs::open_dir_at(parent, file_name).map_err(io_err(shown, "open the directory"))?;
        self.directory_metadata(shown, name.to_path(), dir, meta)
    }

    /// Sets the owner of directory `dir` now and queues its mode and mtime.
    fn directory_metadata(&mut self, shown: &str, path: PathBuf, dir: OwnedFd, meta: &Meta) -> Result<(), UnpackError> {
        if self.opts.preserve_owners {
            sysfs::chown_fd(dir.as_fd(), meta.uid, meta.gid).map_err(io_err(shown, "set the directory's owner"))?;
        }
        let st = sysfs::stat_fd(dir.as_fd()).map_err(io_err(shown, "stat the directory"))?;
        let pending = PendingDir { path, id: (st.dev, st.ino), mode: meta.mode, mtime: meta.mtime };
        match self.dir_index.get(&pending.id) {
            Some(&i) => self.dirs[i] = pending,
            None => {
                self.dir_index.insert(pending.id, self.dirs.len());
                self.dirs.push(pending);
            }
        }
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        shown: &str,
        entry: &mut tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        file_name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let capability = capability_xattr(shown, entry)?;
        clear_slot(parent, file_name, false).map_err(io_err(shown, REPLACE_OP))?;
        let mut file = sysfs::create_file_at(parent, file_name, 0o600).map_err(io_err(shown, "create the file"))?;
        let done = self.stats.entries - 1;
        self.stats.bytes += copy_contents(shown, entry, &mut file, &mut self.buf, done)?;
        let fd = file.as_fd();
        if self.opts.preserve_owners {
            sysfs::chown_fd(fd, meta.uid, meta.gid).map_err(io_err(shown, "set the file's owner"))?;
        }
        // After chown, which clears setuid/setgid and capabilities.
        sysfs::chmod_fd(fd, meta.mode).map_err(io_err(shown, "set the file's mode"))?;
        if let Some(value) = capability {
            sysfs::set_xattr_fd(fd, CAPABILITY_XATTR, &value).map_err(io_err(shown, "set security.capability"))?;
        }
        sysfs::set_mtime_fd(fd, meta.mtime).map_err(io_err(shown, "set the file's mtime"))
    }

    fn symlink<R: Read>(
        &mut self,
        shown: &str,
        entry: &tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        file_name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
        if target.is_empty() || target.contains(&0) {
            let reason = "is a symlink with an empty target or a NUL in it; expected a target path";
            return Err(UnpackError::BadName { entry: shown.to_owned(), reason });
        }
        clear_slot(parent, file_name, false).map_err(io_err(shown, REPLACE_OP))?;
        sysfs::symlink_at(OsStr::from_bytes(&target), parent, file_name)
            .map_err(io_err(shown, "create the symlink"))?;
        if self.opts.preserve_owners {
            sysfs::chown_at_nofollow(parent, file_name, meta.uid, meta.gid)
                .map_err(io_err(shown, "set the symlink's owner"))?;
        }
        sysfs::set_mtime_at_nofollow(parent, file_name, meta.mtime).map_err(io_err(shown, "set the symlink's mtime"))
    }

    fn hardlink<R: Read>(
        &mut self,
        shown: &str,
        entry: &tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        file_name: &OsStr,
    ) -> Result<(), UnpackError> {
        let raw = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
        let bad = |reason| UnpackError::BadLinkTarget {
            entry: shown.to_owned(),
            target: String::from_utf8_lossy(&raw).into_owned(),
            reason,
        };
        let target = CleanName::parse(&raw).map_err(|p| bad(p.reason()))?;
        let Some(target_name) = target.file_name() else {
            return Err(bad("is the root directory; expected a file inside the root"));
        };
        let missing = "does not exist inside the unpack root; a hard link must follow the entry it links to";
        let target_dir = match self.root.existing_dir(&target.parent()) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Err(bad(missing)),
            Err(e) => return Err(io_err(shown, "open the link target's directory inside the root")(e)),
        };
        let target_stat =
            match sysfs::stat_at(target_dir.as_fd(), target_name).map_err(io_err(shown, "stat the link target"))? {
                None => return Err(bad(missing)),
                Some(st) if st.kind == FileKind::Dir => {
                    return Err(bad("is a directory; hard links to directories are not allowed"));
                }
                Some(st) => st,
            };
        let existing = sysfs::stat_at(parent, file_name).map_err(io_err(shown, "stat the existing entry"))?;
        if existing.is_some_and(|st| (st.dev, st.ino) == (target_stat.dev, target_stat.ino)) {
            return Ok(());
        }
        clear_slot(parent, file_name, false).map_err(io_err(shown, REPLACE_OP))?;
        sysfs::hardlink_at(target_dir.as_fd(), target_name, parent, file_name)
            .map_err(io_err(shown, "create the hard link"))
    }

    fn node<R: Read>(
        &mut self,
        shown: &str,
        entry: &tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        file_name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let header = entry.header();
        let kind = match header.entry_type() {
            EntryType::Char => NodeKind::CharDevice,
            EntryType::Block => NodeKind::BlockDevice,
            _ => NodeKind::Fifo,
        };
        let (major, minor) = if kind == NodeKind::Fifo {
            (0, 0)
        } else {
            let number = |n: io::Result<Option<u32>>| n.map(|n| u64::from(n.unwrap_or(0)));
            let major = number(header.device_major()).map_err(header_err(shown, "read the device major number"))?;
            let minor = number(header.device_minor()).map_err(header_err(shown, "read the device minor number"))?;
            (major, minor)
        };
        clear_slot(parent, file_name, false).map_err(io_err(shown, REPLACE_OP))?;
        sysfs::mknod_at(parent, file_name, kind, 0o600, major, minor)
            .map_err(io_err(shown, "create the device node"))?;
        self.node_metadata(shown, parent, file_name, meta)
    }

    fn node_metadata(
        &self,
        shown: &str,
        parent: BorrowedFd<'_>,
        file_name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        if self.opts.preserve_owners {
            sysfs::chown_at_nofollow(parent, file_name, meta.uid, meta.gid)
                .map_err(io_err(shown, "set the node's owner"))?;
        }
        sysfs::chmod_at_nofollow(parent, file_name, meta.mode).map_err(io_err(shown, "set the node's mode"))?;
        sysfs::set_mtime_at_nofollow(parent, file_name, meta.mtime).map_err(io_err(shown, "set the node's mtime"))
    }

    /// `dir/.wh.target`: delete `dir/target`, or record it as an overlay
    /// whiteout device.
    fn whiteout(&mut self, shown: &str, name: &CleanName<'_>, target: &OsStr, meta: &Meta) -> Result<(), UnpackError> {
        match self.opts.whiteouts {
            Whiteouts::Apply => {
                let Some(parent) = self.root.lower_dir(&name.parent()).map_err(io_err(shown, PARENT_OP))? else {
                    return Ok(());
                };
                sysfs::remove_all_at(parent.as_fd(), target).map_err(io_err(shown, "delete the whited-out path"))?;
                Ok(())
            }
            Whiteouts::Overlay => {
                let parent = self.root.make_dir(&name.parent()).map_err(io_err(shown, PARENT_OP))?;
                clear_slot(parent.as_fd(), target, false).map_err(io_err(shown, REPLACE_OP))?;
                sysfs::mknod_at(parent.as_fd(), target, NodeKind::CharDevice, 0, 0, 0)
                    .map_err(io_err(shown, "create the overlay whiteout device"))?;
                let meta = Meta { mode: 0, ..*meta };
                self.node_metadata(shown, parent.as_fd(), target, &meta)
            }
        }
    }

    /// `dir/.wh..wh..opq`: delete what `dir` held before this archive, or
    /// mark it opaque for overlayfs.
    fn opaque(&mut self, shown: &str, dir: &Path) -> Result<(), UnpackError> {
        match self.opts.whiteouts {
            Whiteouts::Apply => {
                let Some(fd) = self.root.lower_dir(dir).map_err(io_err(shown, "open the opaque directory"))? else {
                    return Ok(());
                };
                for child in sysfs::list_dir(fd.as_fd()).map_err(io_err(shown, "list the opaque directory"))? {
                    if !self.written.contains(&dir.join(&child)) {
                        sysfs::remove_all_at(fd.as_fd(), &child)
                            .map_err(io_err(shown, "empty the opaque directory"))?;
                    }
                }
                Ok(())
            }
            Whiteouts::Overlay => {
                self.root.make_dir(dir).map_err(io_err(shown, "create the opaque directory"))?;
                let fd = self.root.open_dir(dir).map_err(io_err(shown, "open the opaque directory"))?;
                let xattr = overlay_opaque_xattr();
                sysfs::set_xattr_fd(fd.as_fd(), &xattr, b"y").map_err(io_err(shown, "set the overlay opaque xattr"))
            }
        }
    }

    /// Applies the queued directory modes and mtimes, deepest last-declared
    /// first, skipping directories that were since removed or replaced.
    fn finish_dirs(&self) -> Result<(), UnpackError> {
        for dir in self.dirs.iter().rev() {
            let fail = |source| UnpackError::FinishDir { dir: dir.path.clone(), source };
            let fd = match self.root.open_dir(&dir.path) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => continue,
                Err(e) => return Err(fail(e)),
            };
            let st = sysfs::stat_fd(fd.as_fd()).map_err(fail)?;
            if (st.dev, st.ino) != dir.id {
                continue;
            }
            sysfs::chmod_fd(fd.as_fd(), dir.mode).map_err(fail)?;
            sysfs::set_mtime_fd(fd.as_fd(), dir.mtime).map_err(fail)?;
        }
        Ok(())
    }
}

/// The entry's mode, owner and mtime: the header's fields, overridden by the
/// entry's PAX `uid`, `gid` and `mtime` records as GNU tar and Go's
/// archive/tar read them (a writer may leave the header field 0 and put the
/// value only in PAX, e.g. a uid ≥ 2^21 or a fractional mtime). PAX `path`,
/// `linkpath` and `size` are applied by the `tar` crate itself.
fn header_meta<R: Read>(shown: &str, entry: &mut tar::Entry<'_, R>) -> Result<Meta, UnpackError> {
    let header = entry.header();
    let field = |op| header_err(shown, op);
    let id = |v: u64, op| u32::try_from(v).map_err(|_| field(op)(io::Error::other("value does not fit 32 bits")));
    let mut meta = Meta {
        mode: header.mode().map_err(field("read the mode"))? & 0o7777,
        uid: id(header.uid().map_err(field("read the uid"))?, "read the uid")?,
        gid: id(header.gid().map_err(field("read the gid"))?, "read the gid")?,
        mtime: header.mtime().map_err(field("read the mtime"))?,
    };
    let Some(records) = entry.pax_extensions().map_err(field("read its PAX records"))? else {
        return Ok(meta);
    };
    for record in records {
        let record = record.map_err(field("read its PAX records"))?;
        let value = record.value_bytes();
        match record.key_bytes() {
            b"uid" => meta.uid = pax_id(value).map_err(field("read its PAX uid record"))?,
            b"gid" => meta.gid = pax_id(value).map_err(field("read its PAX gid record"))?,
            b"mtime" => meta.mtime = pax_time(value).map_err(field("read its PAX mtime record"))?,
            _ => {}
        }
    }
    Ok(meta)
}

/// A PAX `uid`/`gid` value: a decimal that fits 32 bits.
fn pax_id(value: &[u8]) -> io::Result<u32> {
    let bad = || io::Error::other(format!("{:?} is not a decimal id below 2^32", String::from_utf8_lossy(value)));
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// A PAX `mtime` value, `[-]SECONDS[.FRACTION]`, as whole seconds: the
/// fraction is dropped (berth keeps whole seconds, as its writer does) and a
/// time before 1970 becomes 0.
fn pax_time(value: &[u8]) -> io::Result<u64> {
    let bad = || {
        io::Error::other(format!("{:?} is not a time in [-]SECONDS[.FRACTION] form", String::from_utf8_lossy(value)))
    };
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !digits(secs) || !digits(frac) {
        return Err(bad());
    }
    if negative {
        return Ok(0);
    }
    secs.parse().map_err(|_| bad())
}

/// Copies a file entry's contents into `file`: an error reading the tar is
/// the input's ([`UnpackError::Read`], after `entries` entries), an error
/// writing the file the destination's.
fn copy_contents(
    shown: &str,
    entry: &mut impl Read,
    file: &mut std::fs::File,
    buf: &mut [u8],
    entries: u64,
) -> Result<u64, UnpackError> {
    let mut copied = 0u64;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(UnpackError::Read { entries, source }),
        };
        io::Write::write_all(file, &buf[..n]).map_err(io_err(shown, "write the file's contents"))?;
        copied += n as u64;
    }
}

/// The `SCHILY.xattr.security.capability` PAX record, if the entry has one.
fn capability_xattr<R: Read>(shown: &str, entry: &mut tar::Entry<'_, R>) -> Result<Option<Vec<u8>>, UnpackError> {
    let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
    let Some(records) = entry.pax_extensions().map_err(header_err(shown, "read its PAX records"))? else {
        return Ok(None);
    };
    for record in records {
        let record = record.map_err(header_err(shown, "read its PAX records"))?;
        if record.key_bytes() == key.as_bytes() {
            return Ok(Some(record.value_bytes().to_vec()));
        }
    }
    Ok(None)
}
