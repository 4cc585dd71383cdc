//! Reading and writing cgroup control files, making and removing cgroup
//! directories, and waiting for the kernel to catch up.
//!
//! Control files are opened for writing without `O_CREAT`: on a real
//! cgroupfs a missing file means the controller is not enabled there, and
//! creating a regular file in its place (as a plain directory would allow)
//! would hide that.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::CgroupPath;
use super::error::CgroupError;

/// How long [`remove_tree`] retries a directory whose last processes are
/// still exiting.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often making a path is restarted when a concurrent remover deletes a
/// shared parent between two `mkdir`s.
const MKDIR_ATTEMPTS: usize = 5;

/// v1 reports "no limit" as the largest page-aligned `i64`; anything this
/// large is treated as unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

/// Writes `value` to the control file `path` in a single write (truncating,
/// as the shell's `>` does; cgroupfs ignores that, a plain file in a test
/// keeps only the latest value).
pub(super) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write { path: path.to_path_buf(), value: value.to_owned(), source })
}

/// Reads the control file `path`.
pub(super) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read { path: path.to_path_buf(), source })
}

/// Reads the control file `path`; `None` when it does not exist (the
/// controller is not enabled there, or the kernel is too old for it).
pub(super) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path: path.to_path_buf(), source }),
    }
}

/// A single number, as in `memory.usage_in_bytes` or `pids.current`.
pub(super) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.trim().to_owned(),
        expected: "a non-negative integer",
    })
}

/// A limit: `max` (v2, and v1 `pids.max`) or v1's huge "unlimited" number
/// give `None`.
pub(super) fn parse_limit(path: &Path, text: &str) -> Result<Option<u64>, CgroupError> {
    if text.trim() == "max" {
        return Ok(None);
    }
    let value = parse_u64(path, text)?;
    Ok((value < V1_UNLIMITED).then_some(value))
}

/// The value of `key` in a flat-keyed file (`key value` per line, as in
/// `memory.events`, `memory.oom_control` and `cpu.stat`).
pub(super) fn keyed(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some(key) {
            let value = words.next().unwrap_or("");
            return parse_u64(path, value).map(Some);
        }
    }
    Ok(None)
}

/// A number from an optional file (`None` when the file does not exist).
pub(super) fn number_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_opt(path)?.map(|text| parse_u64(path, &text)).transpose()
}

/// A limit from an optional file; `None` when the file does not exist or
/// says there is no limit.
pub(super) fn limit_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    Ok(read_opt(path)?.map(|text| parse_limit(path, &text)).transpose()?.flatten())
}

/// The value of `key` in an optional flat-keyed file.
pub(super) fn keyed_opt(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    Ok(read_opt(path)?.map(|text| keyed(path, &text, key)).transpose()?.flatten())
}

/// The process ids in a `cgroup.procs` file; none when the file is gone
/// (its cgroup was removed meanwhile). Zeros (processes outside the
/// reader's pid namespace) are left out.
pub(super) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read_opt(path)?.unwrap_or_default();
    let mut pids = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let pid: i32 = line.trim().parse().map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            content: line.to_owned(),
            expected: "one process id per line",
        })?;
        if pid > 0 {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Calls `done` until it says yes or `timeout` has passed, sleeping a little
/// longer each time (1 ms up to 50 ms). Returns whether `done` said yes.
pub(super) fn poll_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Makes `path` under the hierarchy mounted at `mount`: its ancestors may
/// exist already, the last directory must not. `prepare(dir)` runs for the
/// mount root and every ancestor before the next level is made (not for the
/// leaf, which the caller prepares once it has taken ownership of it).
/// Returns the leaf.
pub(super) fn make_path(
    mount: &Path,
    path: &CgroupPath,
    mut prepare: impl FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<PathBuf, CgroupError> {
    let leaf = path.under(mount);
    'attempt: for attempt in 1..=MKDIR_ATTEMPTS {
        prepare(mount)?;
        let mut dir = mount.to_path_buf();
        let count = path.components().len();
        for (index, name) in path.components().iter().enumerate() {
            dir.push(name);
            let is_leaf = index + 1 == count;
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !is_leaf => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(CgroupError::AlreadyExists { path: dir });
                }
                // A concurrent remove took a shared parent away: start over.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < MKDIR_ATTEMPTS => {
                    continue 'attempt;
                }
                Err(source) => return Err(CgroupError::CreateDir { path: dir, source }),
            }
            if !is_leaf {
                prepare(&dir)?;
            }
        }
        break;
    }
    Ok(leaf)
}

/// Removes the cgroup directory `dir` and every child cgroup below it,
/// deepest first. A missing directory is fine. A directory whose processes
/// are still exiting is retried for a short while; one that keeps
/// processes fails with [`CgroupError::Busy`].
pub(super) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path: dir.to_path_buf(), source }),
    };
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read { path: dir.to_path_buf(), source })?;
        let is_dir = entry.file_type().map_err(|source| CgroupError::Read { path: entry.path(), source })?.is_dir();
        if is_dir {
            remove_tree(&entry.path())?;
        }
    }
    let mut last = None;
    let removed = poll_until(REMOVE_TIMEOUT, || match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {
            last = Some(e);
            Ok(false)
        }
        Err(source) => Err(CgroupError::Remove { path: dir.to_path_buf(), source }),
    })?;
    if removed {
        return Ok(());
    }
    let pids = read_pids(&dir.join("cgroup.procs")).unwrap_or_default();
    if pids.is_empty() {
        let source = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ResourceBusy));
        return Err(CgroupError::Remove { path: dir.to_path_buf(), source });
    }
    Err(CgroupError::Busy { path: dir.to_path_buf(), pids })
}

/// Removes the directories `path` names above its leaf, innermost first,
/// stopping quietly at the first that is not empty (another cgroup still
/// lives there) or is gone.
pub(super) fn remove_parents(mount: &Path, path: &CgroupPath) -> Result<(), CgroupError> {
    for parent in path.parents().iter().rev() {
        let dir = parent.under(mount);
        match fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ResourceBusy | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                return Ok(());
            }
            Err(source) => return Err(CgroupError::Remove { path: dir, source }),
        }
    }
    Ok(())
}

/// Every cgroup directory at and below `dir` (the cgroup first).
pub(super) fn tree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut all = vec![dir.to_path_buf()];
    let mut next = 0;
    while next < all.len() {
        let current = all[next].clone();
        next += 1;
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            // Removed by the kernel or a concurrent remover meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::Read { path: current, source }),
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                all.push(entry.path());
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values() {
        let p = Path::new("memory.oom_control");
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(p, text, "oom_kill").unwrap(), Some(3));
        assert_eq!(keyed(p, text, "oom").unwrap(), None);
        assert!(keyed(p, "oom_kill x\n", "oom_kill").is_err());
    }

    #[test]
    fn limits() {
        let p = Path::new("x");
        assert_eq!(parse_limit(p, "max\n").unwrap(), None);
        assert_eq!(parse_limit(p, "9223372036854771712\n").unwrap(), None);
        assert_eq!(parse_limit(p, "67108864\n").unwrap(), Some(64 << 20));
        assert!(parse_limit(p, "lots").is_err());
    }

    #[test]
    fn write_does_not_create_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(&tmp.path().join("memory.max"), "1").unwrap_err();
        assert!(matches!(err, CgroupError::Write { .. }), "{err}");
        assert!(!tmp.path().join("memory.max").exists());
    }

    #[test]
    fn pids_skip_zeros_and_blank_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let procs = tmp.path().join("cgroup.procs");
        fs::write(&procs, "12\n0\n\n345\n").unwrap();
        assert_eq!(read_pids(&procs).unwrap(), [12, 345]);
        fs::write(&procs, "12\nabc\n").unwrap();
        assert!(read_pids(&procs).is_err());
        assert_eq!(read_pids(&tmp.path().join("gone")).unwrap(), Vec::<i32>::new());
    }
}
