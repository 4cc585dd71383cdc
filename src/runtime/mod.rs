//! The container runtime: real Linux containers with no daemon and no other
//! runtime underneath.
//!
//! Everything berth runs is first turned into an OCI runtime spec
//! (`config.json`, [`spec`]); the core ([`process`]) consumes that spec:
//! it clones a process into new namespaces, mounts the root filesystem
//! (overlayfs over the image's unpacked layers, [`rootfs`]), sets up `/proc`,
//! `/dev` and the rest ([`mounts`]), pivots into it, drops privileges and
//! executes berth's own reaping init ([`init`]) as PID 1, which runs the
//! command. Limits come from cgroups v1 or v2 ([`cgroup`]). A shim process
//! per detached container ([`shim`]) owns it: logs ([`logs`]), state
//! ([`state`]), restart policy and published ports ([`ports`]).
//!
//! (The overview of start-up order and of what each step guards against is
//! completed as the pieces land.)

pub mod cgroup;
pub mod container;
pub mod control;
pub mod create;
pub mod diff;
pub mod exec;
pub mod foreground;
pub mod init;
pub mod logs;
pub mod mounts;
pub mod ports;
pub mod process;
pub mod restart;
pub mod rootfs;
pub mod shim;
pub mod spec;
pub mod state;
pub mod supervise;
pub mod top;
pub mod tty;

#[cfg(test)]
mod tests;
