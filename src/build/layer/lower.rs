//! What the lower layers hold at a path, looked up as overlayfs does, and
//! whether an upper entry is the same as it.
//!
//! A directory of the merged view is backed by a list of lower directories
//! (top first). A child name is looked up in each of them in turn: a
//! whiteout (0:0 character device) ends the search (the name is deleted),
//! a non-directory ends it (it hides everything below), a directory joins
//! the child's list, and an opaque directory joins it and ends the search.
//! The first object found is what the merged view showed before the step.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::LayerError;
use super::upper::Upper;
use crate::sys::fs::get_xattr_nofollow;

/// The one xattr a layer carries (see `oci::tar_write`), so the one that
/// makes a difference.
pub(super) const CAPABILITY_XATTR: &str = "security.capability";

/// The xattrs that mark a directory opaque (`user.` under `userxattr`).
pub(super) const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// What the lowers hold at one name.
#[derive(Debug, Default)]
pub(crate) struct Below {
    /// The visible object and its metadata, if any.
    pub object: Option<(PathBuf, Metadata)>,
    /// The lower directories that back the name, top first, if it is a
    /// directory: where its children are looked up.
    pub dirs: Vec<PathBuf>,
}

/// Whether `meta` is an overlayfs whiteout.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` carries an opaque marker (`y`).
pub(super) fn is_opaque(path: &Path) -> io::Result<bool> {
    for key in OPAQUE_XATTRS {
        if get_xattr_nofollow(path, key)?.is_some_and(|v| v == b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Looks `name` up in the lower directories `dirs` (top first) as overlayfs
/// does (see the module page). Errors carry the path that failed.
pub(crate) fn lookup(dirs: &[PathBuf], name: &std::ffi::OsStr) -> Result<Below, (PathBuf, io::Error)> {
    let mut below = Below::default();
    for dir in dirs {
        let path = dir.join(name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err((path, e)),
        };
        if is_whiteout(&meta) {
            break;
        }
        if !meta.is_dir() {
            if below.object.is_none() {
                below.object = Some((path, meta));
            }
            break; // a file hides what is below it, and a directory above it hides it
        }
        if below.object.as_ref().is_some_and(|(_, first)| !first.is_dir()) {
            break;
        }
        let opaque = is_opaque(&path).map_err(|e| (path.clone(), e))?;
        if below.object.is_none() {
            below.object = Some((path.clone(), meta));
        }
        below.dirs.push(path);
        if opaque {
            break;
        }
    }
    Ok(below)
}

/// Whether the upper directory's own metadata equals the lower one's: type,
/// mode, owner. A directory's mtime is ignored, as Docker ignores it (it
/// changes whenever an entry inside does).
pub(super) fn same_dir(upper: &Metadata, lower: &Metadata) -> bool {
    (upper.mode(), upper.uid(), upper.gid()) == (lower.mode(), lower.uid(), lower.gid())
}

/// Whether the upper non-directory `rel` (with metadata `um`) is the lower
/// one at `lower` unchanged: type, mode, owner, device number, size, mtime
/// (to the nanosecond: a touch is a change, as in Docker),
/// `security.capability`, symlink target and contents (compared byte by
/// byte, streamed). Cheap checks first; contents only when all else is
/// equal. The upper side is read through `upper` (no symlink followed).
pub(super) fn same_leaf(
    upper: &Upper,
    rel: &Path,
    um: &Metadata,
    lower: &Path,
    lm: &Metadata,
) -> Result<bool, LayerError> {
    let stat = |m: &Metadata| (m.mode(), m.uid(), m.gid(), m.rdev(), m.size(), m.mtime(), m.mtime_nsec());
    if stat(um) != stat(lm) {
        return Ok(false);
    }
    let read_upper = |source| LayerError::ReadUpper { path: upper.path().join(rel), source };
    let read_lower = |source| LayerError::ReadLower { path: lower.to_owned(), source };
    let ft = um.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(lower).map_err(read_lower)?;
        return Ok(upper.read_link(rel).map_err(read_upper)? == target.into_os_string());
    }
    if !ft.is_file() {
        return Ok(true); // fifos and devices: nothing more than their metadata
    }
    let upper_file = upper.open_file(rel, um).map_err(read_upper)?;
    let upper_cap = upper.file_xattr(&upper_file, CAPABILITY_XATTR).map_err(read_upper)?;
    if upper_cap != get_xattr_nofollow(lower, CAPABILITY_XATTR).map_err(read_lower)? {
        return Ok(false);
    }
    let lower_file = File::open(lower).map_err(read_lower)?;
    same_contents((upper_file, &upper.path().join(rel)), (lower_file, lower))
}

/// Compares two open regular files of the same size, stopping at the first
/// difference.
fn same_contents(a: (File, &Path), b: (File, &Path)) -> Result<bool, LayerError> {
    let ((mut fa, pa), (mut fb, pb)) = (a, b);
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(|source| LayerError::ReadUpper { path: pa.to_owned(), source })?;
        let m = read_full(&mut fb, &mut bb).map_err(|source| LayerError::ReadLower { path: pb.to_owned(), source })?;
        if ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n < ba.len() {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn whiteout(path: &Path) {
        use nix::sys::stat::{Mode, SFlag, mknod};
        mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).expect("mknod a whiteout (needs root)");
    }

    fn opaque(dir: &Path) {
        let fd = File::open(dir).unwrap();
        crate::sys::fs::set_xattr_fd(fd.as_fd(), "trusted.overlay.opaque", b"y")
            .expect("set trusted xattr (needs root)");
    }

    fn found(below: &Below) -> Option<PathBuf> {
        below.object.as_ref().map(|(p, _)| p.clone())
    }

    /// Three layers: top, mid, bottom; what each lookup sees.
    #[test]
    fn lookup_follows_overlay_rules() {
        let t = tempfile::tempdir().unwrap();
        let [top, mid, bottom] = ["top", "mid", "bottom"].map(|n| t.path().join(n));
        for d in [&top, &mid, &bottom] {
            fs::create_dir_all(d.join("d")).unwrap();
        }
        fs::write(bottom.join("d/a"), "bottom a").unwrap();
        fs::write(mid.join("d/a"), "mid a").unwrap();
        fs::write(bottom.join("gone"), "x").unwrap();
        whiteout(&mid.join("gone"));
        fs::write(bottom.join("d/hidden"), "x").unwrap();
        opaque(&mid.join("d"));
        fs::write(bottom.join("file-then-dir"), "x").unwrap();
        fs::create_dir(mid.join("file-then-dir")).unwrap();
        let lowers = [top.clone(), mid.clone(), bottom.clone()];

        let d = lookup(&lowers, "d".as_ref()).unwrap();
        assert_eq!(found(&d), Some(top.join("d")));
        assert_eq!(d.dirs, [top.join("d"), mid.join("d")], "the opaque mid dir ends the list");
        assert_eq!(found(&lookup(&d.dirs, "a".as_ref()).unwrap()), Some(mid.join("d/a")));
        assert_eq!(found(&lookup(&d.dirs, "hidden".as_ref()).unwrap()), None);
        assert_eq!(found(&lookup(&lowers, "gone".as_ref()).unwrap()), None);
        let fd = lookup(&lowers, "file-then-dir".as_ref()).unwrap();
        assert_eq!(fd.dirs, [mid.join("file-then-dir")], "a file below a directory is hidden");
        assert_eq!(found(&lookup(&lowers, "absent".as_ref()).unwrap()), None);
    }

    #[test]
    fn leaves_compare_metadata_then_contents() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        fs::write(&a, &big).unwrap();
        fs::write(&b, &big).unwrap();
        let sync_mtime = || {
            let m = fs::metadata(&a).unwrap().modified().unwrap();
            File::options().write(true).open(&b).unwrap().set_modified(m).unwrap();
        };
        sync_mtime();
        let upper = Upper::open(t.path()).unwrap();
        let same = || {
            let (am, bm) = (fs::symlink_metadata(&a).unwrap(), fs::symlink_metadata(&b).unwrap());
            same_leaf(&upper, Path::new("a"), &am, &b, &bm).unwrap()
        };
        assert!(same());
        let mut other = big.clone();
        other[150_000] ^= 1;
        fs::write(&b, &other).unwrap();
        sync_mtime();
        assert!(!same(), "same size and mtime, one byte differs");
        fs::write(&b, &big).unwrap();
        let later = fs::metadata(&a).unwrap().modified().unwrap() + std::time::Duration::from_nanos(1);
        File::options().write(true).open(&b).unwrap().set_modified(later).unwrap();
        assert!(!same(), "a touch is a change");
    }
}
