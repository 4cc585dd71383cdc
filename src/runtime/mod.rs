//! The container runtime: real Linux containers with no daemon and no other
//! runtime underneath.
//!
//! Everything berth runs is first turned into an OCI runtime spec
//! (`config.json`, [`spec`]); the core ([`process`]) consumes that spec:
//! it starts a process in new namespaces, mounts the root filesystem
//! (overlayfs over the image's unpacked layers, [`rootfs`]), sets up `/proc`,
//! `/dev` and the rest ([`mounts`]), pivots into it, drops privileges and
//! runs berth's own reaping init ([`init`]) as PID 1, which runs the
//! command. Limits come from cgroups v1 or v2 ([`cgroup`]). A shim process
//! per detached container ([`shim`]) owns it: logs ([`logs`]), state
//! ([`state`]), restart policy ([`restart`]), published ports ([`ports`])
//! and attached clients ([`attach`]); a foreground `berth run` supervises
//! its container from the CLI itself ([`foreground`]). The CLI controls
//! containers only through their directories' files and signals
//! ([`control`]).
//!
//! # Start-up order, and what each step guards against
//!
//! In the parent (shim or CLI), before any process exists:
//! 1. **Plan** the spec (`process::plan`, `MountPlan::new`): bad args, cwd,
//!    capabilities, bind sources, namespace files fail here, with names.
//! 2. **Read-only init binary** (`InitExe`, once per parent): berth opened
//!    through a detached, read-only overlayfs of its own directory (or, where
//!    that is unavailable, a memfd copy sealed against writes). No container
//!    process can ever write the host's berth binary through `/proc/PID/exe`
//!    (CVE-2019-5736), and no per-container copy costs memory.
//!
//! In the container's processes:
//! 3. **fork** (glibc's; safe from a threaded parent), put stdio on 0–2, the
//!    error pipe on 3, the sync pipe on 4, the config on 5, everything else
//!    close-on-exec, and **exec the init binary** while the host's root (and
//!    its dynamic loader) is still visible. From here on only the memfd
//!    image runs: fresh, single-threaded, holding none of the parent's
//!    memory or fds.
//! 4. **clone3(CLONE_PARENT|CLONE_NEWPID)**: PID 1 of a new PID namespace,
//!    a direct child of the parent (waitable); the stage reports its pid
//!    and exits. `exec_in` joins the target's namespaces here instead.
//! 5. **Wait on the sync pipe** while the parent runs `before_start` (puts
//!    the pid in its cgroups), so the process never runs unlimited.
//! 6. **Non-dumpable**: `/proc/1/*` (exe, fds, memory) closed to the
//!    container, which has no `CAP_SYS_PTRACE`.
//! 7. **Join namespaces by path** (a shared network namespace), then
//!    **unshare** mount, UTS, IPC, network and cgroup: the cgroup namespace
//!    is created after step 5, so its root is the container's own cgroup.
//!    A new network namespace gets `lo` up, nothing else.
//! 8. **`MS_REC|MS_PRIVATE` on `/`**: nothing mounted from here propagates
//!    to the host, and host mounts do not propagate in.
//! 9. **Overlay root** at the target (`lowerdir+` per layer: any number of
//!    layers), in the container's mount namespace: never in the host's
//!    mount table, gone with the namespace.
//! 10. **Spec mounts, device nodes, `/dev` symlinks, `/dev/console`**, each
//!     target resolved with `openat2(RESOLVE_IN_ROOT)` and mounted through
//!     `/proc/self/fd/N`: a symlink in the image cannot send a mount or a
//!     device node outside the root.
//! 11. **pivot_root** (never chroot, which can be escaped) and detach the
//!     old root: the host's file tree is unreachable.
//! 12. **Masked paths** (empty read-only tmpfs or `/dev/null`) and
//!     **read-only paths** over the container's `/proc` and `/sys`: no
//!     kernel knobs or host information through them; optional read-only
//!     root.
//! 13. **Hostname**, **rlimits** (clamped to the parent's hard limits:
//!     never raised), **setsid** (+ `TIOCSCTTY` for a terminal).
//! 14. **Capabilities**: bounding set cut to the spec's first (it limits
//!     what any later exec can regain), then uid/gid/groups with
//!     `PR_SET_KEEPCAPS`, then effective/permitted/inheritable, ambient
//!     cleared; **no_new_privs** when the spec asks for it (Docker's
//!     `--security-opt no-new-privileges`; off by default, as in Docker):
//!     setuid binaries and file capabilities then grant nothing; the **seccomp filter** ([`seccomp`], Docker's default
//!     profile unless the spec says otherwise), compiled in the parent,
//!     installed last with no_new_privs, or before the capabilities are
//!     dropped without it (installing needs CAP_SYS_ADMIN then).
//! 15. **Working directory** resolved inside the new root as the user (a
//!     leaked host fd or `/proc/self/fd/N` cannot be the cwd,
//!     CVE-2024-21626), then every fd above 3 close-on-exec.
//! 16. **Init** (same process, no exec needed: it already is the read-only
//!     image): forks the command, which executes with the spec's env and
//!     only fds 0–2; init reaps every process and forwards signals.
//!
//! Costs on the test machine (2 cores, kernel 6.18, release build): the
//! memfd copy of berth, when it is used, takes about 2 ms once per parent; a
//! container running `true` is executing its command 4.3 ms after
//! `launch` is called and has exited and been reaped at 5.1 ms. A container
//! also never outlives its supervisor (`PR_SET_PDEATHSIG`, set before step
//! 5), so a killed shim leaves nothing running.

pub mod attach;
pub mod cgroup;
pub mod container;
pub mod control;
pub mod create;
pub mod defaults;
pub mod diff;
pub mod exec;
pub mod export;
pub mod foreground;
pub mod freeze;
pub mod hardening;
pub mod health;
pub mod init;
pub mod logs;
pub mod mounts;
pub mod netns;
pub mod network;
pub mod ports;
pub mod process;
pub mod restart;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod shim;
pub mod spec;
pub mod state;
pub mod stats;
pub mod supervise;
pub mod tmpfs;
pub mod top;
pub mod tty;
pub mod userns;
pub mod userns_auto;

#[cfg(test)]
pub(crate) mod tests;
