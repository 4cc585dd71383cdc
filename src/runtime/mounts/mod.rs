//! Everything mounted inside a container's root besides the root itself:
//! the spec's mounts (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`,
//! `/sys`, `/sys/fs/cgroup`, bind mounts), device nodes and the standard
//! `/dev` symlinks, `/dev/console`, and after `pivot_root` the masked and
//! read-only paths.
//!
//! Work is split in two, like the rest of the runtime: [`MountPlan::new`]
//! runs in the parent, checks the spec and reads what it needs from the
//! host (bind sources, the host's cgroup layout), and reports mistakes
//! before any process exists; [`MountPlan::apply_in_root`] and
//! [`MountPlan::apply_after_pivot`] run in the container's first process.
//!
//! Every target is resolved inside the container's root with
//! `openat2(RESOLVE_IN_ROOT)` (creating what is missing there), and the
//! mount is made on the resolved fd's `/proc/self/fd/N` path, so an image
//! whose `/proc` or `/dev` is a symlink to `/` or `../../..` cannot redirect
//! a mount onto the host. After each mount the target is opened again, so
//! that remounts and propagation changes hit the new mount, not the
//! directory under it.

mod cgroupfs;
mod devices;
mod options;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use devices::host_devices;
pub use options::{MountOptions, parse as parse_options};

use crate::sys::fs::{self as sysfs, FileKind};
use crate::sys::mount::{self as sysmount, MsFlags, fd_path};
use crate::sys::scoped;

/// Why a mount could not be planned or made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount destination {dest:?} is not an absolute path (OCI mounts need one, like \"/data\")")]
    RelativeDestination { dest: PathBuf },
    #[error("bind mount to {dest}: no source given (a bind mount needs the host path to mount)")]
    NoSource { dest: PathBuf },
    #[error("bind mount to {dest}: source {source_path} is not there on the host: {source}")]
    MissingSource { dest: PathBuf, source_path: PathBuf, source: io::Error },
    #[error("reading the host's mount table (/proc/self/mountinfo) to mirror its cgroup layout: {source}")]
    Mountinfo { source: io::Error },
    #[error("{step} {path} in the container: {source}")]
    Step { step: String, path: PathBuf, source: io::Error },
}

impl MountError {
    /// The errno behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            MountError::MissingSource { source, .. }
            | MountError::Mountinfo { source }
            | MountError::Step { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn step(step: impl Into<String>, path: &Path) -> impl FnOnce(io::Error) -> MountError + '_ {
    let step = step.into();
    move |source| MountError::Step { step, path: path.to_path_buf(), source }
}

#[derive(Debug, Clone)]
enum Kind {
    Bind {
        source: PathBuf,
        is_dir: bool,
    },
    /// `cgroup`/`cgroup2` at one place: mirrors the host's layout.
    Cgroup,
    Fs {
        fstype: String,
        source: String,
    },
}

#[derive(Debug, Clone)]
struct Planned {
    /// Absolute, as in the spec (resolved inside the root when applied).
    dest: PathBuf,
    kind: Kind,
    opts: MountOptions,
}

/// The spec's mounts, devices, masked and read-only paths, checked and
/// ready to apply inside a container.
#[derive(Debug, Clone)]
pub struct MountPlan {
    mounts: Vec<Planned>,
    devices: Vec<devices::Device>,
    masked: Vec<PathBuf>,
    readonly: Vec<PathBuf>,
    cgroups: cgroupfs::HostCgroups,
}

impl MountPlan {
    /// Checks the spec's mounts and reads what applying them needs from the
    /// host. Runs in the parent, before any process is created.
    pub fn new(spec: &Spec) -> Result<MountPlan, MountError> {
        let mut mounts = Vec::new();
        let mut needs_cgroups = false;
        for m in spec.mounts().iter().flatten() {
            let dest = m.destination().clone();
            if !dest.is_absolute() {
                return Err(MountError::RelativeDestination { dest });
            }
            let opts = parse_options(m.options().as_deref().unwrap_or_default());
            let typ = m.typ().as_deref().unwrap_or(if opts.bind { "bind" } else { "none" });
            let kind = if opts.bind || typ == "bind" {
                let source = m.source().clone().ok_or_else(|| MountError::NoSource { dest: dest.clone() })?;
                let meta = std::fs::metadata(&source).map_err(|e| MountError::MissingSource {
                    dest: dest.clone(),
                    source_path: source.clone(),
                    source: e,
                })?;
                Kind::Bind { source, is_dir: meta.is_dir() }
            } else if typ == "cgroup" || typ == "cgroup2" {
                needs_cgroups = true;
                Kind::Cgroup
            } else {
                let source = m.source().as_ref().map_or_else(|| typ.to_string(), |s| s.display().to_string());
                Kind::Fs { fstype: typ.to_string(), source }
            };
            mounts.push(Planned { dest, kind, opts });
        }
        let linux = spec.linux().as_ref();
        let paths = |v: Option<&Vec<String>>| v.into_iter().flatten().map(PathBuf::from).collect::<Vec<_>>();
        Ok(MountPlan {
            mounts,
            devices: devices::from_spec(linux.and_then(|l| l.devices().as_deref()).unwrap_or_default()),
            masked: paths(linux.and_then(|l| l.masked_paths().as_ref())),
            readonly: paths(linux.and_then(|l| l.readonly_paths().as_ref())),
            cgroups: if needs_cgroups { cgroupfs::detect()? } else { cgroupfs::HostCgroups::none() },
        })
    }

    /// Mounts everything into the root at `root` (the mounted overlay, a host
    /// path in the container's mount namespace), creates device nodes and
    /// the `/dev` symlinks, and bind-mounts `console` (a pty slave) at
    /// `/dev/console`. Runs in the container's first process, before
    /// `pivot_root`, while `/proc` is still the host's (for `/proc/self/fd`).
    pub fn apply_in_root(&self, root: &Path, console: Option<BorrowedFd<'_>>) -> Result<(), MountError> {
        let root_fd = sysfs::open_dir(root).map_err(step("opening the root", root))?;
        let root_fd = root_fd.as_fd();
        for m in &self.mounts {
            self.apply_one(root_fd, m)?;
        }
        for d in &self.devices {
            devices::create(root_fd, d)?;
        }
        devices::default_links(root_fd)?;
        if let Some(console) = console {
            devices::console(root_fd, console)?;
        }
        Ok(())
    }

    fn apply_one(&self, root: BorrowedFd<'_>, m: &Planned) -> Result<(), MountError> {
        let what = |verb: &str| format!("{verb} {}", kind_name(&m.kind));
        match &m.kind {
            Kind::Bind { source, is_dir } => {
                let target = if *is_dir {
                    scoped::mkdir_all(root, &m.dest, 0o755)
                } else {
                    scoped::ensure_file(root, &m.dest, 0o644)
                }
                .map_err(step("creating the mount point", &m.dest))?;
                let mut flags = MsFlags::MS_BIND;
                if m.opts.recursive {
                    flags |= MsFlags::MS_REC;
                }
                sysmount::mount(Some(source), &fd_path(target.as_fd()), None, flags, None)
                    .map_err(step(format!("bind-mounting {} on", source.display()), &m.dest))?;
                if !m.opts.flags.is_empty() {
                    remount_bind(root, &m.dest, m.opts.flags)?;
                }
            }
            Kind::Cgroup => cgroupfs::mount(root, &m.dest, m.opts.flags, &self.cgroups)?,
            Kind::Fs { fstype, source } => {
                let target =
                    scoped::mkdir_all(root, &m.dest, 0o755).map_err(step("creating the mount point", &m.dest))?;
                let data = m.opts.data_string();
                let mounted = sysmount::mount(
                    Some(Path::new(source)),
                    &fd_path(target.as_fd()),
                    Some(fstype),
                    m.opts.flags,
                    data.as_deref(),
                );
                match mounted {
                    // In a user namespace that does not own the network
                    // namespace (rootless `--network host`), the kernel
                    // refuses a new sysfs: bind the host's, read-only, as
                    // runc and crun do.
                    Err(e) if fstype == "sysfs" && e.raw_os_error() == Some(libc::EPERM) => {
                        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                        sysmount::mount(Some(Path::new("/sys")), &fd_path(target.as_fd()), None, flags, None)
                            .map_err(step("bind-mounting the host's /sys (a new sysfs was refused) on", &m.dest))?;
                        remount_bind(root, &m.dest, m.opts.flags & MsFlags::MS_RDONLY)?;
                    }
                    other => other.map_err(step(what("mounting"), &m.dest))?,
                }
            }
        }
        for &p in &m.opts.propagation {
            let target = scoped::open_path(root, &m.dest).map_err(step("reopening the mount", &m.dest))?;
            sysmount::set_propagation(&fd_path(target.as_fd()), p).map_err(step("setting propagation of", &m.dest))?;
        }
        Ok(())
    }

    /// Masks and write-protects paths of the running container: each masked
    /// directory gets a read-only empty tmpfs, each masked file `/dev/null`
    /// bound over it, each read-only path a read-only bind of itself. Runs
    /// after `pivot_root`, when `/` and `/proc` are the container's; paths
    /// that do not exist are skipped.
    pub fn apply_after_pivot(&self) -> Result<(), MountError> {
        let root = Path::new("/");
        let root_fd = sysfs::open_dir(root).map_err(step("opening the root", root))?;
        let root_fd = root_fd.as_fd();
        for path in &self.masked {
            let kind = scoped::kind(root_fd, path).map_err(step("looking up the masked path", path))?;
            let Some(kind) = kind else { continue };
            let target = scoped::open_path(root_fd, path).map_err(step("opening the masked path", path))?;
            let target = fd_path(target.as_fd());
            if kind == FileKind::Dir {
                let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                sysmount::mount(Some(Path::new("tmpfs")), &target, Some("tmpfs"), flags, Some("size=0k,mode=555"))
            } else {
                sysmount::mount(Some(Path::new("/dev/null")), &target, None, MsFlags::MS_BIND, None)
            }
            .map_err(step("masking", path))?;
        }
        for path in &self.readonly {
            let Some(_) = scoped::kind(root_fd, path).map_err(step("looking up the read-only path", path))? else {
                continue;
            };
            let target = scoped::open_path(root_fd, path).map_err(step("opening the read-only path", path))?;
            let target = fd_path(target.as_fd());
            sysmount::mount(Some(&target), &target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
                .map_err(step("bind-mounting read-only", path))?;
            remount_bind(root_fd, path, MsFlags::MS_RDONLY)?;
        }
        Ok(())
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Bind { .. } => "bind".into(),
        Kind::Cgroup => "cgroup".into(),
        Kind::Fs { fstype, .. } => fstype.clone(),
    }
}

/// Remounts the bind mount at `rel` (reopened, so the new mount is hit)
/// with `flags` added to the flags it already has: a bind remount replaces
/// all per-mount flags, and dropping `nosuid` or `nodev` that the source had
/// would fail (or, worse, succeed).
fn remount_bind(root: BorrowedFd<'_>, rel: &Path, flags: MsFlags) -> Result<(), MountError> {
    let target = scoped::open_path(root, rel).map_err(step("reopening the mount", rel))?;
    let target = fd_path(target.as_fd());
    let keep = sysmount::mount_flags_of(&target).map_err(step("reading the mount flags of", rel))?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | flags;
    sysmount::mount(None, &target, None, flags, None).map_err(step("remounting", rel))
}
