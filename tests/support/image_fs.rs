//! An image's filesystem as a map, read from its layers in a berth store,
//! and the differences between two of them: what the differential tests
//! compare (`tests/dockerfile_build.rs`, `tests/dockerfile_corpus.rs`).
//!
//! [`filesystem`] applies the image's layer tars in order, as a runtime
//! unpacks them: `.wh.NAME` removes NAME (and what is under it) from the
//! layers below, `.wh..wh..opq` empties its directory of what the layers
//! below put there, a hard link is the file it links to, and a parent
//! directory no entry names is a 0755 root directory (as containers/storage
//! and berth create it). No container runs, so an image without a shell
//! (`FROM scratch`) compares as well as any.
//!
//! Each path keeps its type, permission bits (with setuid, setgid and
//! sticky), numeric owner, and the size and BLAKE3 digest of a file's bytes
//! or a link's target; mtimes, xattrs and the root directory itself are
//! left aside.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use super::Berth;

/// Every path of an image (`/etc/passwd`) and what is there.
pub type Filesystem = BTreeMap<String, Node>;

/// One path of an image's filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`0o4755`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file: its size and the BLAKE3 digest of its bytes.
    File {
        size: u64,
        digest: String,
    },
    Symlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = format!("{:o} {}:{}", self.mode, self.uid, self.gid);
        match &self.kind {
            Kind::Dir => write!(f, "directory {owner}"),
            Kind::File { size, digest } => write!(f, "file {owner} {size} bytes blake3:{}", &digest[..16]),
            Kind::Symlink(target) => write!(f, "symlink {owner} -> {target}"),
            Kind::Char(major, minor) => write!(f, "char device {owner} {major}:{minor}"),
            Kind::Block(major, minor) => write!(f, "block device {owner} {major}:{minor}"),
            Kind::Fifo => write!(f, "fifo {owner}"),
        }
    }
}

/// The filesystem of `image` (a name or id in `berth`'s store), from its
/// layer blobs.
pub fn filesystem(berth: &Berth, image: &str) -> Filesystem {
    let inspect = berth.run(&["inspect", image]).json();
    let layers = inspect[0]["Manifest"]["layers"].as_array().unwrap_or_else(|| panic!("{image} has no layers list"));
    let mut fs = Filesystem::new();
    for layer in layers {
        let digest = layer["digest"].as_str().expect("a layer digest");
        let blob = berth.store_root().join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:"));
        apply_layer(&mut fs, &blob);
    }
    fs
}

/// Opens a layer blob, gzip, zstd or plain tar (told by its first bytes).
fn open_layer(blob: &Path) -> Box<dyn Read> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let got = file.read(&mut magic).unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(blob).unwrap());
    match &magic[..got] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(file)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::Decoder::new(file).unwrap()),
        _ => Box::new(file),
    }
}

/// `./a/b/` → `/a/b`; the root is `/`.
fn clean(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Removes `path` and everything under it.
fn remove_tree(fs: &mut Filesystem, path: &str) {
    let under = format!("{path}/");
    fs.retain(|p, _| p != path && !p.starts_with(&under));
}

/// Lays one layer tar over `fs`: its whiteouts first (they hide only what
/// the layers below hold), then its entries.
fn apply_layer(fs: &mut Filesystem, blob: &Path) {
    let mut archive = tar::Archive::new(open_layer(blob));
    let mut entries: Vec<(String, Node)> = Vec::new();
    let mut hardlinks: Vec<(String, String)> = Vec::new();
    let mut whiteouts: Vec<String> = Vec::new();
    let mut opaque: Vec<String> = Vec::new();
    for entry in archive.entries().unwrap_or_else(|e| panic!("{}: {e}", blob.display())) {
        let mut entry = entry.unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        let name = path.rsplit('/').next().unwrap_or_default();
        if name == ".wh..wh..opq" {
            opaque.push(parent(&path).to_owned());
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let dir = parent(&path);
            whiteouts.push(if dir == "/" { format!("/{hidden}") } else { format!("{dir}/{hidden}") });
            continue;
        }
        if path == "/" {
            continue;
        }
        let header = entry.header();
        let (mode, uid, gid) = (header.mode().unwrap() & 0o7777, header.uid().unwrap(), header.gid().unwrap());
        let device = || (header.device_major().unwrap().unwrap_or(0), header.device_minor().unwrap().unwrap_or(0));
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                Kind::Symlink(String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default()).into_owned())
            }
            tar::EntryType::Link => {
                let target = clean(&String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default()));
                hardlinks.push((path, target));
                continue;
            }
            tar::EntryType::Char => Kind::Char(device().0, device().1),
            tar::EntryType::Block => Kind::Block(device().0, device().1),
            tar::EntryType::Fifo => Kind::Fifo,
            _ => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                Kind::File { size: bytes.len() as u64, digest: blake3::hash(&bytes).to_hex().to_string() }
            }
        };
        entries.push((path, Node { kind, mode, uid, gid }));
    }
    for dir in opaque {
        let under = format!("{}/", dir.trim_end_matches('/'));
        fs.retain(|p, _| !p.starts_with(&under));
    }
    for hidden in whiteouts {
        remove_tree(fs, &hidden);
    }
    for (path, node) in entries {
        add_parents(fs, &path);
        if node.kind != Kind::Dir || fs.get(&path).is_none_or(|old| old.kind != Kind::Dir) {
            remove_tree(fs, &path);
        }
        fs.insert(path, node);
    }
    for (path, target) in hardlinks {
        let node = fs
            .get(&target)
            .cloned()
            .unwrap_or_else(|| panic!("{}: hard link {path} to missing {target}", blob.display()));
        add_parents(fs, &path);
        fs.insert(path, node);
    }
}

/// Adds the directories above `path` that no layer named, as an unpacker
/// makes them.
fn add_parents(fs: &mut Filesystem, path: &str) {
    let mut dir = parent(path);
    while dir != "/" && !fs.contains_key(dir) {
        fs.insert(dir.to_owned(), Node { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 });
        dir = parent(dir);
    }
}

/// The paths where `ours` and `theirs` differ, one line each (`PATH: berth
/// has …, podman has …`), leaving out the paths `skip` accepts.
pub fn differences(ours: &Filesystem, theirs: &Filesystem, skip: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let paths: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for path in paths {
        if skip(path) {
            continue;
        }
        match (ours.get(path), theirs.get(path)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => out.push(format!("{path}: berth has {a}, podman has {b}")),
            (Some(a), None) => out.push(format!("{path}: only berth has it ({a})")),
            (None, Some(b)) => out.push(format!("{path}: only podman has it ({b})")),
            (None, None) => unreachable!(),
        }
    }
    out
}
