//! Every raw system call and every `unsafe` block of berth, behind small safe
//! functions. Each `unsafe` carries a `// SAFETY:` line. No policy lives here:
//! callers decide what to do, these functions only do it.

pub mod beneath;
pub mod caps;
pub mod daemon;
pub mod exec;
pub mod fs;
pub mod lock;
pub mod mem;
pub mod mount;
pub mod netns;
pub mod ns;
pub mod proc;
pub mod pty;
pub mod scoped;
pub mod seccomp;
pub mod signal;
pub mod splice;
pub mod tty;
pub mod userns;
pub mod xattr;

/// The effective user id of this process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
