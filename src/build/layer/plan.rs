//! Which entries the layer holds: the upper dir is read into a tree of
//! decisions (`scan`), hard-linked names are made to agree, and the tree
//! is flattened into the entries, in the writer's order ([`Plan::entries`]).
//! Nothing is written here. The upper dir is read through `Upper`: no
//! symlink is ever followed in it.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::LayerError;
use super::lower::{self, OPAQUE_XATTRS};
use super::upper::Upper;

/// The OCI whiteout prefix and opaque marker (see the image spec's layer page).
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The overlayfs xattrs of features berth does not mount with.
const REDIRECT_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "user.overlay.redirect"];
const METACOPY_XATTRS: [&str; 2] = ["trusted.overlay.metacopy", "user.overlay.metacopy"];

/// One entry of the layer, relative to the upper dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The upper dir's object at this path, as it is.
    Add(PathBuf),
    /// `.wh.NAME`: the path is deleted.
    Whiteout(PathBuf),
    /// `.wh..wh..opq` in this directory: what the lowers had in it is hidden.
    Opaque(PathBuf),
}

/// The layer's entries, sorted as the writer needs: by tar name, component
/// by component, each bytewise.
#[derive(Debug, Default)]
pub struct Plan {
    pub entries: Vec<Entry>,
}

/// A decision about one name in an upper directory.
struct Node {
    /// The name as the tar spells it: `.wh.NAME` for a whiteout.
    key: OsString,
    name: OsString,
    kind: Kind,
}

enum Kind {
    Whiteout,
    Opaque,
    Dir { changed: bool, children: Vec<Node> },
    Leaf { changed: bool, inode: Option<(u64, u64)> },
}

/// Reads `upper` against `lowers` (top first) and decides what the layer
/// holds (see the parent module's page for the rules). Paths in `exclude`
/// (relative to the upper dir) are left out with everything below them.
pub(super) fn scan(upper: &Upper, lowers: &[PathBuf], exclude: &HashSet<PathBuf>) -> Result<Plan, LayerError> {
    let mut scanner = Scanner { upper, exclude, changed_inodes: HashSet::new() };
    let nodes = scanner.dir(Path::new(""), lowers)?;
    let mut plan = Plan::default();
    scanner.emit(&nodes, Path::new(""), &mut plan.entries);
    Ok(plan)
}

struct Scanner<'a> {
    upper: &'a Upper,
    exclude: &'a HashSet<PathBuf>,
    /// Multiply-linked inodes of which at least one name changed: all their
    /// names go into the layer, so that they stay one file.
    changed_inodes: HashSet<(u64, u64)>,
}

impl Scanner<'_> {
    /// The decisions for the upper directory `rel`, whose merged view was
    /// backed by the lower directories `below` (none if it is new or opaque).
    fn dir(&mut self, rel: &Path, below: &[PathBuf]) -> Result<Vec<Node>, LayerError> {
        let read = |source| LayerError::ReadUpper { path: self.upper.path().join(rel), source };
        let mut nodes = Vec::new();
        for name in self.upper.list(rel).map_err(read)? {
            let child = rel.join(&name);
            if self.exclude.contains(&child) {
                continue;
            }
            let meta = self
                .upper
                .metadata(&child)
                .map_err(|source| LayerError::ReadUpper { path: self.upper.path().join(&child), source })?;
            if let Some(node) = self.node(&child, name, &meta, below)? {
                nodes.push(node);
            }
        }
        nodes.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        Ok(nodes)
    }

    fn node(
        &mut self,
        rel: &Path,
        name: OsString,
        meta: &Metadata,
        below: &[PathBuf],
    ) -> Result<Option<Node>, LayerError> {
        let path = self.upper.path().join(rel);
        if lower::is_whiteout(meta) {
            if below.is_empty() {
                return Ok(None); // under a new or opaque directory it hides nothing
            }
            let mut key = OsStr::from_bytes(WHITEOUT_PREFIX).to_owned();
            key.push(&name);
            return Ok(Some(Node { key, name, kind: Kind::Whiteout }));
        }
        if name.as_bytes().starts_with(WHITEOUT_PREFIX) {
            return Err(LayerError::ReservedName { path });
        }
        let xattrs = Xattrs::read(self.upper, rel, meta)?;
        xattrs.refuse_unsupported(&path)?;
        let lower = lower::lookup(below, &name).map_err(|(path, source)| LayerError::ReadLower { path, source })?;
        let kind = if meta.is_dir() {
            let lower_dir = lower.object.as_ref().map(|(_, lm)| lm).filter(|lm| lm.is_dir());
            let (changed, children_below) = match lower_dir {
                Some(lm) if !xattrs.opaque => (!lower::same_dir(meta, lm), lower.dirs),
                _ => (true, Vec::new()),
            };
            let mut children = self.dir(rel, &children_below)?;
            if xattrs.opaque {
                let marker = Node { key: OPAQUE_MARKER.into(), name: OPAQUE_MARKER.into(), kind: Kind::Opaque };
                let at = children.partition_point(|n| n.key.as_bytes() < OPAQUE_MARKER.as_bytes());
                children.insert(at, marker);
            }
            Kind::Dir { changed, children }
        } else {
            let changed = match &lower.object {
                Some((lp, lm)) => !lower::same_leaf(self.upper, rel, meta, lp, lm)?,
                None => true,
            };
            let inode = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
            if let (true, Some(inode)) = (changed, inode) {
                self.changed_inodes.insert(inode);
            }
            Kind::Leaf { changed, inode }
        };
        Ok(Some(Node { key: name.clone(), name, kind }))
    }

    /// Appends the entries of `nodes` (the children of `rel`) in order;
    /// returns whether it appended any.
    fn emit(&self, nodes: &[Node], rel: &Path, out: &mut Vec<Entry>) -> bool {
        let before = out.len();
        for node in nodes {
            let path = rel.join(&node.name);
            match &node.kind {
                Kind::Whiteout => out.push(Entry::Whiteout(path)),
                Kind::Opaque => out.push(Entry::Opaque(rel.to_owned())),
                Kind::Leaf { changed, inode } => {
                    if *changed || inode.is_some_and(|i| self.changed_inodes.contains(&i)) {
                        out.push(Entry::Add(path));
                    }
                }
                Kind::Dir { changed, children } => {
                    let at = out.len();
                    out.push(Entry::Add(path.clone()));
                    // A directory goes in if it changed itself or anything
                    // below it goes in, so its mode and owner are right.
                    if !self.emit(children, &path, out) && !changed {
                        out.truncate(at);
                    }
                }
            }
        }
        out.len() > before
    }
}

/// What an upper entry's xattrs say about it.
struct Xattrs {
    opaque: bool,
    redirect: Option<(String, Vec<u8>)>,
    metacopy: Option<String>,
}

impl Xattrs {
    /// The overlay xattrs of `rel` (of type `meta`) in the upper dir.
    fn read(upper: &Upper, rel: &Path, meta: &Metadata) -> Result<Xattrs, LayerError> {
        let fail = |source| LayerError::ReadUpper { path: upper.path().join(rel), source };
        let overlay = |n: &OsString| {
            [OPAQUE_XATTRS, REDIRECT_XATTRS, METACOPY_XATTRS].iter().flatten().any(|k| n.as_os_str() == *k)
        };
        let found = upper.xattrs(rel, meta, &overlay).map_err(fail)?;
        let value = |key: &str| found.iter().find(|(n, _)| n == key).map(|(_, v)| v.as_slice());
        let mut xattrs = Xattrs { opaque: false, redirect: None, metacopy: None };
        xattrs.opaque = OPAQUE_XATTRS.into_iter().any(|k| value(k) == Some(b"y"));
        if let Some(key) = REDIRECT_XATTRS.into_iter().find(|k| value(k).is_some()) {
            xattrs.redirect = Some((key.to_owned(), value(key).unwrap_or_default().to_vec()));
        }
        xattrs.metacopy = METACOPY_XATTRS.into_iter().find(|k| value(k).is_some()).map(str::to_owned);
        Ok(xattrs)
    }

    /// Fails on the marks of overlayfs features berth mounts without.
    fn refuse_unsupported(&self, path: &Path) -> Result<(), LayerError> {
        if let Some(xattr) = &self.metacopy {
            return Err(LayerError::Metacopy { path: path.to_owned(), xattr: xattr.clone() });
        }
        if let Some((xattr, target)) = &self.redirect {
            let target = String::from_utf8_lossy(target).into_owned();
            return Err(LayerError::Redirect { path: path.to_owned(), xattr: xattr.clone(), target });
        }
        Ok(())
    }
}
