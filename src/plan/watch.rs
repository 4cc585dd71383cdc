//! `berth up --watch`: keep the machine matching berth.toml as files change.
//!
//! One reconcile ([`super::up::up`]) runs at start; then the project
//! directory is watched (inotify, through the `notify` crate) and every
//! change to `berth.toml`, `berth.lock` or a file under an env's `copy`
//! source or `build` context (unless a `.berthignore` rule excludes it;
//! a context outside the project directory is not watched) starts another, once
//! the changes have settled for [`SETTLE`]. Each reconcile is an ordinary
//! `up`: the build's cache keys decide what is rebuilt and the container
//! specs what is recreated, so a copied file's edit rebuilds from its layer
//! on and recreates only the envs that use it. A manifest that does not
//! load, or a build that fails, is reported and leaves the running envs as
//! they are; the watch goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::up::{Action, UpError, UpOptions, up};
use crate::build::Event;
use crate::manifest::{self, LOCK_FILE};
use crate::resolve::tree::IGNORE_FILE;

/// How long changes must pause before a reconcile starts.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Why the watch itself could not run.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: {source}", dir.display())]
    Watch { dir: PathBuf, source: notify::Error },
}

/// What the watch tells its caller.
pub enum WatchEvent<'a> {
    /// Watching `dir`; nothing happens until a file there changes.
    Watching { dir: &'a Path },
    /// These files changed; a reconcile starts.
    Changed { paths: &'a [PathBuf] },
    /// A reconcile finished.
    Reconciled { actions: &'a BTreeMap<String, Action> },
    /// A reconcile failed; the envs are as they were.
    Failed { error: &'a UpError },
}

/// The files whose changes matter to a project.
struct Watched {
    dir: PathBuf,
    manifest: PathBuf,
    lock: PathBuf,
    /// Every env's copy sources and build contexts, absolute.
    sources: Vec<PathBuf>,
}

impl Watched {
    /// From the manifest as it is now; an unreadable manifest keeps the
    /// copy sources of `before`.
    fn of(manifest_path: &Path, before: Option<Watched>) -> Watched {
        let manifest_path = std::path::absolute(manifest_path).unwrap_or_else(|_| manifest_path.to_path_buf());
        let dir = manifest_path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let sources = match manifest::load(&manifest_path) {
            Ok(m) => m
                .envs
                .values()
                .flat_map(|e| {
                    let context = match &e.base {
                        manifest::Base::Build(b) => Some(b.context_dir(&dir)),
                        _ => None,
                    };
                    e.copy.iter().map(|c| dir.join(&c.src)).chain(context)
                })
                .collect(),
            Err(_) => before.map(|b| b.sources).unwrap_or_default(),
        };
        Watched { lock: dir.join(LOCK_FILE), manifest: manifest_path, sources, dir }
    }

    /// Whether a change to `path` can change what `up` does.
    fn relevant(&self, path: &Path) -> bool {
        if path == self.manifest || path == self.lock {
            return true;
        }
        self.sources.iter().any(|s| path.starts_with(s)) && !self.ignored(path)
    }

    /// Whether the `.berthignore` files from the project directory down to
    /// the path's directory exclude it (deeper files decide over higher
    /// ones, as in git).
    fn ignored(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.dir) else { return false };
        let mut at = self.dir.clone();
        let mut dirs = vec![at.clone()];
        for part in rel.parent().into_iter().flat_map(Path::components) {
            at.push(part);
            dirs.push(at.clone());
        }
        let mut ignored = false;
        for dir in dirs {
            let (rules, _) = ignore::gitignore::Gitignore::new(dir.join(IGNORE_FILE));
            match rules.matched_path_or_any_parents(path, path.is_dir()) {
                m if m.is_ignore() => ignored = true,
                m if m.is_whitelist() => ignored = false,
                _ => {}
            }
        }
        ignored
    }
}

/// Reconciles once, then again after every relevant change, until `stop`
/// is set.
pub fn watch(
    manifest_path: &Path,
    store_root: &Path,
    opts: &UpOptions,
    progress: &(dyn Fn(Event) + Sync),
    report: &mut dyn FnMut(WatchEvent),
    stop: &AtomicBool,
) -> Result<(), WatchError> {
    let mut watched = Watched::of(manifest_path, None);
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            let _ = tx.send(event.paths);
        }
    })
    .map_err(|source| WatchError::Watch { dir: watched.dir.clone(), source })?;
    watcher
        .watch(&watched.dir, RecursiveMode::Recursive)
        .map_err(|source| WatchError::Watch { dir: watched.dir.clone(), source })?;
    let reconcile = |watched: &Watched, report: &mut dyn FnMut(WatchEvent)| {
        match up(manifest_path, store_root, opts, progress) {
            Ok(actions) => report(WatchEvent::Reconciled { actions: &actions }),
            Err(error) => report(WatchEvent::Failed { error: &error }),
        }
        // `up` may have written the lock: that is no change of the user's.
        std::fs::read(&watched.lock).ok()
    };
    let mut lock = reconcile(&watched, report);
    report(WatchEvent::Watching { dir: &watched.dir });
    while !stop.load(Ordering::SeqCst) {
        let Ok(first) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
        let mut changed = first;
        let mut last = Instant::now();
        while last.elapsed() < SETTLE && !stop.load(Ordering::SeqCst) {
            if let Ok(more) = rx.recv_timeout(Duration::from_millis(50)) {
                changed.extend(more);
                last = Instant::now();
            }
        }
        changed.sort();
        changed.dedup();
        changed.retain(|p| watched.relevant(p));
        let only_our_lock = changed.iter().all(|p| *p == watched.lock) && std::fs::read(&watched.lock).ok() == lock;
        if changed.is_empty() || only_our_lock {
            continue;
        }
        report(WatchEvent::Changed { paths: &changed });
        watched = Watched::of(manifest_path, Some(watched));
        lock = reconcile(&watched, report);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Watched;

    #[test]
    fn a_build_context_is_watched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(p.join("svc/app")).unwrap();
        std::fs::create_dir_all(p.join("other")).unwrap();
        std::fs::write(p.join("svc/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(p.join("berth.toml"), "[env.a]\nbuild = \"./svc\"\n").unwrap();
        let w = Watched::of(&p.join("berth.toml"), None);
        assert!(w.relevant(&p.join("svc/app/index.html")));
        assert!(w.relevant(&p.join("svc/Dockerfile")));
        assert!(!w.relevant(&p.join("other/x")));
    }
}
