//! The layers of a Dockerfile's `files` and `mkdir` nodes, written straight
//! from their sources — no build container: COPY/ADD of several sources, of
//! a file to a path, of an inline heredoc file, `COPY --from` a stage (read
//! through the stage's layers, `merged`), ADD of a local tar archive
//! (unpacked with the store's safe reader, gzip and zstd too), and WORKDIR's
//! missing directories.
//!
//! Docker's placement rules: a directory's *contents* go into the
//! destination; a file becomes the destination, or goes into it when it
//! ends with `/`, when there are several sources, or when the image already
//! has a directory there. Missing parents are made 0755 root; parents the
//! image has keep their owner and mode (the layer holds them as they are,
//! so overlayfs does not show a changed directory). Context files belong to
//! root (or `--chown`); files from a stage or an archive keep their owners
//! unless `--chown` says otherwise.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::merged::{self, Found};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::instruction::Sources;
use crate::oci::{Compression, LayerDigests, LayerWriter, MtimePolicy, Overrides, TarWriteError};
use crate::resolve::dockerfile::{clean_src, is_archive};
use crate::resolve::tree::{self, Rules};

/// Why a files layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{what}: {message}")]
    Source { what: String, message: String },
    #[error("{what}: {source}")]
    Write { what: String, source: TarWriteError },
}

/// What a `files` node copies.
pub struct FilesRequest<'a> {
    /// `COPY` or `ADD`.
    pub instruction: &'a str,
    pub context: &'a Path,
    pub ignore: &'a Ignore,
    pub sources: &'a Sources,
    /// The `--from` stage's layers (top first), when sources come from it.
    pub from: Option<&'a [PathBuf]>,
    /// The layers below this step (top first).
    pub lowers: &'a [PathBuf],
    /// Absolute; a trailing `/` means "into this directory".
    pub dest: &'a str,
    pub mode: Option<u32>,
    pub owner: Option<(u32, u32)>,
    /// An empty directory for inline files and unpacked archives.
    pub scratch: &'a Path,
}

enum Item {
    /// A new directory, 0755 root.
    Dir,
    /// An object on disk, written with `Overrides`.
    Object(PathBuf, Overrides),
}

fn rel(p: &str) -> PathBuf {
    PathBuf::from(p.trim_start_matches('/'))
}

/// Adds the parents of `dest` (relative) that are not there yet: the image's
/// own directories as they are, missing ones 0755 root.
fn parents(items: &mut BTreeMap<PathBuf, Item>, lowers: &[PathBuf], dest: &Path) {
    let mut at = PathBuf::new();
    let comps: Vec<_> = dest.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        at.push(c);
        if items.contains_key(&at) {
            continue;
        }
        let item = match merged::find(lowers, &at, false) {
            Ok(Some(f)) if f.meta.is_dir() => Item::Object(f.path, Overrides::default()),
            _ => Item::Dir,
        };
        items.insert(at.clone(), item);
    }
}

/// Writes the layer of `req` into `out`.
pub fn write_files<W: Write>(
    req: &FilesRequest<'_>,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<(W, LayerDigests), FilesError> {
    let what = format!("{} {}", req.instruction, req.dest);
    let fail = |message: String| FilesError::Source { what: what.clone(), message };
    let count = req.sources.paths.len() + req.sources.inline.len();
    let dest = rel(req.dest);
    let dest_is_dir = req.dest.ends_with('/')
        || count > 1
        || dest.as_os_str().is_empty()
        || matches!(merged::find(req.lowers, &dest, true), Ok(Some(f)) if f.meta.is_dir());
    let mut items: BTreeMap<PathBuf, Item> = BTreeMap::new();
    let context_owner = Overrides { owner: Some(req.owner.unwrap_or((0, 0))), mode: req.mode };
    let kept_owner = Overrides { owner: req.owner, mode: req.mode };
    let place = |items: &mut BTreeMap<PathBuf, Item>,
                 entries: Vec<(PathBuf, PathBuf)>,
                 is_dir: bool,
                 name: &Path,
                 o: &Overrides| {
        let top = if is_dir || !dest_is_dir { dest.clone() } else { dest.join(name) };
        parents(items, req.lowers, &top);
        for (r, source) in entries {
            let at = if r.as_os_str().is_empty() { top.clone() } else { top.join(&r) };
            items.insert(at, Item::Object(source, *o));
        }
    };
    for (n, p) in req.sources.paths.iter().enumerate() {
        let src = clean_src(p);
        let name = Path::new(&src).file_name().map(PathBuf::from).unwrap_or_default();
        match req.from {
            Some(stage) => {
                let found = merged::find(stage, Path::new(&src), true)
                    .map_err(|e| fail(format!("{p}: {e}")))?
                    .ok_or_else(|| fail(format!("{p} does not exist in the --from stage")))?;
                let is_dir = found.meta.is_dir();
                let entries = walk_found(found).map_err(|e| fail(format!("{p}: {e}")))?;
                place(&mut items, entries, is_dir, &name, &kept_owner);
            }
            None if req.instruction == "ADD" && is_archive(&req.context.join(&src)) => {
                let into = req.scratch.join(format!("archive-{n}"));
                std::fs::create_dir_all(&into).map_err(|e| fail(format!("{}: {e}", into.display())))?;
                // Not through a symlink: only what is in the context is read.
                let file = std::os::unix::fs::OpenOptionsExt::custom_flags(
                    std::fs::OpenOptions::new().read(true),
                    libc::O_NOFOLLOW,
                )
                .open(req.context.join(&src))
                .map_err(|e| fail(format!("{p}: {e}")))?;
                let opts = crate::oci::UnpackOptions { whiteouts: crate::oci::Whiteouts::Apply, preserve_owners: true };
                crate::oci::unpack_compressed(std::io::BufReader::new(file), &into, &opts)
                    .map_err(|e| fail(format!("{p}: cannot unpack the archive: {e}")))?;
                let root =
                    merged::root(std::slice::from_ref(&into)).ok_or_else(|| fail(format!("{p}: unpacked nothing")))?;
                let entries = walk_found(root).map_err(|e| fail(format!("{p}: {e}")))?;
                // An archive always unpacks into the destination directory.
                let top = dest.clone();
                parents(&mut items, req.lowers, &top.join("x"));
                for (r, source) in entries {
                    let at = if r.as_os_str().is_empty() { top.clone() } else { top.join(&r) };
                    if r.as_os_str().is_empty() && items.contains_key(&at) {
                        continue;
                    }
                    items.insert(at, Item::Object(source, kept_owner));
                }
            }
            None => {
                let entries = tree::copy_entries_with(req.context, Path::new(&src), Rules::Docker(req.ignore))
                    .map_err(|e| fail(format!("{p}: {e}")))?;
                let is_dir =
                    entries.first().is_some_and(|e| std::fs::symlink_metadata(&e.source).is_ok_and(|m| m.is_dir()));
                let entries = entries.into_iter().map(|e| (e.rel, e.source)).collect();
                place(&mut items, entries, is_dir, &name, &context_owner);
            }
        }
    }
    for f in &req.sources.inline {
        let file = req.scratch.join(format!("inline-{}", items.len()));
        std::fs::write(&file, &f.data).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        let o = Overrides { owner: Some(req.owner.unwrap_or((0, 0))), mode: Some(req.mode.unwrap_or(0o644)) };
        place(&mut items, vec![(PathBuf::new(), file)], false, Path::new(&f.name), &o);
    }
    write_items(items, out, epoch, compression).map_err(|source| FilesError::Write { what, source })
}

fn walk_found(found: Found) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    Ok(merged::walk(found)?.into_iter().map(|(r, f)| (r, f.path)).collect())
}

fn write_items<W: Write>(
    items: BTreeMap<PathBuf, Item>,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<(W, LayerDigests), TarWriteError> {
    let mut writer = LayerWriter::new(out, compression, MtimePolicy::Clamp(epoch));
    for (at, item) in &items {
        if at.as_os_str().is_empty() {
            continue; // the root has no entry of its own
        }
        match item {
            Item::Dir => writer.add_dir(at, 0o755)?,
            Item::Object(source, o) => writer.add_as(at, source, o)?,
        }
    }
    writer.finish()
}

/// The layer WORKDIR `path` makes: its missing directories, 0755 root (with
/// the image's own parents as they are); `None` when all exist.
pub fn write_mkdir<W: Write>(
    lowers: &[PathBuf],
    path: &str,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<Option<(W, LayerDigests)>, TarWriteError> {
    let target = rel(path);
    if matches!(merged::find(lowers, &target, true), Ok(Some(_))) {
        return Ok(None);
    }
    let mut items = BTreeMap::new();
    parents(&mut items, lowers, &target.join("x"));
    write_items(items, out, epoch, compression).map(Some)
}
