//! The container's root filesystem: an overlay of the image's unpacked
//! layers (read-only, top first) under the container's own writable upper
//! directory, mounted at `target`.
//!
//! The overlay is mounted by the container's first process, inside its own
//! mount namespace, after every mount there was made private: the host's
//! mount table never holds it, and it disappears with the namespace, so
//! nothing is left mounted if berth dies.
//!
//! Layers are passed one by one with the new mount API (`fsopen("overlay")`,
//! `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", layer)`, Linux 6.8+), so an
//! image may have as many layers as overlayfs stacks (500); the classic
//! `mount(2)` string `lowerdir=a:b:…` must fit in one page (4096 bytes),
//! which long store paths exhaust after roughly a hundred layers. On older
//! kernels berth falls back to that string (they refuse `lowerdir+` at
//! `fsconfig` from 6.5 on, and only at `FSCONFIG_CMD_CREATE` before: any
//! EINVAL from the new API retries with `mount(2)`). An image with no layers gets an
//! empty read-only tmpfs as its single lower directory (overlayfs needs at
//! least one), mounted at `target` itself and then covered by the overlay.

use std::io;
use std::path::{Path, PathBuf};

use crate::sys::mount::{self as sysmount, FsContext, MsFlags};

/// The directories of one container's root filesystem (host paths).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rootfs {
    /// The image's unpacked layers, top (newest) first; may be empty.
    pub lowers: Vec<PathBuf>,
    /// The container's writable layer.
    pub upper: PathBuf,
    /// overlayfs's scratch directory: empty, on the same filesystem as `upper`.
    pub work: PathBuf,
    /// Where the overlay is mounted (inside the container's mount namespace).
    pub target: PathBuf,
}

/// Why the root filesystem could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mounting the empty lower layer (tmpfs) at {target}: {source} (the target must be an existing directory)")]
    EmptyLower { target: PathBuf, source: io::Error },
    #[error(
        "mounting the overlay of {layers} layer(s) at {target} ({api}): {source} (upper {upper} and work {work} \
         must be directories on one filesystem that supports overlay upper layers, work must be empty, every layer \
         must exist, and overlayfs stacks at most 500 layers)"
    )]
    Mount { target: PathBuf, layers: usize, upper: PathBuf, work: PathBuf, api: &'static str, source: io::Error },
    #[error(
        "the overlay of {layers} layers at {target}: the lowerdir= option is {len} bytes, over the 4095 that \
         mount(2) takes on this kernel (Linux 6.8+ mounts any number of layers; or use shorter store paths)"
    )]
    TooLong { target: PathBuf, layers: usize, len: usize },
}

impl RootfsError {
    /// The errno behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            RootfsError::EmptyLower { source, .. } | RootfsError::Mount { source, .. } => source.raw_os_error(),
            RootfsError::TooLong { .. } => None,
        }
    }
}

impl Rootfs {
    /// Mounts the overlay at `target`. Call only inside a mount namespace of
    /// the caller's own whose mounts are private (the container's).
    pub fn mount(&self) -> Result<(), RootfsError> {
        let empty;
        let lowers: &[PathBuf] = if self.lowers.is_empty() {
            sysmount::mount(
                Some(Path::new("tmpfs")),
                &self.target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=755,size=4k"),
            )
            .map_err(|source| RootfsError::EmptyLower { target: self.target.clone(), source })?;
            empty = [self.target.clone()];
            &empty
        } else {
            &self.lowers
        };
        match self.mount_new_api(lowers) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS)) => self.mount_classic(lowers),
            // Before Linux 6.8 overlayfs rejects the "lowerdir+" key.
            Err(LowerPlus::Unknown) => self.mount_classic(lowers),
            // Before Linux 6.5 overlayfs takes fsconfig's keys as legacy
            // mount options, unchecked, and only refuses the unknown
            // "lowerdir+" when the superblock is made: EINVAL from
            // FSCONFIG_CMD_CREATE (seen on Debian 12's 6.1). mount(2) says
            // what is really wrong, if anything is.
            Err(LowerPlus::Failed(e)) if e.raw_os_error() == Some(libc::EINVAL) => self.mount_classic(lowers),
            Err(LowerPlus::Failed(source)) => Err(self.error("fsopen/fsconfig/fsmount", lowers.len(), source)),
        }
    }

    fn error(&self, api: &'static str, layers: usize, source: io::Error) -> RootfsError {
        RootfsError::Mount {
            target: self.target.clone(),
            layers,
            upper: self.upper.clone(),
            work: self.work.clone(),
            api,
            source,
        }
    }

    fn mount_new_api(&self, lowers: &[PathBuf]) -> Result<(), LowerPlus> {
        let ctx = FsContext::open("overlay").map_err(LowerPlus::Failed)?;
        for (i, lower) in lowers.iter().enumerate() {
            match ctx.set_path("lowerdir+", lower) {
                Ok(()) => {}
                Err(e) if i == 0 && e.raw_os_error() == Some(libc::EINVAL) && !lower.is_dir() => {
                    return Err(LowerPlus::Failed(e));
                }
                Err(e) if i == 0 && e.raw_os_error() == Some(libc::EINVAL) => return Err(LowerPlus::Unknown),
                Err(e) => return Err(LowerPlus::Failed(with_path(e, "lower layer", lower))),
            }
        }
        ctx.set_path("upperdir", &self.upper).map_err(|e| LowerPlus::Failed(with_path(e, "upper", &self.upper)))?;
        ctx.set_path("workdir", &self.work).map_err(|e| LowerPlus::Failed(with_path(e, "work", &self.work)))?;
        ctx.set_string("index", b"off").map_err(LowerPlus::Failed)?;
        if crate::sys::userns::in_user_namespace() {
            ctx.set_flag("userxattr").map_err(LowerPlus::Failed)?;
        }
        let mnt = ctx.create_mount().map_err(LowerPlus::Failed)?;
        sysmount::move_mount_to(std::os::fd::AsFd::as_fd(&mnt), &self.target).map_err(LowerPlus::Failed)
    }

    fn mount_classic(&self, lowers: &[PathBuf]) -> Result<(), RootfsError> {
        let mut data = classic_options(lowers, &self.upper, &self.work);
        if crate::sys::userns::in_user_namespace() {
            data.push_str(",userxattr");
        }
        if data.len() > 4095 {
            return Err(RootfsError::TooLong { target: self.target.clone(), layers: lowers.len(), len: data.len() });
        }
        sysmount::mount(Some(Path::new("overlay")), &self.target, Some("overlay"), MsFlags::empty(), Some(&data))
            .map_err(|source| self.error("mount(2)", lowers.len(), source))
    }
}

enum LowerPlus {
    /// The kernel does not know `lowerdir+`.
    Unknown,
    Failed(io::Error),
}

impl LowerPlus {
    fn raw_os_error(&self) -> Option<i32> {
        match self {
            LowerPlus::Unknown => None,
            LowerPlus::Failed(e) => e.raw_os_error(),
        }
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Escapes the characters overlayfs's option parser treats specially.
fn escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `lowerdir=top:…:bottom,upperdir=…,workdir=…,index=off` for `mount(2)`.
fn classic_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    format!("lowerdir={},upperdir={},workdir={},index=off", lower.join(":"), escape(upper), escape(work))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_options_escape_and_keep_order() {
        let lowers = [PathBuf::from("/s/top"), PathBuf::from("/s/a:b,c")];
        let s = classic_options(&lowers, Path::new("/c/up"), Path::new("/c/work"));
        assert_eq!(s, r"lowerdir=/s/top:/s/a\:b\,c,upperdir=/c/up,workdir=/c/work,index=off");
    }
}
