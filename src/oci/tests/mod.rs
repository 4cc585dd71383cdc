//! Tests of the layer writer and the safe tar reader against the real
//! kernel, in temporary directories. They need root (device nodes, chown,
//! `trusted.*` xattrs), as berth does.
//!
//! `RawTar` writes hand-made, possibly malicious archives byte by byte (the
//! `tar` crate's builder refuses most of them); `Sandbox` is an unpack root
//! with a sentinel directory beside it whose state must never change.

mod escape;
mod roundtrip;
mod writer;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::tar_read::{UnpackError, UnpackOptions, UnpackStats, Whiteouts, unpack};

/// A tar archive assembled header by header, with names written verbatim.
pub struct RawTar {
    bytes: Vec<u8>,
    /// The header mtime of the entries appended next.
    mtime: u64,
}

impl RawTar {
    pub fn new() -> Self {
        RawTar { bytes: Vec::new(), mtime: 1_000_000 }
    }

    /// Gives the entries appended from now on header mtime `mtime`.
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    /// Appends one entry: a GNU header with `name` and `link` copied as raw
    /// bytes (truncated to 100), then `data` padded to 512.
    pub fn entry(mut self, kind: EntryType, name: &[u8], link: &[u8], mode: u32, data: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        let old = header.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(EntryType::Regular, name.as_bytes(), b"", 0o644, data)
    }

    pub fn dir(self, name: &str, mode: u32) -> Self {
        self.entry(EntryType::Directory, name.as_bytes(), b"", mode, b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(EntryType::Symlink, name.as_bytes(), target.as_bytes(), 0o777, b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(EntryType::Link, name.as_bytes(), target.as_bytes(), 0o644, b"")
    }

    /// A GNU long-name (`L`) entry giving the next entry the name `name`.
    pub fn gnu_long_name(self, name: &[u8]) -> Self {
        let mut data = name.to_vec();
        data.push(0);
        self.entry(EntryType::GNULongName, b"././@LongLink", b"", 0o644, &data)
    }

    /// A PAX (`x`) entry giving the next entry the path `path`.
    pub fn pax_path(self, path: &[u8]) -> Self {
        self.pax(&[("path", path)])
    }

    /// A PAX (`x`) entry with `records` (key, value) for the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            // "LEN KEY=VALUE\n", where LEN counts its own digits too.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + rest.to_string().len();
            len = rest + len.to_string().len();
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.entry(EntryType::XHeader, b"PaxHeaders/x", b"", 0o644, &data)
    }

    /// The archive with its two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0; 1024]);
        self.bytes
    }
}

/// An unpack root beside a sentinel directory `outside` that holds a file
/// `secret` and a subdirectory `sub`.
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub root: PathBuf,
    pub outside: PathBuf,
    before: BTreeMap<PathBuf, String>,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_owned();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(outside.join("secret"), b"keep").unwrap();
        let mut sandbox = Sandbox { _tmp: tmp, base, root, outside, before: BTreeMap::new() };
        sandbox.before = sandbox.outside_state();
        sandbox
    }

    /// Unpacks `tar` into the root with owners preserved.
    pub fn unpack(&self, tar: &[u8], whiteouts: Whiteouts) -> Result<UnpackStats, UnpackError> {
        unpack(tar, &self.root, &UnpackOptions { whiteouts, preserve_owners: true })
    }

    /// Path of `rel` inside the root.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Everything beside the root (recursively, and the base itself): kind,
    /// mode, inode, link count, size, mtime and contents.
    fn outside_state(&self) -> BTreeMap<PathBuf, String> {
        let mut state = BTreeMap::new();
        describe(&self.base, Path::new(""), &mut state);
        state
    }

    /// Panics if anything beside the root changed since `new`.
    pub fn assert_outside_untouched(&self) {
        assert_eq!(self.outside_state(), self.before, "something outside the unpack root changed");
    }
}

fn describe(base: &Path, rel: &Path, state: &mut BTreeMap<PathBuf, String>) {
    let path = base.join(rel);
    let meta = fs::symlink_metadata(&path).unwrap();
    let content = if meta.is_file() {
        String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
    } else if meta.file_type().is_symlink() {
        fs::read_link(&path).unwrap().display().to_string()
    } else {
        String::new()
    };
    let root_itself = rel == Path::new("root");
    let line = if root_itself {
        "the root".to_owned() // its contents and times are allowed to change
    } else {
        format!(
            "{:o} ino={} nlink={} size={} mtime={} {content}",
            meta.mode(),
            meta.ino(),
            meta.nlink(),
            meta.len(),
            meta.mtime()
        )
    };
    state.insert(rel.to_owned(), line);
    if meta.is_dir() && !root_itself {
        for entry in fs::read_dir(&path).unwrap() {
            describe(base, &rel.join(entry.unwrap().file_name()), state);
        }
    }
}

/// Entry names of an uncompressed tar, in order.
pub fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive.entries().unwrap().map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned()).collect()
}
