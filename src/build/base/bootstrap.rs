//! `bootstrap = { suite, mirror, variant, components }`: a Debian root
//! built from the archive, with no registry at all.
//!
//! The root is built by `mmdebstrap` (preferred) or `debootstrap` into a
//! staging directory in the store's `tmp/`. When neither is installed and
//! berth runs as root, `apt-get install mmdebstrap` installs it first. The
//! tool runs with `SOURCE_DATE_EPOCH` set to the epoch, which mmdebstrap,
//! dpkg and the maintainer scripts that honour it use for every time they
//! write. The root is then normalised (`normalise`: logs, apt caches and
//! lists, ldconfig's aux-cache, the machine-id, host files) and written by
//! the reproducible layer writer with mtimes clamped to the epoch.
//!
//! Both tools mount `/proc`, `/sys` and `/dev` inside the new root while
//! they run. Before anything is removed, berth checks `/proc/self/mountinfo`
//! for mounts still below the staging directory and detaches them; if one
//! stays, the staging directory is left in place rather than deleted through
//! a mount into the host.
//!
//! # Measured reproducibility (bookworm minbase, two runs into two stores)
//!
//! Both mmdebstrap 1.3.5 and debootstrap 1.0.128 give the same layer digest
//! run to run. Unnormalised, two mmdebstrap trees differ only in the mtimes
//! of 1145 paths written during installation (clamped by the writer); shadow
//! dates accounts from `SOURCE_DATE_EPOCH`, and mmdebstrap already removes
//! its logs, apt lists and caches and the aux-cache. Both tools copy the
//! host's `/etc/hostname` and `/etc/resolv.conf`, which would differ between
//! machines. debootstrap also leaves `dpkg.log`, `alternatives.log` and
//! `bootstrap.log` with wall-clock times, the downloaded `.deb`s, today's
//! apt lists and ldconfig's aux-cache. A new upload to the archive changes
//! the layer, as it changes what is installed. Time: about 40 s in a
//! release build (20–30 s of it mmdebstrap and the download).
//!
//! Where the store is showed too: apt drops to its `_apt` user for
//! downloads only when `_apt` can reach the new root, so a store under a
//! private (0700) directory gave `var/cache/apt/archives/partial` and
//! `var/lib/apt/lists/partial` to root, and one under 0755 directories to
//! `_apt` (uid 42), and two layer digests. `normalise` gives them to `_apt`
//! always (its module page says why not to run apt unsandboxed instead).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{Context, io_err};
use super::normalise::normalise;
use super::rootfs::tree_layer;
use super::{BaseError, BaseImage, single_layer};
use crate::manifest::Bootstrap;
use crate::store::Store;

/// Lines of the tool's output kept for an error message.
const TAIL_LINES: usize = 30;

/// Builds the Debian root `b` and makes it a one-layer base.
pub(super) fn materialise(store: &Store, base: &str, b: &Bootstrap, epoch: u64) -> Result<BaseImage, BaseError> {
    let tool = Tool::find_or_install(base)?;
    let staging = store.staging_dir().in_base(base)?;
    let target = staging.path().join("root");
    // The bootstrapper runs on the host, as root and without a seccomp
    // filter: it is the host's tool (it mounts /proc and /dev into the new
    // root and chroots into it), not a build step, which runs in a build
    // container under the default profile (see `build::step`).
    let mut command = Command::new(tool.path());
    command
        .args(arguments(tool.kind(), b, &target))
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    let ran = command.output();
    if let Err(stuck) = release_mounts(base, staging.path()) {
        staging.keep(); // never delete through a mount into the host
        return Err(stuck);
    }
    let tool_name = tool.kind().name();
    let output = ran.map_err(io_err(base, "run", tool.path()))?;
    if !output.status.success() {
        return Err(BaseError::BootstrapFailed {
            base: base.into(),
            tool: tool_name.to_owned(),
            status: output.status.to_string(),
            tail: crate::tools::tail(&output, TAIL_LINES),
        });
    }
    normalise(&target).map_err(|(rel, source)| BaseError::Io {
        base: base.into(),
        op: "normalise",
        path: target.join(rel),
        source,
    })?;
    let layer = tree_layer(store, base, &target, epoch)?;
    drop(staging);
    single_layer(store, base, layer, epoch)
}

/// Which bootstrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ToolKind {
    Mmdebstrap,
    Debootstrap,
}

impl ToolKind {
    fn name(self) -> &'static str {
        match self {
            ToolKind::Mmdebstrap => "mmdebstrap",
            ToolKind::Debootstrap => "debootstrap",
        }
    }
}

/// A bootstrapper found on this machine.
#[derive(Debug)]
struct Tool {
    kind: ToolKind,
    path: PathBuf,
}

impl Tool {
    fn kind(&self) -> ToolKind {
        self.kind
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// mmdebstrap if installed or installable (as root), else debootstrap
    /// if installed; otherwise an error saying how to install one.
    fn find_or_install(base: &str) -> Result<Tool, BaseError> {
        let found = |kind: ToolKind| crate::tools::find_program(kind.name()).map(|path| Tool { kind, path });
        if let Some(tool) = found(ToolKind::Mmdebstrap) {
            return Ok(tool);
        }
        let install_problem = if crate::sys::euid() == 0 {
            match crate::tools::apt_install("mmdebstrap") {
                Ok(()) => match found(ToolKind::Mmdebstrap) {
                    Some(tool) => return Ok(tool),
                    None => "mmdebstrap was installed but is not on PATH".to_owned(),
                },
                Err(why) => why,
            }
        } else {
            "only root can install it".to_owned()
        };
        if let Some(tool) = found(ToolKind::Debootstrap) {
            return Ok(tool);
        }
        let why = format!(
            "a bootstrap base needs mmdebstrap or debootstrap, and neither is installed ({install_problem}); install one as root: apt-get install mmdebstrap"
        );
        Err(BaseError::Tool { base: base.into(), why })
    }
}

/// The arguments that build `b` into `target` with `kind`.
fn arguments(kind: ToolKind, b: &Bootstrap, target: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    match (kind, b.variant.as_str()) {
        // mmdebstrap's name for debootstrap's default set.
        (ToolKind::Mmdebstrap, "-") => args.push("--variant=debootstrap".into()),
        // debootstrap's fakechroot variant is a mode in mmdebstrap.
        (ToolKind::Mmdebstrap, "fakechroot") => {
            args.push("--mode=fakechroot".into());
            args.push("--variant=debootstrap".into());
        }
        (ToolKind::Debootstrap, "-") => {}
        (_, variant) => args.push(format!("--variant={variant}").into()),
    }
    args.push(format!("--components={}", b.components.join(",")).into());
    if kind == ToolKind::Mmdebstrap {
        args.push("--format=directory".into());
    }
    args.push(b.suite.clone().into());
    args.push(target.as_os_str().to_owned());
    args.push(b.mirror.clone().into());
    args
}

/// Detaches every mount at or below `dir`; an error names those that stay.
fn release_mounts(base: &str, dir: &Path) -> Result<(), BaseError> {
    let dir = dir.canonicalize().map_err(io_err(base, "find", dir))?;
    let below = || -> Result<Vec<PathBuf>, BaseError> {
        let info =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(io_err(base, "read", "/proc/self/mountinfo"))?;
        Ok(mounts_below(&info, &dir))
    };
    let mut mounts = below()?;
    // Deepest first, and a second round for mounts that were stacked.
    for _ in 0..2 {
        if mounts.is_empty() {
            return Ok(());
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for mount in &mounts {
            let _ = crate::sys::mount::umount_detach(mount); // checked below
        }
        mounts = below()?;
    }
    if mounts.is_empty() {
        return Ok(());
    }
    let mounts = mounts.iter().map(|m| m.display().to_string()).collect();
    Err(BaseError::StuckMounts { base: base.into(), root: dir, mounts })
}

/// The mount points in `mountinfo` (the text of `/proc/self/mountinfo`)
/// that are `dir` or below it.
fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mountinfo(point)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bookworm(variant: &str) -> Bootstrap {
        Bootstrap {
            suite: "bookworm".to_owned(),
            mirror: "http://deb.debian.org/debian".to_owned(),
            variant: variant.to_owned(),
            components: vec!["main".to_owned(), "contrib".to_owned()],
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn mmdebstrap_arguments() {
        let args = strings(arguments(ToolKind::Mmdebstrap, &bookworm("minbase"), Path::new("/s/root")));
        assert_eq!(
            args,
            [
                "--variant=minbase",
                "--components=main,contrib",
                "--format=directory",
                "bookworm",
                "/s/root",
                "http://deb.debian.org/debian"
            ]
        );
        let args = strings(arguments(ToolKind::Mmdebstrap, &bookworm("-"), Path::new("/s/root")));
        assert_eq!(args[0], "--variant=debootstrap");
        let args = strings(arguments(ToolKind::Mmdebstrap, &bookworm("fakechroot"), Path::new("/s/root")));
        assert_eq!(&args[..2], ["--mode=fakechroot", "--variant=debootstrap"]);
    }

    #[test]
    fn debootstrap_arguments() {
        let args = strings(arguments(ToolKind::Debootstrap, &bookworm("buildd"), Path::new("/s/root")));
        assert_eq!(
            args,
            ["--variant=buildd", "--components=main,contrib", "bookworm", "/s/root", "http://deb.debian.org/debian"]
        );
        let args = strings(arguments(ToolKind::Debootstrap, &bookworm("-"), Path::new("/s/root")));
        assert_eq!(args[0], "--components=main,contrib");
    }

    #[test]
    fn mounts_below_a_directory() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:5 / /store/tmp/stage-1/root/proc rw - proc proc rw
41 22 0:6 / /store/tmp/stage-1/root/dev/pts rw - devpts devpts rw
42 22 0:7 / /store/tmp/stage-10/root/sys rw - sysfs sysfs rw
43 22 0:8 / /store/tmp/stage-1/with\\040space rw - tmpfs tmpfs rw
";
        let found = mounts_below(info, Path::new("/store/tmp/stage-1"));
        assert_eq!(
            found,
            [
                PathBuf::from("/store/tmp/stage-1/root/proc"),
                PathBuf::from("/store/tmp/stage-1/root/dev/pts"),
                PathBuf::from("/store/tmp/stage-1/with space"),
            ]
        );
        assert_eq!(unescape_mountinfo(r"a\134b\011c\12"), "a\\b\tc\\12");
    }
}
