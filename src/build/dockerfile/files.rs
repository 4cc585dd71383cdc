//! The layers of a Dockerfile's `files` and `mkdir` nodes, written straight
//! from their sources — no build container: COPY/ADD of several sources
//! (wildcards expanded as BuildKit does, `resolve::dockerfile::glob`), of a
//! file to a path, of an inline heredoc file, `COPY --from` a stage or an
//! image (read through its layers, `merged`), ADD of a local tar archive
//! (unpacked with the store's safe reader, gzip and zstd too) or of a URL
//! ([`super::url`]), with `--chmod` (octal or symbolic), `--link` (written
//! as if nothing were below), `--parents` and `--exclude`; and WORKDIR's
//! missing directories.
//!
//! Docker's placement rules: a directory's *contents* go into the
//! destination (the image's directory as it is, or a new one 0755, owned by
//! root or `--chown`: `--chmod` and the source directory's own mode do not
//! reach it); a file becomes the destination, or goes into it when it
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
use super::url;
use crate::dockerfile::ignore::Ignore;
use crate::oci::{Compression, LayerDigests, LayerWriter, MtimePolicy, Overrides, TarWriteError};
use crate::resolve::dockerfile::chmod::Chmod;
use crate::resolve::dockerfile::copy::{self as rcopy, CopySpec, Fetched, is_url, url_name};
use crate::resolve::dockerfile::glob::{self, Lister};
use crate::resolve::dockerfile::{clean_src, is_archive};
use crate::resolve::tree::{self, Rules};

/// Why a files layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{what}: {message}")]
    Source { what: String, message: String },
    #[error("{what}: {source}")]
    Write { what: String, source: TarWriteError },
    #[error(transparent)]
    Url(#[from] url::UrlError),
}

/// What a `files` node copies.
pub struct FilesRequest<'a> {
    /// The COPY or ADD: sources, `--chmod`, `--link`, `--parents`, …
    pub spec: &'a CopySpec<'a>,
    pub context: &'a Path,
    pub ignore: &'a Ignore,
    /// The `--from` stage's or image's layers (top first), when sources come from it.
    pub from: Option<&'a [PathBuf]>,
    /// The layers below this step (top first).
    pub lowers: &'a [PathBuf],
    /// Absolute; a trailing `/` means "into this directory".
    pub dest: &'a str,
    pub owner: Option<(u32, u32)>,
    /// An empty directory for inline files, unpacked archives and fetched URLs.
    pub scratch: &'a Path,
    /// URLs fetched before the build (those without `--checksum`).
    pub fetched: &'a BTreeMap<String, Fetched>,
}

enum Item {
    /// A new directory, 0755, root's or `--chown`'s (as BuildKit and
    /// buildah make the parents they create).
    Dir(Option<(u32, u32)>),
    /// An object on disk, written with `Overrides`.
    Object(PathBuf, Overrides),
}

fn rel(p: &str) -> PathBuf {
    PathBuf::from(p.trim_start_matches('/'))
}

/// Adds the parents of `dest` (relative) that are not there yet: the image's
/// own directories as they are, missing ones 0755 owned by `owner` (root
/// when `None`).
fn parents_owned(items: &mut BTreeMap<PathBuf, Item>, lowers: &[PathBuf], dest: &Path, owner: Option<(u32, u32)>) {
    let mut at = PathBuf::new();
    let comps: Vec<_> = dest.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        at.push(c);
        if items.contains_key(&at) {
            continue;
        }
        let item = match merged::find(lowers, &at, false) {
            Ok(Some(f)) if f.meta.is_dir() => Item::Object(f.path, Overrides::default()),
            _ => Item::Dir(owner),
        };
        items.insert(at.clone(), item);
    }
}

/// The destination a directory's contents go into (`dest` relative): the
/// image's own directory as it is, else made 0755 and owned by `owner` —
/// never the source directory's mode, owner or `--chmod` (BuildKit makes it
/// before copying into it and copies no metadata onto it). `source` is the
/// source directory, written with those overrides.
fn contents_dir(lowers: &[PathBuf], dest: &Path, source: PathBuf, owner: (u32, u32)) -> Item {
    match merged::find(lowers, dest, false) {
        Ok(Some(f)) if f.meta.is_dir() => Item::Object(f.path, Overrides::default()),
        _ => Item::Object(source, Overrides { owner: Some(owner), mode: Some(0o755) }),
    }
}

/// A stage's or image's layers as a wildcard [`Lister`].
struct LayersTree<'a>(&'a [PathBuf]);

impl Lister for LayersTree<'_> {
    fn list(&self, dir: &str) -> std::io::Result<Option<Vec<(String, bool)>>> {
        merged::list(self.0, Path::new(dir))
    }
}

/// Owner and mode of one entry: `--chown` (else `owner`), `--chmod` applied
/// to the entry's own mode.
fn overrides(source: &Path, owner: Option<(u32, u32)>, chmod: Option<&Chmod>) -> Overrides {
    let mode = chmod.and_then(|c| {
        let meta = std::fs::symlink_metadata(source).ok()?;
        (!meta.file_type().is_symlink())
            .then(|| c.apply(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()), meta.is_dir()))
    });
    Overrides { owner, mode }
}

/// Writes the layer of `req` into `out`.
pub fn write_files<W: Write>(
    req: &FilesRequest<'_>,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<(W, LayerDigests), FilesError> {
    let spec = req.spec;
    let what = format!("{} {}", spec.instruction, req.dest);
    let fail = |message: String| FilesError::Source { what: what.clone(), message };
    let chmod = spec.chmod.map(Chmod::parse).transpose().map_err(fail)?;
    let exclude = spec.exclude().map_err(fail)?;
    let excluded = |p: &str| exclude.as_ref().is_some_and(|e| !p.is_empty() && e.matches(p));
    // --link: written as if nothing were below (BuildKit copies into an empty directory).
    let lowers: &[PathBuf] = if spec.linked() { &[] } else { req.lowers };
    let count = spec.sources.paths.len() + spec.sources.inline.len();
    let dest = rel(req.dest);
    let dest_is_dir = req.dest.ends_with('/')
        || count > 1
        || dest.as_os_str().is_empty()
        || matches!(merged::find(lowers, &dest, true), Ok(Some(f)) if f.meta.is_dir());
    let mut items: BTreeMap<PathBuf, Item> = BTreeMap::new();
    let context_owner = Some(req.owner.unwrap_or((0, 0)));
    let mut placed = 0usize;
    // Where one source goes: a directory's contents into the destination
    // (or under its path with --parents), a file into or as it.
    let top_of = |is_dir: bool, name: &Path, keep: Option<&str>| -> PathBuf {
        match keep {
            Some(k) => dest.join(k),
            None if is_dir || !dest_is_dir => dest.clone(),
            None => dest.join(name),
        }
    };
    for (n, p) in spec.sources.paths.iter().enumerate() {
        if is_url(p) {
            let file = match req.fetched.get(p) {
                Some(f) => {
                    if let Some(expected) = spec.checksum {
                        url::verify(p, f, expected)?;
                    }
                    f.clone()
                }
                None => url::fetch(p, &req.scratch.join(format!("url-{n}")), spec.checksum)?,
            };
            if let Some(t) = file.mtime {
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
                let f = std::fs::File::options().write(true).open(&file.path);
                f.and_then(|f| f.set_modified(when)).map_err(|e| fail(format!("{p}: {e}")))?;
            }
            let top = top_of(false, Path::new(&url_name(p)), None);
            parents_owned(&mut items, lowers, &top, req.owner);
            let mode = Some(chmod.as_ref().map_or(0o600, |c| c.apply(0o600, false)));
            items.insert(top, Item::Object(file.path, Overrides { owner: context_owner, mode }));
            placed += 1;
            continue;
        }
        match req.from {
            Some(stage) => {
                let src = clean_src(p);
                let found = glob::expand(&LayersTree(stage), &src).map_err(|m| fail(format!("{p}: {m}")))?;
                for m in found {
                    let f = merged::find(stage, Path::new(&m), true)
                        .map_err(|e| fail(format!("{m}: {e}")))?
                        .ok_or_else(|| fail(format!("{m} does not exist in the --from stage or image")))?;
                    let is_dir = f.meta.is_dir();
                    let name = Path::new(&m).file_name().map(PathBuf::from).unwrap_or_default();
                    let keep = spec.parents.then(|| rcopy::parents_path(p, &m));
                    let top = top_of(is_dir, &name, keep.as_deref());
                    match &keep {
                        Some(k) => {
                            // --parents: the directories on the way, as the stage has them.
                            let pivot = m[..m.len() - k.len()].trim_end_matches('/');
                            parents_owned(&mut items, lowers, &dest.join("x"), req.owner);
                            let (mut at, mut from) = (dest.clone(), PathBuf::from(pivot));
                            let comps: Vec<_> = Path::new(k).components().collect();
                            for c in &comps[..comps.len().saturating_sub(1)] {
                                at.push(c);
                                from.push(c);
                                let item = match merged::find(stage, &from, true) {
                                    Ok(Some(d)) => {
                                        let o = overrides(&d.path, req.owner, chmod.as_ref());
                                        Item::Object(d.path, o)
                                    }
                                    _ => Item::Dir(req.owner),
                                };
                                items.entry(at.clone()).or_insert(item);
                            }
                        }
                        None => parents_owned(&mut items, lowers, &top, req.owner),
                    }
                    for (r, source) in walk_found(f).map_err(|e| fail(format!("{m}: {e}")))? {
                        if excluded(&r.to_string_lossy()) {
                            continue;
                        }
                        if r.as_os_str().is_empty() && is_dir && keep.is_none() {
                            let owner = req.owner.unwrap_or((0, 0));
                            items.entry(top.clone()).or_insert_with(|| contents_dir(lowers, &top, source, owner));
                            continue;
                        }
                        let at = if r.as_os_str().is_empty() { top.clone() } else { top.join(&r) };
                        let o = overrides(&source, req.owner, chmod.as_ref());
                        items.insert(at, Item::Object(source, o));
                    }
                    placed += 1;
                }
            }
            None => {
                let matches =
                    rcopy::context_matches(req.context, req.ignore, p).map_err(|m| fail(format!("{p}: {m}")))?;
                for m in matches {
                    if excluded(&m.below_base) {
                        continue;
                    }
                    placed += 1;
                    // The source itself is followed (inside the context); links below it stay links.
                    let real = rcopy::follow(req.context, &m.path).map_err(fail)?;
                    if spec.add() && is_archive(&req.context.join(&real)) {
                        unpack(req, &mut items, lowers, &dest, n, &real, p, chmod.as_ref()).map_err(fail)?;
                        continue;
                    }
                    let entries = tree::copy_entries_with(req.context, Path::new(&real), Rules::Docker(req.ignore))
                        .map_err(|e| fail(format!("{}: {e}", m.path)))?;
                    let is_dir =
                        entries.first().is_some_and(|e| std::fs::symlink_metadata(&e.source).is_ok_and(|m| m.is_dir()));
                    let name = Path::new(&m.path).file_name().map(PathBuf::from).unwrap_or_default();
                    let keep = spec.parents.then(|| rcopy::parents_path(p, &m.path));
                    let top = top_of(is_dir, &name, keep.as_deref());
                    if let Some(k) = &keep {
                        // --parents: the directories on the way, as the context has them.
                        let pivot = &m.path[..m.path.len() - k.len()];
                        let mut at = dest.clone();
                        let mut from = req.context.join(pivot);
                        let comps: Vec<_> = Path::new(k).components().collect();
                        parents_owned(&mut items, lowers, &dest.join("x"), req.owner);
                        for c in &comps[..comps.len().saturating_sub(1)] {
                            at.push(c);
                            from.push(c);
                            let o = overrides(&from, context_owner, chmod.as_ref());
                            items.entry(at.clone()).or_insert(Item::Object(from.clone(), o));
                        }
                    } else {
                        parents_owned(&mut items, lowers, &top, req.owner);
                    }
                    for e in entries {
                        if excluded(&e.rel.to_string_lossy()) {
                            continue;
                        }
                        if e.rel.as_os_str().is_empty() && is_dir && keep.is_none() {
                            let owner = req.owner.unwrap_or((0, 0));
                            items.entry(top.clone()).or_insert_with(|| contents_dir(lowers, &top, e.source, owner));
                            continue;
                        }
                        let at = if e.rel.as_os_str().is_empty() { top.clone() } else { top.join(&e.rel) };
                        let o = overrides(&e.source, context_owner, chmod.as_ref());
                        items.insert(at, Item::Object(e.source, o));
                    }
                }
            }
        }
    }
    for f in &spec.sources.inline {
        let file = req.scratch.join(format!("inline-{}", items.len()));
        std::fs::write(&file, &f.data).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        let mode = Some(chmod.as_ref().map_or(0o644, |c| c.apply(0o644, false)));
        let top = top_of(false, Path::new(&f.name), None);
        parents_owned(&mut items, lowers, &top, req.owner);
        items.insert(top, Item::Object(file, Overrides { owner: context_owner, mode }));
        placed += 1;
    }
    if placed > 1 && !dest_is_dir {
        return Err(fail(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /; the sources matched {placed} files, so write {}/",
            spec.instruction, req.dest
        )));
    }
    let empty = req.scratch.join("empty-dir");
    std::fs::create_dir_all(&empty).map_err(|e| fail(format!("{}: {e}", empty.display())))?;
    write_items(items, Some(&empty), out, epoch, compression).map_err(|source| FilesError::Write { what, source })
}

/// ADD of a context archive: unpacked into the destination directory,
/// owners kept unless `--chown` says otherwise.
#[allow(clippy::too_many_arguments)]
fn unpack(
    req: &FilesRequest<'_>,
    items: &mut BTreeMap<PathBuf, Item>,
    lowers: &[PathBuf],
    dest: &Path,
    n: usize,
    src: &str,
    p: &str,
    chmod: Option<&Chmod>,
) -> Result<(), String> {
    let into = req.scratch.join(format!("archive-{n}-{}", items.len()));
    std::fs::create_dir_all(&into).map_err(|e| format!("{}: {e}", into.display()))?;
    // Not through a symlink: only what is in the context is read.
    let file =
        std::os::unix::fs::OpenOptionsExt::custom_flags(std::fs::OpenOptions::new().read(true), libc::O_NOFOLLOW)
            .open(req.context.join(src))
            .map_err(|e| format!("{p}: {e}"))?;
    let opts = crate::oci::UnpackOptions { whiteouts: crate::oci::Whiteouts::Apply, preserve_owners: true };
    crate::oci::unpack_compressed(std::io::BufReader::new(file), &into, &opts)
        .map_err(|e| format!("{p}: cannot unpack the archive: {e}"))?;
    let root = merged::root(std::slice::from_ref(&into)).ok_or_else(|| format!("{p}: unpacked nothing"))?;
    let entries = walk_found(root).map_err(|e| format!("{p}: {e}"))?;
    // An archive always unpacks into the destination directory.
    let top = dest.to_path_buf();
    parents_owned(items, lowers, &top.join("x"), req.owner);
    for (r, source) in entries {
        let at = if r.as_os_str().is_empty() { top.clone() } else { top.join(&r) };
        if r.as_os_str().is_empty() && items.contains_key(&at) {
            continue;
        }
        let o = overrides(&source, req.owner, chmod);
        items.insert(at, Item::Object(source, o));
    }
    Ok(())
}

fn walk_found(found: Found) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    Ok(merged::walk(found)?.into_iter().map(|(r, f)| (r, f.path)).collect())
}

/// Writes `items`; `empty` is an empty directory standing for new
/// directories with an owner.
fn write_items<W: Write>(
    items: BTreeMap<PathBuf, Item>,
    empty: Option<&Path>,
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
            Item::Dir(Some(owner)) if let Some(empty) = empty => {
                writer.add_as(at, empty, &Overrides { owner: Some(*owner), mode: Some(0o755) })?
            }
            Item::Dir(_) => writer.add_dir(at, 0o755)?,
            Item::Object(source, o) => writer.add_as(at, source, o)?,
        }
    }
    writer.finish()
}

/// The layer WORKDIR `path` makes: its missing directories, 0755, owned by
/// `owner` (the USER's ids; root when `None`), with the image's own parents
/// as they are; `None` when all exist. `empty` is an empty directory (it
/// stands for the new directories).
pub fn write_mkdir<W: Write>(
    lowers: &[PathBuf],
    path: &str,
    owner: Option<(u32, u32)>,
    empty: &Path,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<Option<(W, LayerDigests)>, TarWriteError> {
    let target = rel(path);
    if matches!(merged::find(lowers, &target, true), Ok(Some(_))) {
        return Ok(None);
    }
    let mut items = BTreeMap::new();
    parents_owned(&mut items, lowers, &target.join("x"), owner);
    write_items(items, Some(empty), out, epoch, compression).map(Some)
}
