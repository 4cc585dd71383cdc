//! Reading a stage's filesystem without mounting it: paths looked up
//! through its unpacked layers (top first) as overlayfs would show them
//! (see `build::layer::lower`), for `COPY --from`, WORKDIR and the parents
//! of a COPY destination.

use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::build::layer::lower::{Below, lookup};

/// One visible object: where its bytes are and its metadata.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub meta: Metadata,
    /// The lower directories backing it, when it is a directory.
    pub dirs: Vec<PathBuf>,
}

/// How many symlinks a lookup follows before it gives up (Linux's limit).
const MAX_LINKS: usize = 40;

fn found(below: Below) -> Option<Found> {
    below.object.map(|(path, meta)| Found { path, meta, dirs: below.dirs })
}

/// The object at `rel` (relative to the root) in the merged view of
/// `lowers`. Symlinks on the way are followed inside the root; the last
/// component is followed only when `follow_last`.
pub fn find(lowers: &[PathBuf], rel: &Path, follow_last: bool) -> io::Result<Option<Found>> {
    let mut todo: Vec<OsString> = names(rel);
    todo.reverse();
    let mut done: Vec<OsString> = Vec::new();
    let mut dirs = lowers.to_vec();
    let mut links = 0;
    let mut current: Option<Found> = None;
    while let Some(name) = todo.pop() {
        let below = lookup(&dirs, &name).map_err(|(p, e)| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        let Some(f) = found(below) else { return Ok(None) };
        let last = todo.is_empty();
        if f.meta.file_type().is_symlink() && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::other(format!("{}: too many levels of symlinks", rel.display())));
            }
            let target = std::fs::read_link(&f.path)?;
            let base: PathBuf = if target.is_absolute() { PathBuf::new() } else { done.iter().collect() };
            let rest: PathBuf = todo.iter().rev().collect();
            let next = base.join(target.strip_prefix("/").unwrap_or(&target)).join(rest);
            return find_inner(lowers, &next, follow_last, links);
        }
        if !last && !f.meta.is_dir() {
            return Ok(None);
        }
        dirs = f.dirs.clone();
        done.push(name);
        current = Some(f);
    }
    Ok(current)
}

fn find_inner(lowers: &[PathBuf], rel: &Path, follow_last: bool, links: usize) -> io::Result<Option<Found>> {
    if links > MAX_LINKS {
        return Err(io::Error::other(format!("{}: too many levels of symlinks", rel.display())));
    }
    let clean = clean(rel);
    if clean.as_os_str().is_empty() {
        return Ok(root(lowers));
    }
    find(lowers, &clean, follow_last)
}

/// The root directory of the merged view.
pub fn root(lowers: &[PathBuf]) -> Option<Found> {
    let first = lowers.first()?;
    let meta = std::fs::symlink_metadata(first).ok()?;
    Some(Found { path: first.clone(), meta, dirs: lowers.to_vec() })
}

/// `rel` without `.`, `..` resolved lexically, never above the root.
fn clean(rel: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn names(rel: &Path) -> Vec<OsString> {
    clean(rel).components().map(|c| c.as_os_str().to_owned()).collect()
}

/// Every object under the directory `dir` (itself first, as the empty
/// path), in the merged view, with paths relative to it, sorted.
pub fn walk(dir: Found) -> io::Result<Vec<(PathBuf, Found)>> {
    let mut out = Vec::new();
    let mut stack = vec![(PathBuf::new(), dir)];
    while let Some((rel, f)) = stack.pop() {
        if f.meta.is_dir() {
            let mut children: Vec<OsString> = Vec::new();
            for d in &f.dirs {
                for entry in std::fs::read_dir(d)? {
                    let name = entry?.file_name();
                    if !children.contains(&name) {
                        children.push(name);
                    }
                }
            }
            for name in children {
                let below = lookup(&f.dirs, &name)
                    .map_err(|(p, e)| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                if let Some(child) = found(below) {
                    stack.push((rel.join(&name), child));
                }
            }
        }
        out.push((rel, f));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The entries of the directory `rel` in the merged view, `(name, is a
/// directory)` sorted by name; `None` when `rel` is no directory. Symlinks
/// on the way are followed inside the root.
pub fn list(lowers: &[PathBuf], rel: &Path) -> io::Result<Option<Vec<(String, bool)>>> {
    let dir = if clean(rel).as_os_str().is_empty() { root(lowers) } else { find(lowers, rel, true)? };
    let Some(dir) = dir.filter(|d| d.meta.is_dir()) else { return Ok(None) };
    let mut names: Vec<OsString> = Vec::new();
    for d in &dir.dirs {
        for entry in std::fs::read_dir(d)? {
            let name = entry?.file_name();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let below =
            lookup(&dir.dirs, &name).map_err(|(p, e)| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        if let Some(f) = found(below) {
            out.push((name.to_string_lossy().into_owned(), f.meta.is_dir()));
        }
    }
    out.sort();
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_hide_and_symlinks_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (low, up) = (dir.path().join("low"), dir.path().join("up"));
        std::fs::create_dir_all(low.join("usr/bin")).unwrap();
        std::fs::write(low.join("usr/bin/tool"), "old").unwrap();
        std::fs::create_dir_all(up.join("usr/bin")).unwrap();
        std::fs::write(up.join("usr/bin/tool"), "new").unwrap();
        std::fs::write(low.join("usr/bin/other"), "x").unwrap();
        std::os::unix::fs::symlink("usr/bin", low.join("bin")).unwrap();
        let lowers = vec![up.clone(), low.clone()];
        let f = find(&lowers, Path::new("bin/tool"), true).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(f.path).unwrap(), "new");
        let d = find(&lowers, Path::new("usr/bin"), true).unwrap().unwrap();
        let names: Vec<PathBuf> = walk(d).unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, [PathBuf::new(), PathBuf::from("other"), PathBuf::from("tool")]);
        assert!(find(&lowers, Path::new("nope/x"), true).unwrap().is_none());
        let link = find(&lowers, Path::new("bin"), false).unwrap().unwrap();
        assert!(link.meta.file_type().is_symlink());
    }
}
