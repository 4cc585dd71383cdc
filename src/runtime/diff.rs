//! `berth diff`: what a container changed, read from its overlay upper dir
//! alone, as `docker diff` shows it: `A` added, `C` changed, `D` deleted.
//!
//! In the upper dir a 0:0 character device is a deletion (overlayfs'
//! whiteout), a directory marked opaque replaced the one below, and any other
//! entry is added when no lower layer has that path, changed otherwise. A
//! directory that only holds changes is itself reported as changed, as Docker
//! does. Nothing is followed: symlinks are read as links.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Change {
    /// Absolute path inside the container.
    pub path: PathBuf,
    pub kind: ChangeKind,
}

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ChangeKind {
    #[serde(rename = "C")]
    Changed,
    #[serde(rename = "A")]
    Added,
    #[serde(rename = "D")]
    Deleted,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Changed => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// What container `c` changed, as `berth diff` shows it: the mount points
/// berth bind-mounts over (`/etc/hosts` and the like, volumes) left out.
pub fn container_changes(c: &super::container::Container) -> std::io::Result<Vec<Change>> {
    let hide: Vec<PathBuf> = oci_spec::runtime::Spec::load(c.paths.spec())
        .ok()
        .and_then(|s| s.mounts().clone())
        .unwrap_or_default()
        .iter()
        .filter(|m| m.typ().as_deref() == Some("bind"))
        .map(|m| m.destination().clone())
        .collect();
    changes(&c.paths.upper(), &c.record.lowers, &hide)
}

/// The changes in `upper` over the image layers `lowers` (top first), sorted
/// by path. Paths in `hide` (the mount points berth made for `/etc/hosts`
/// and the like) are left out, as Docker leaves them out.
pub fn changes(upper: &Path, lowers: &[PathBuf], hide: &[PathBuf]) -> std::io::Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(upper, Path::new("/"), &Ctx { lowers, hide }, &mut out)?;
    out.sort();
    Ok(out)
}

struct Ctx<'a> {
    lowers: &'a [PathBuf],
    hide: &'a [PathBuf],
}

/// The metadata of `rel` in the topmost lower layer that has it.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> Option<std::fs::Metadata> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    lowers.iter().find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
}

fn walk(dir: &Path, at: &Path, ctx: &Ctx<'_>, out: &mut Vec<Change>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let meta = entry.metadata()?;
        let path = at.join(entry.file_name());
        if ctx.hide.contains(&path) {
            continue;
        }
        let below = in_lowers(ctx.lowers, &path);
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            ChangeKind::Deleted
        } else if below.is_some() {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        if let (ChangeKind::Changed, Some(lower)) = (kind, &below)
            && meta.is_dir()
            && !is_opaque(&entry.path())
        {
            // Copied up because something below changed: shown only if it
            // changed itself or something below it is shown.
            let mut inner = Vec::new();
            walk(&entry.path(), &path, ctx, &mut inner)?;
            let same = (meta.mode(), meta.uid(), meta.gid()) == (lower.mode(), lower.uid(), lower.gid());
            if !inner.is_empty() || !same {
                out.push(Change { path: path.clone(), kind });
                out.append(&mut inner);
            }
            continue;
        }
        out.push(Change { path: path.clone(), kind });
        if meta.is_dir() {
            walk_added(&entry.path(), &path, out)?;
        }
    }
    Ok(())
}

/// Everything under an added or replaced directory is added too (`docker
/// diff` lists each path).
fn walk_added(dir: &Path, at: &Path, out: &mut Vec<Change>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let meta = entry.metadata()?;
        let path = at.join(entry.file_name());
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            continue; // a whiteout under an opaque dir hides nothing visible
        }
        out.push(Change { path: path.clone(), kind: ChangeKind::Added });
        if meta.is_dir() {
            walk_added(&entry.path(), &path, out)?;
        }
    }
    Ok(())
}

/// Whether `dir` is marked opaque (`user.` under `userxattr`, rootless).
fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|key| matches!(crate::sys::fs::get_xattr_nofollow(dir, key), Ok(Some(v)) if v == b"y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        for d in [&lower.join("etc"), &lower.join("var/log"), &upper.join("etc"), &upper.join("srv/app")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("etc/motd"), "hi").unwrap();
        std::fs::write(upper.join("etc/passwd"), "root\nuser").unwrap();
        std::fs::write(upper.join("srv/app/main.py"), "print()").unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::create_dir_all(upper.join("var")).unwrap();
        std::fs::create_dir_all(lower.join("var")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        let got: Vec<String> = changes(&upper, &[lower], &["/etc/hosts".into()])
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path.display()))
            .collect();
        assert_eq!(got, ["C /etc", "D /etc/motd", "C /etc/passwd", "A /srv", "A /srv/app", "A /srv/app/main.py"]);
    }
}
