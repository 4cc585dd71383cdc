//! Making a RUN's `--mount`s ready for its build container
//! ([`crate::build::step::StepMount`]), as BuildKit carries them out:
//!
//! - `type=cache`: a directory of the store's `cache-mounts/` (one per
//!   cache id, the target when no id is given), made on first use with the
//!   mount's mode, uid and gid, and kept between builds; it is never part of
//!   a layer nor of a key. `sharing=locked` holds a lock on the cache for
//!   the step, so two steps never use it at once; `private` takes the lock
//!   if it is free, else the step gets a fresh empty cache of its own
//!   (thrown away after it); `shared` takes none. Builds exclude each
//!   other anyway (each holds the store's exclusive lock): these matter for
//!   stages built side by side.
//! - `type=bind` from the context: a copy of the source (with
//!   `.dockerignore` applied, as BuildKit sees the context) in the step's
//!   scratch directory, so that `rw` writes are thrown away and the context
//!   is never written.
//! - `type=bind,from=STAGE` (or an image): a directory of the stage as an overlay of its
//!   layers (writes go to a scratch upper directory); a file as a read-only
//!   bind of the layer's file, or a copy when `rw`.
//! - `type=tmpfs`: an empty tmpfs.
//! - a `RUN <<EOF` body starting with `#!`: the body written to a file,
//!   0755, mounted read-only at `/dev/pipes/`.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Builder, DockerBuildError, merged};
use crate::build::step::StepMount;
use crate::dockerfile::instruction::Run;
use crate::dockerfile::mount::{MountKind, Sharing};
use crate::resolve::dockerfile::{PIPES_DIR, clean_src, mount_stage, script_heredoc};
use crate::resolve::tree::{self, Rules};
use crate::store::Store;
use crate::sys::lock::{self, FileLock, LockMode};

/// A RUN's mounts, ready, and the cache locks held while the step runs.
pub(super) struct Prepared {
    pub mounts: Vec<StepMount>,
    pub _locks: Vec<FileLock>,
}

/// The directory of the cache with id `id` under the store's
/// `cache-mounts/`: a hash of the id (any text may be an id), with the id
/// written beside the data for listings.
pub fn cache_dir(store: &Store, id: &str) -> PathBuf {
    let hash = blake3::hash(id.as_bytes()).to_hex();
    store.cache_mounts_dir().join(&hash.as_str()[..32])
}

impl Builder<'_> {
    /// Makes the mounts of `run` ready; context copies and overlay scratch
    /// go under `scratch` (the step's scratch directory, removed after it).
    pub(super) fn run_mounts(&self, at: &str, run: &Run, scratch: &Path) -> Result<Prepared, DockerBuildError> {
        let fail = |what: String| {
            let at = at.to_owned();
            move |source: io::Error| DockerBuildError::Mount { at, what, source }
        };
        let mut out = Prepared { mounts: Vec::new(), _locks: Vec::new() };
        let dir = scratch.join("binds");
        for (i, m) in run.mounts.iter().enumerate() {
            let target = m.target.clone();
            match m.kind {
                MountKind::Tmpfs => out.mounts.push(StepMount::Tmpfs { target, size: m.size }),
                MountKind::Cache => {
                    let (source, held) = self.cache_mount(run, i, &dir, &fail)?;
                    out._locks.extend(held);
                    out.mounts.push(StepMount::Bind { source, target, readonly: m.readonly });
                }
                MountKind::Bind => {
                    let source = m.source.clone().unwrap_or_default();
                    let here = dir.join(i.to_string());
                    match &m.from {
                        None => {
                            let src = clean_src(&source);
                            let entries =
                                tree::copy_entries_with(&self.req.context, Path::new(&src), Rules::Docker(self.ignore))
                                    .map_err(|e| fail(format!("read --mount source={source}"))(io::Error::other(e)))?;
                            copy_out(&entries, &here).map_err(fail(format!("copy --mount source={source}")))?;
                            out.mounts.push(StepMount::Bind { source: here, target, readonly: m.readonly });
                        }
                        Some(name) => {
                            let lowers = match mount_stage(self.expanded, name) {
                                Some(k) => self.lowers_upto(self.graph.stages[k].tip, true)?,
                                None => {
                                    let img = &self.mount_images[name.as_str()];
                                    let mut dirs = Vec::new();
                                    for l in img.layers.iter().rev() {
                                        dirs.push(self.store.unpacked_layer(name, l).map_err(Box::new)?);
                                    }
                                    crate::build::distinct_lowers(dirs)
                                }
                            };
                            let rel = clean_src(&source);
                            let found = if rel.is_empty() {
                                merged::root(&lowers)
                            } else {
                                merged::find(&lowers, Path::new(&rel), true)
                                    .map_err(fail(format!("look up {source} in stage {name}")))?
                            };
                            let Some(found) = found else {
                                return Err(fail(format!("--mount from={name},source={source}"))(io::Error::new(
                                    io::ErrorKind::NotFound,
                                    format!("stage {name} has no {source}; name a path the stage has"),
                                )));
                            };
                            if found.meta.is_dir() {
                                out.mounts.push(StepMount::Overlay {
                                    lowers: found.dirs,
                                    target,
                                    readonly: m.readonly,
                                });
                            } else if m.readonly {
                                out.mounts.push(StepMount::Bind { source: found.path, target, readonly: true });
                            } else {
                                std::fs::create_dir_all(&dir).map_err(fail("make the mount directory".into()))?;
                                std::fs::copy(&found.path, &here).map_err(fail(format!("copy {source}")))?;
                                out.mounts.push(StepMount::Bind { source: here, target, readonly: false });
                            }
                        }
                    }
                }
            }
        }
        if let Some(doc) = script_heredoc(&run.command)
            && doc.text().starts_with("#!")
        {
            let pipes = scratch.join("pipes");
            let file = pipes.join(&doc.name);
            std::fs::create_dir_all(&pipes)
                .and_then(|_| std::fs::write(&file, doc.text()))
                .and_then(|_| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)))
                .map_err(fail(format!("write the heredoc {} to run it", doc.name)))?;
            out.mounts.push(StepMount::Bind { source: pipes, target: PIPES_DIR.to_owned(), readonly: true });
        }
        Ok(out)
    }

    /// The directory mount `i` of `run` (a cache mount) binds, made on
    /// first use, and the lock its sharing mode holds for the step.
    fn cache_mount<F, E>(
        &self,
        run: &Run,
        i: usize,
        scratch: &Path,
        fail: &F,
    ) -> Result<(PathBuf, Option<FileLock>), DockerBuildError>
    where
        F: Fn(String) -> E,
        E: FnOnce(io::Error) -> DockerBuildError,
    {
        let m = &run.mounts[i];
        let id = m.id.clone().unwrap_or_else(|| m.target.clone());
        let base = cache_dir(self.store, &id);
        let (mode, uid, gid) = (m.mode.unwrap_or(0o755), m.uid.unwrap_or(0), m.gid.unwrap_or(0));
        // `make.lock` guards making the cache (steps built side by side may
        // make the same one), `lock` its use (`locked`, `private`).
        let open_lock = |name: &str| {
            crate::store::layout::private_dir(&self.store.cache_mounts_dir(), 0o700).or_else(exists_ok)?;
            std::fs::create_dir_all(&base)?;
            std::fs::File::options().create(true).truncate(false).write(true).open(base.join(name))
        };
        let cannot_lock = || fail(format!("lock the cache {id}"));
        {
            let _making = lock::lock(open_lock("make.lock").map_err(cannot_lock())?, LockMode::Exclusive)
                .map_err(cannot_lock())?;
            if !base.join("data").exists() {
                make_cache(&base, &id, mode, uid, gid)
                    .map_err(fail(format!("make the cache directory {} (id {id})", base.display())))?;
            }
        }
        // A second mount of a cache this step holds takes no lock again.
        let held = run.mounts[..i].iter().any(|o| {
            o.kind == MountKind::Cache
                && o.sharing != Sharing::Shared
                && o.id.clone().unwrap_or_else(|| o.target.clone()) == id
        });
        match m.sharing {
            Sharing::Shared => Ok((base.join("data"), None)),
            _ if held => Ok((base.join("data"), None)),
            Sharing::Locked => {
                let l =
                    lock::lock(open_lock("lock").map_err(cannot_lock())?, LockMode::Exclusive).map_err(cannot_lock())?;
                Ok((base.join("data"), Some(l)))
            }
            // In use by another step: this one gets a fresh, empty cache of
            // its own, as in BuildKit (thrown away with the step here).
            Sharing::Private => {
                match lock::try_lock(open_lock("lock").map_err(cannot_lock())?, LockMode::Exclusive)
                    .map_err(cannot_lock())?
                {
                    Some(l) => Ok((base.join("data"), Some(l))),
                    None => {
                        let fresh = scratch.join(format!("private-{i}"));
                        make_cache(&fresh, &id, mode, uid, gid)
                            .map_err(fail(format!("make a private cache for {id}")))?;
                        Ok((fresh.join("data"), None))
                    }
                }
            }
        }
    }
}

/// Makes a cache directory: `base/id` names the cache, `base/data` (mode,
/// owner as the mount asks) holds it. `data` is renamed in last, so a cache
/// directory that exists is complete.
fn make_cache(base: &Path, id: &str, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
    std::fs::create_dir_all(base)?;
    std::fs::write(base.join("id"), id)?;
    let fresh = base.join("data.new");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir(&fresh)?;
    std::os::unix::fs::chown(&fresh, Some(uid), Some(gid))?;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&fresh, base.join("data"))
}

fn exists_ok(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) }
}

/// Copies context entries (as [`tree::copy_entries_with`] lists them, the
/// source itself first) to `dest`: directories with their modes, files,
/// symlinks as links.
fn copy_out(entries: &[tree::CopyEntry], dest: &Path) -> io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut dirs = Vec::new();
    for e in entries {
        let to = if e.rel.as_os_str().is_empty() { dest.to_path_buf() } else { dest.join(&e.rel) };
        let meta = std::fs::symlink_metadata(&e.source)?;
        if meta.is_dir() {
            std::fs::create_dir(&to)?;
            dirs.push((to, meta.permissions().mode() & 0o7777));
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&e.source)?, &to)?;
        } else {
            std::fs::copy(&e.source, &to)?;
        }
    }
    // Modes last, deepest first: a read-only directory is filled first.
    for (dir, mode) in dirs.into_iter().rev() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The directories above the mount targets `targets` that the lowers do
/// not have (the runtime makes them for the mount points), deepest first,
/// relative to the root.
pub(super) fn stub_parents(lowers: &[PathBuf], targets: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for t in targets {
        let rel = Path::new(t.trim_start_matches('/'));
        for a in rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            let missing = matches!(merged::find(lowers, a, false), Ok(None));
            if missing && !out.iter().any(|o| o == a) {
                out.push(a.to_path_buf());
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// Adds to `exclude` each of `stubs` (deepest first) that the step left
/// holding nothing but excluded paths, as BuildKit removes the mount stubs
/// it made.
pub(super) fn exclude_stubs(upper: &Path, stubs: &[PathBuf], exclude: &mut std::collections::HashSet<PathBuf>) {
    for s in stubs {
        let Ok(entries) = std::fs::read_dir(upper.join(s)) else { continue };
        let only_excluded = entries.flatten().all(|e| exclude.contains(&s.join(e.file_name())));
        if only_excluded {
            exclude.insert(s.clone());
        }
    }
}
