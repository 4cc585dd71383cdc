//! seccomp: which system calls a container's processes may make.
//!
//! Every container runs under a filter unless it asks for none
//! (`--security-opt seccomp=unconfined`). The default is Docker's default
//! profile ([`default_profile`]); `--security-opt seccomp=FILE` reads a
//! profile in Docker's (or OCI's) JSON format ([`Profile::load`]). A
//! profile's conditions (capabilities, architecture, kernel version) are
//! decided when the container is created, against its effective
//! capabilities, and the result is kept in its spec as OCI's
//! `linux.seccomp` ([`for_spec`]), so `exec` and health checks get the
//! same filter as the container's command. The runtime compiles that
//! object ([`compile`]) in the parent before a process exists (a mistake is
//! an error there) and installs the program in the container's process
//! just before it executes berth's init (with `no_new_privs`), or before
//! it drops its capabilities (without: installing a filter then needs
//! CAP_SYS_ADMIN), as runc does.
//!
//! Build steps (`run` commands and package installs) run under the
//! default profile too, as BuildKit's `RUN` steps do under Docker's: the
//! builder puts it in each build container's spec ([`set_in_spec`]), and it
//! is compiled once per step, in the parent, as for a container's start.
//!
//! Only x86_64's system calls are filtered: calls through the i386
//! (`int 0x80`) and x32 ABIs are refused with EPERM under every profile,
//! Docker's included (Docker allows them with the same list): their
//! numbers differ, so an allow-list would have to be written again for
//! each, and a deny-list (default allow, some calls refused) would be
//! escaped through them. 32-bit x86 programs do not run in a confined
//! container.

pub mod compile;
mod default;
pub mod profile;
mod table;

use std::path::PathBuf;

use oci_spec::runtime::{LinuxSeccomp, Spec};

pub use compile::{CompileError, Filter, compile};
pub use default::profile as default_profile;
pub use profile::Profile;

/// Why a seccomp profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("seccomp profile {}:{line}:{column}: {reason} (expected Docker's or OCI's JSON profile format)", path.display())]
    Json { path: PathBuf, line: usize, column: usize, reason: String },
    #[error("seccomp profile {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("seccomp profile {}: {source}", path.display())]
    Compile { path: PathBuf, source: CompileError },
}

/// The OCI `linux.seccomp` object of `profile` for a container whose
/// effective capabilities are `caps` (bit N for capability N), on the
/// running kernel.
pub fn for_spec(profile: &Profile, caps: u64) -> LinuxSeccomp {
    let kernel = crate::sys::seccomp::kernel_release().ok().and_then(|r| profile::parse_kernel(&r)).unwrap_or((0, 0));
    profile.resolve(profile::Context { caps, kernel })
}

/// Puts `profile` (`None`: no filter) in `spec` as its `linux.seccomp`,
/// decided for the effective capabilities of the spec's process: call it
/// after the last change to them.
pub fn set_in_spec(spec: &mut Spec, profile: Option<&Profile>) {
    let caps = spec.process().as_ref().and_then(|p| p.capabilities().as_ref()).and_then(|c| c.effective().as_ref());
    let mask = caps
        .into_iter()
        .flatten()
        .filter_map(|c| crate::sys::caps::number(&c.to_string()))
        .fold(0u64, |m, n| m | 1 << n);
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_seccomp(profile.map(|p| for_spec(p, mask)));
    spec.set_linux(Some(linux));
}

#[cfg(test)]
mod tests;
