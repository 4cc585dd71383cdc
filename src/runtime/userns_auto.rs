//! `--userns=auto` (root only): which user namespace a container gets, and
//! the host-wide record of the id ranges handed out.
//!
//! # One record per host, not per store
//!
//! A container with a namespace of its own gets [`AUTO_SIZE`] host ids from
//! [`AUTO_BASE`] up; its root is an unprivileged host id that owns the
//! files the container writes. Two containers sharing a range could reach
//! each other's files and signal each other's processes, and two stores
//! (two `--root` directories) know nothing of each other's containers. So
//! the ranges are recorded where every store of the host sees them:
//! [`HOST_RANGES_DIR`] (root's, mode 0700), one file per range, named by
//! its first host id, holding the directory of the container that uses it
//! and the pid of the berth process that allocated it. Allocation and
//! release take the directory's `lock` (`flock`), so two `berth run` at
//! once, for one store or two, never take one range.
//!
//! podman keeps its `--userns=auto` allocations per storage, picking ranges
//! from the subordinate ids of the user `containers`; berth takes ranges
//! above 2^31, where neither system users nor `/etc/subuid` ranges
//! (from 100000) normally live, and needs no `/etc/subuid` entry.
//!
//! # Ranges outlive their containers only by accident
//!
//! Removing a container releases its range. A range whose container
//! directory is gone (a store deleted with `rm -rf`, a crash between the two
//! steps) and whose allocating process has ended is taken back by the next
//! allocation; the allocating process's pid keeps a range whose container
//! is still being made from looking abandoned.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::lock::{self, LockMode};

/// Which user namespace a container gets (`berth run --userns`,
/// `userns = "…"` in berth.toml, `[run] userns` in the store's config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsernsMode {
    /// berth's own: the host's as root, the store's as an ordinary user.
    #[default]
    Host,
    /// A namespace of its own with an unprivileged range of [`AUTO_SIZE`]
    /// ids (root only): container root is nobody on the host.
    Auto,
}

impl UsernsMode {
    /// Whether this is [`UsernsMode::Host`] (for serde's `skip_serializing_if`).
    pub fn is_host(&self) -> bool {
        *self == UsernsMode::Host
    }
}

impl std::str::FromStr for UsernsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(UsernsMode::Host),
            "auto" => Ok(UsernsMode::Auto),
            other => Err(format!(
                "bad userns {other:?}: expected \"host\" (berth's own namespace, the default) or \"auto\" \
                 (an unprivileged id range of the container's own)"
            )),
        }
    }
}

impl std::fmt::Display for UsernsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UsernsMode::Host => "host",
            UsernsMode::Auto => "auto",
        })
    }
}

/// The namespace the container of an env that asks for `mode` (in
/// berth.toml, or by the store's default, also for `berth run`) gets. Without root every
/// container already runs in the store's user namespace, whose root is the
/// user, so there `auto` is that namespace: a berth.toml shared by a team
/// works for those who run berth as root and those who do not. (Only the
/// explicit `berth run --userns=auto` is refused without root.)
pub fn for_env(mode: UsernsMode) -> UsernsMode {
    if super::userns::rootless() { UsernsMode::Host } else { mode }
}

/// Where `--userns=auto` ranges start: far above every uid a system or a
/// subordinate range (`/etc/subuid`, from 100000) normally uses.
pub const AUTO_BASE: u32 = 1 << 31;
/// The size of one `--userns=auto` range (ids 0..=65535 inside).
pub const AUTO_SIZE: u32 = 65536;
/// How many ranges fit above [`AUTO_BASE`].
const SLOTS: u32 = (u32::MAX - AUTO_BASE) / AUTO_SIZE - 1;

/// Where root's berth records the ranges it handed out, for every store.
pub const HOST_RANGES_DIR: &str = "/var/lib/berth-userns";

/// Why a range could not be allocated or released.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("--userns=auto: cannot {action} {}: {source} (the record of id ranges every store of this host shares)", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error(
        "--userns=auto: every id range above {AUTO_BASE} is in use (records in {}); remove containers that use one",
        dir.display()
    )]
    Exhausted { dir: PathBuf },
}

/// The host-wide record of `--userns=auto` ranges, kept in one directory.
#[derive(Debug, Clone)]
pub struct Ranges {
    dir: PathBuf,
}

/// One recorded range: who uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    owner: PathBuf,
    pid: i32,
}

impl Entry {
    fn parse(text: &str) -> Option<Entry> {
        let mut lines = text.lines();
        let owner = PathBuf::from(lines.next()?);
        let pid = lines.next()?.trim().parse().ok()?;
        Some(Entry { owner, pid })
    }

    fn text(&self) -> String {
        format!("{}\n{}\n", self.owner.display(), self.pid)
    }

    /// Still in use: the container's directory exists, or the process that
    /// allocated it (and may be making that directory) still runs.
    fn live(&self) -> bool {
        self.owner.exists() || Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl Ranges {
    /// The record every store of this host shares ([`HOST_RANGES_DIR`]).
    pub fn host() -> Ranges {
        Ranges::at(Path::new(HOST_RANGES_DIR))
    }

    /// A record kept in `dir` (tests).
    pub fn at(dir: &Path) -> Ranges {
        Ranges { dir: dir.to_path_buf() }
    }

    fn io<'a>(&self, action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RangeError + 'a {
        move |source| RangeError::Io { action, path: path.to_path_buf(), source }
    }

    /// Takes the record's lock, making the directory (mode 0700) first.
    fn lock(&self) -> Result<lock::FileLock, RangeError> {
        use std::os::unix::fs::DirBuilderExt;
        match fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) => return Err(self.io("make", &self.dir)(e)),
        }
        let path = self.dir.join("lock");
        let file =
            File::options().create(true).truncate(false).write(true).open(&path).map_err(self.io("open", &path))?;
        lock::lock(file, LockMode::Exclusive).map_err(self.io("lock", &path))
    }

    /// Every recorded range and who uses it.
    fn entries(&self) -> Result<Vec<(u32, PathBuf, Option<Entry>)>, RangeError> {
        let mut out = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(self.io("list", &self.dir))? {
            let item = item.map_err(self.io("list", &self.dir))?;
            let Some(base) = item.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let path = item.path();
            let entry = fs::read_to_string(&path).ok().and_then(|t| Entry::parse(&t));
            out.push((base, path, entry));
        }
        Ok(out)
    }

    /// Allocates the lowest free range for the container whose directory
    /// will be `owner`, also avoiding the bases in `also_used` (what the
    /// caller's store records, for containers made before this record
    /// existed). Ranges no one uses any more are taken back.
    pub fn allocate(&self, owner: &Path, also_used: &BTreeSet<u32>) -> Result<u32, RangeError> {
        let _held = self.lock()?;
        let mut used = also_used.clone();
        for (base, path, entry) in self.entries()? {
            // An unreadable entry is being written by no one (writes are
            // renames under the lock): it counts as used, to be safe.
            if entry.as_ref().is_some_and(|e| !e.live()) {
                fs::remove_file(&path).map_err(self.io("remove the abandoned range", &path))?;
            } else {
                used.insert(base);
            }
        }
        let base = (0..SLOTS)
            .map(|slot| AUTO_BASE + slot * AUTO_SIZE)
            .find(|b| !used.contains(b))
            .ok_or_else(|| RangeError::Exhausted { dir: self.dir.clone() })?;
        let owner = std::path::absolute(owner).map_err(self.io("find", owner))?;
        let entry = Entry { owner, pid: std::process::id() as i32 };
        let path = self.dir.join(base.to_string());
        let tmp = self.dir.join(format!(".{base}.tmp"));
        fs::write(&tmp, entry.text())
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(self.io("record the range in", &path))?;
        Ok(base)
    }

    /// Releases the range at `base` if `owner` holds it.
    pub fn release(&self, base: u32, owner: &Path) -> Result<(), RangeError> {
        if !self.dir.exists() {
            return Ok(());
        }
        let owner = std::path::absolute(owner).map_err(self.io("find", owner))?;
        let _held = self.lock()?;
        let path = self.dir.join(base.to_string());
        match fs::read_to_string(&path) {
            Ok(text) if Entry::parse(&text).is_some_and(|e| e.owner == owner) => {
                fs::remove_file(&path).map_err(self.io("remove", &path))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("read", &path)(e)),
        }
    }

    /// The ranges recorded now, by first host id, with their owners.
    pub fn list(&self) -> Result<Vec<(u32, PathBuf)>, RangeError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let _held = self.lock()?;
        let mut out: Vec<(u32, PathBuf)> =
            self.entries()?.into_iter().filter_map(|(b, _, e)| Some((b, e?.owner))).collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("auto".parse::<UsernsMode>().unwrap(), UsernsMode::Auto);
        assert_eq!("host".parse::<UsernsMode>().unwrap(), UsernsMode::Host);
        let bad = "keep-id".parse::<UsernsMode>().unwrap_err();
        assert!(bad.contains("\"keep-id\"") && bad.contains("\"auto\""), "{bad}");
        assert_eq!(UsernsMode::Auto.to_string(), "auto");
    }

    #[test]
    fn ranges_are_disjoint_and_lowest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let ranges = Ranges::at(&tmp.path().join("r"));
        let (a, b) = (tmp.path().join("store1/containers/a"), tmp.path().join("store2/containers/b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let first = ranges.allocate(&a, &BTreeSet::new()).unwrap();
        let second = ranges.allocate(&b, &BTreeSet::new()).unwrap();
        assert_eq!(first, AUTO_BASE);
        assert_eq!(second, AUTO_BASE + AUTO_SIZE);
        assert_eq!(ranges.list().unwrap(), [(first, a.clone()), (second, b.clone())]);

        // A store's own containers' bases are avoided too.
        let c = tmp.path().join("store1/containers/c");
        let used = BTreeSet::from([AUTO_BASE + 2 * AUTO_SIZE]);
        assert_eq!(ranges.allocate(&c, &used).unwrap(), AUTO_BASE + 3 * AUTO_SIZE);

        // Released: the lowest range is free again; only its owner frees it.
        ranges.release(first, &b).unwrap();
        assert_eq!(ranges.list().unwrap().len(), 3, "b does not hold the first range");
        ranges.release(first, &a).unwrap();
        let d = tmp.path().join("d");
        assert_eq!(ranges.allocate(&d, &BTreeSet::new()).unwrap(), AUTO_BASE);
    }

    #[test]
    fn abandoned_ranges_are_taken_back_but_not_ones_being_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        let ranges = Ranges::at(&dir);
        // This process allocates for a container directory not made yet:
        // the range stays taken while the allocating process lives.
        let pending = tmp.path().join("pending");
        assert_eq!(ranges.allocate(&pending, &BTreeSet::new()).unwrap(), AUTO_BASE);
        assert_eq!(ranges.allocate(&tmp.path().join("x"), &BTreeSet::new()).unwrap(), AUTO_BASE + AUTO_SIZE);

        // A range whose container is gone and whose allocator has ended
        // (pid 0 never names a process in /proc) is free again.
        let gone = Entry { owner: tmp.path().join("deleted-store/containers/z"), pid: 0 };
        fs::write(dir.join(AUTO_BASE.to_string()), gone.text()).unwrap();
        assert_eq!(ranges.allocate(&tmp.path().join("y"), &BTreeSet::new()).unwrap(), AUTO_BASE);
        assert_eq!(ranges.list().unwrap().len(), 2);
    }

    #[test]
    fn releasing_without_a_record_is_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        Ranges::at(&tmp.path().join("none")).release(AUTO_BASE, tmp.path()).unwrap();
        assert!(!tmp.path().join("none").exists());
    }
}
