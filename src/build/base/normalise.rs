//! Normalising a freshly bootstrapped Debian root, so that its layer is as
//! reproducible as Debian allows and carries nothing of the build host.
//!
//! Each rule says what goes and why ([`RULES`]). Mtimes are not touched
//! here: the layer writer clamps every mtime to the epoch. Every path is
//! resolved inside the root by the kernel (`RESOLVE_IN_ROOT`), so a symlink
//! in the new root (`/var/run -> /run`, or anything hostile) can never make
//! a rule touch the host.
//!
//! One rule sets an owner instead of removing: apt (run by mmdebstrap on
//! the host) drops to the `_apt` user for downloads and makes its `partial`
//! directories `_apt`'s, but only when `_apt` can reach the new root, that
//! is when every directory above the store lets others through; under a
//! private store it downloads as root and leaves them root's, so the same
//! manifest gave two layers. The rule gives them the owner apt gives them
//! wherever it can sandbox, as on any Debian system once apt has run:
//! `_apt`, group root, 0700. Running apt unsandboxed every time
//! (`APT::Sandbox::User "root"`) would fix the owner too, but would take
//! the sandbox away from every download that could have had it. (apt in
//! berth's package steps runs in a container, where the store's place does
//! not show.)

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use crate::runtime::spec::SpecError;
use crate::sys::fs::{self as sysfs, FileKind};

/// What to do at one path of the root.
#[derive(Clone, Copy, Debug)]
pub(super) enum Rule {
    /// Remove every non-directory below the directory, at any depth; the
    /// directories stay (packages own them, with their modes).
    Files(&'static str),
    /// Remove everything in the directory; the directory stays.
    Everything(&'static str),
    /// Remove the file, if there is one.
    Remove(&'static str),
    /// Make the regular file empty, if there is one (its mode stays).
    Empty(&'static str),
    /// Remove the files in the directory whose names end with the suffix.
    Suffix(&'static str, &'static str),
    /// Give the directory, if there is one, the owner and mode apt gives its
    /// download directories when it can drop to `_apt`: owner `_apt` (from
    /// the root's own `/etc/passwd`; root when it lists none), group root,
    /// mode 0700.
    AptSandbox(&'static str),
}

/// The rules, applied in order, each with the reason it is there.
pub(super) const RULES: &[(Rule, &str)] = &[
    (Rule::Files("var/log"), "logs of this run, with its times (dpkg.log, apt/*.log, alternatives.log, bootstrap.log)"),
    (Rule::Files("var/cache/apt"), "downloaded .debs and the pkgcache.bin/srcpkgcache.bin caches"),
    (Rule::Files("var/lib/apt/lists"), "the archive's indexes as of today; `apt-get update` fetches them"),
    (
        Rule::AptSandbox("var/cache/apt/archives/partial"),
        "apt chowns it to _apt only when _apt can reach the root, which depends on where the store is",
    ),
    (
        Rule::AptSandbox("var/lib/apt/lists/partial"),
        "apt chowns it to _apt only when _apt can reach the root, which depends on where the store is",
    ),
    (Rule::Remove("var/cache/ldconfig/aux-cache"), "ldconfig's cache of inode numbers and times"),
    (Rule::Empty("etc/machine-id"), "an empty machine-id means \"set at first boot\"; a fixed one would be shared"),
    (Rule::Remove("etc/resolv.conf"), "the build host's resolver; the runtime mounts its own"),
    (Rule::Remove("etc/hostname"), "the build host's name; the runtime mounts its own"),
    (Rule::Suffix("var/cache/debconf", "-old"), "debconf's backups of its previous state"),
    (Rule::Suffix("var/lib/dpkg", "-old"), "dpkg's backups of its previous state"),
    (Rule::Everything("dev"), "device nodes; the runtime mounts /dev"),
    (Rule::Everything("proc"), "must be an empty mount point"),
    (Rule::Everything("sys"), "must be an empty mount point"),
    (Rule::Files("run"), "runtime state of the installers; directories such as /run/lock stay"),
    (Rule::Everything("tmp"), "temporary files of the installers"),
    (Rule::Everything("var/tmp"), "temporary files of the installers"),
];

/// Applies [`RULES`] to the root at `root`. On error, says which path.
pub(super) fn normalise(root: &Path) -> Result<(), (String, io::Error)> {
    let root_fd = sysfs::open_dir(root).map_err(|e| (String::new(), e))?;
    let apt_uid = apt_uid(root).map_err(|e| ("etc/passwd".to_owned(), e))?;
    for (rule, _) in RULES {
        apply(root_fd.as_fd(), *rule, apt_uid).map_err(|e| (rule_path(*rule).to_owned(), e))?;
    }
    Ok(())
}

/// The uid of `_apt` in the root's own `/etc/passwd` (read inside the
/// root); 0 when it lists no `_apt`, as apt then downloads as root.
fn apt_uid(root: &Path) -> io::Result<u32> {
    match crate::runtime::spec::resolve_user(root, "_apt") {
        Ok(user) => Ok(user.uid),
        Err(SpecError::UnknownUser { .. }) => Ok(0),
        Err(SpecError::ReadFile { source, .. }) => Err(source),
        Err(other) => Err(io::Error::other(other.to_string())),
    }
}

fn rule_path(rule: Rule) -> &'static str {
    match rule {
        Rule::Files(p)
        | Rule::Everything(p)
        | Rule::Remove(p)
        | Rule::Empty(p)
        | Rule::Suffix(p, _)
        | Rule::AptSandbox(p) => p,
    }
}

fn apply(root: BorrowedFd<'_>, rule: Rule, apt_uid: u32) -> io::Result<()> {
    match rule {
        Rule::AptSandbox(dir) => {
            let Some(fd) = dir_in(root, Path::new(dir))? else { return Ok(()) };
            sysfs::chown_fd(fd.as_fd(), apt_uid, 0)?;
            sysfs::chmod_fd(fd.as_fd(), 0o700)
        }
        Rule::Files(dir) => match dir_in(root, Path::new(dir))? {
            Some(fd) => remove_files(fd.as_fd()),
            None => Ok(()),
        },
        Rule::Everything(dir) => {
            let Some(fd) = dir_in(root, Path::new(dir))? else { return Ok(()) };
            for name in sysfs::list_dir(fd.as_fd())? {
                sysfs::remove_all_at(fd.as_fd(), &name)?;
            }
            Ok(())
        }
        Rule::Suffix(dir, suffix) => {
            let Some(fd) = dir_in(root, Path::new(dir))? else { return Ok(()) };
            for name in sysfs::list_dir(fd.as_fd())? {
                if name.as_encoded_bytes().ends_with(suffix.as_bytes()) {
                    remove_file(fd.as_fd(), &name)?;
                }
            }
            Ok(())
        }
        Rule::Remove(file) | Rule::Empty(file) => {
            let path = Path::new(file);
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return Ok(()) };
            let Some(fd) = dir_in(root, parent)? else { return Ok(()) };
            if let Rule::Empty(_) = rule {
                if let Some(st) = sysfs::stat_at(fd.as_fd(), name)?
                    && st.kind == FileKind::File
                {
                    // A new empty file of the same mode; the owner is the
                    // bootstrap's, root, as Debian's is.
                    sysfs::unlink_at(fd.as_fd(), name)?;
                    let file = sysfs::create_file_at(fd.as_fd(), name, st.perm)?;
                    sysfs::chmod_fd(file.as_fd(), st.perm)?;
                }
                return Ok(());
            }
            remove_file(fd.as_fd(), name)
        }
    }
}

/// The directory `rel` inside `root`, or `None` if it is not there (or a
/// symlink loop stands in its place).
fn dir_in(root: BorrowedFd<'_>, rel: &Path) -> io::Result<Option<std::os::fd::OwnedFd>> {
    match sysfs::open_dir_in_root(root, rel) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `name` from `dir` unless it is a directory or absent.
fn remove_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match sysfs::stat_at(dir, name)? {
        Some(st) if st.kind != FileKind::Dir => sysfs::unlink_at(dir, name),
        _ => Ok(()),
    }
}

/// Removes every non-directory below `dir`, keeping the directories.
fn remove_files(dir: BorrowedFd<'_>) -> io::Result<()> {
    for name in sysfs::list_dir(dir)? {
        match sysfs::stat_at(dir, &name)? {
            Some(st) if st.kind == FileKind::Dir => remove_files(sysfs::open_dir_at(dir, &name)?.as_fd())?,
            Some(_) => sysfs::unlink_at(dir, &name)?,
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn removes_what_differs_between_runs_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "var/log/dpkg.log", "today");
        write(root, "var/log/apt/history.log", "today");
        write(root, "var/cache/apt/pkgcache.bin", "cache");
        write(root, "var/cache/apt/archives/libc6.deb", "deb");
        fs::create_dir_all(root.join("var/cache/apt/archives/partial")).unwrap();
        write(root, "var/lib/apt/lists/deb.debian.org_Packages", "index");
        write(root, "var/cache/ldconfig/aux-cache", "inodes");
        write(root, "etc/machine-id", "0123456789abcdef\n");
        fs::set_permissions(root.join("etc/machine-id"), fs::Permissions::from_mode(0o444)).unwrap();
        write(root, "etc/resolv.conf", "nameserver 10.0.0.1");
        write(root, "var/lib/dpkg/status-old", "old");
        write(root, "var/lib/dpkg/status", "new");
        write(root, "var/cache/debconf/config.dat-old", "old");
        write(root, "dev/null", "not really");
        fs::create_dir_all(root.join("dev/pts")).unwrap();
        write(root, "tmp/leftover", "x");
        write(root, "etc/passwd", "root:x:0:0");

        normalise(root).unwrap();

        for gone in [
            "var/log/dpkg.log",
            "var/log/apt/history.log",
            "var/cache/apt/pkgcache.bin",
            "var/cache/apt/archives/libc6.deb",
            "var/lib/apt/lists/deb.debian.org_Packages",
            "var/cache/ldconfig/aux-cache",
            "etc/resolv.conf",
            "var/lib/dpkg/status-old",
            "var/cache/debconf/config.dat-old",
            "dev/null",
            "dev/pts",
            "tmp/leftover",
        ] {
            assert!(root.join(gone).symlink_metadata().is_err(), "{gone} should be gone");
        }
        for kept in ["var/log/apt", "var/cache/apt/archives/partial", "var/lib/apt/lists", "dev", "tmp"] {
            assert!(root.join(kept).is_dir(), "{kept} should stay");
        }
        assert_eq!(fs::read(root.join("etc/machine-id")).unwrap(), b"");
        assert_eq!(fs::metadata(root.join("etc/machine-id")).unwrap().permissions().mode() & 0o777, 0o444);
        assert_eq!(fs::read(root.join("var/lib/dpkg/status")).unwrap(), b"new");
        assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0");
    }

    #[test]
    fn apts_download_dirs_are_apts_wherever_the_store_is() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let partial = ["var/cache/apt/archives/partial", "var/lib/apt/lists/partial"];
        let owner_mode = |rel: &str| {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(root.join(rel)).unwrap();
            (m.uid(), m.gid(), m.mode() & 0o7777)
        };
        for rel in partial {
            fs::create_dir_all(root.join(rel)).unwrap();
            fs::set_permissions(root.join(rel), fs::Permissions::from_mode(0o755)).unwrap();
        }
        // No `_apt` in the root: apt downloads as root; the mode is still apt's.
        normalise(root).unwrap();
        for rel in partial {
            assert_eq!(owner_mode(rel), (0, 0, 0o700), "{rel}");
        }
        write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n");
        normalise(root).unwrap();
        for rel in partial {
            assert_eq!(owner_mode(rel), (42, 0, 0o700), "{rel}");
        }
    }

    #[test]
    fn symlinks_in_the_root_never_lead_to_the_host() {
        let host = tempfile::tempdir().unwrap();
        write(host.path(), "precious.log", "keep me");
        write(host.path(), "machine-id", "host id");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("var")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink(host.path(), root.join("var/log")).unwrap();
        symlink(host.path().join("machine-id"), root.join("etc/machine-id")).unwrap();
        symlink(host.path(), root.join("tmp")).unwrap();

        normalise(root).unwrap();

        assert_eq!(fs::read(host.path().join("precious.log")).unwrap(), b"keep me");
        assert_eq!(fs::read(host.path().join("machine-id")).unwrap(), b"host id");
    }
}
