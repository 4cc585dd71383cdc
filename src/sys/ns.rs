//! Processes and namespaces: `fork`, a `clone3` that makes a sibling in new
//! namespaces, `unshare`, `setns`, and bringing up loopback in a fresh
//! network namespace.
//!
//! The runtime starts a container in two hops (see `runtime::process`): a
//! plain `fork` (glibc's, so that the allocator's locks are reset in a child
//! of a multi-threaded parent), then from that single-threaded child a
//! [`clone_sibling`] with `CLONE_PARENT`, so that the container's first
//! process is a direct, waitable child of the caller.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sched::{self, CloneFlags};
use nix::unistd::{self, ForkResult, Pid};

/// Which side of a fork or clone this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The original process; the new one has this pid.
    Parent(Pid),
    /// The new process.
    Child,
}

/// `fork(2)` through glibc.
///
/// The child of a multi-threaded process may only rely on what glibc resets
/// at fork: the allocator works, but locks held by other threads (Rust's
/// stdout and environment locks among them) may never be released, so the
/// child must not print or read the environment, and should exec or `_exit`
/// soon.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the callers (runtime::process) only run their own single-threaded
    // code in the child and leave with exec or _exit, never unwinding into the
    // parent's frames; glibc's fork keeps malloc usable in the child.
    match unsafe { unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// `clone3(CLONE_PARENT | flags)` without a new stack, like `fork`: the new
/// process continues from here on a copy of this one's memory and is a child
/// of *this process's parent*, so the parent can `waitpid` it. `flags` may
/// hold `CLONE_NEW*` flags (`CLONE_NEWPID` puts the new process in a fresh
/// PID namespace as its PID 1).
///
/// Must be called from a single-threaded process (the child of [`fork`]):
/// glibc's fork bookkeeping does not run, so the child's cached thread id is
/// stale and locks held by other threads would stay held.
pub fn clone_sibling(flags: CloneFlags) -> io::Result<Forked> {
    let mut args: libc::clone_args = libc_clone_args();
    args.flags = (flags | CloneFlags::CLONE_PARENT).bits() as u64;
    // exit_signal must be 0 with CLONE_PARENT: the child inherits ours.
    args.exit_signal = 0;
    // SAFETY: clone3 with a zero stack behaves like fork: the child resumes
    // here on a private copy of the address space. `args` is a valid,
    // initialised clone_args that outlives the call, and its size is passed.
    let rc = unsafe {
        libc::syscall(libc::SYS_clone3, &mut args as *mut libc::clone_args, std::mem::size_of::<libc::clone_args>())
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

fn libc_clone_args() -> libc::clone_args {
    // SAFETY: clone_args is a plain C struct of integers, for which all-zero
    // is a valid value (no flags, no pointers).
    unsafe { std::mem::zeroed() }
}

/// Lets every user bind ports below 1024 in the network namespace this
/// process is in (`net.ipv4.ip_unprivileged_port_start = 0`, as Docker sets
/// it for containers).
pub fn allow_low_ports() -> io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
}

/// `unshare(flags)`: moves this process into new namespaces (for
/// `CLONE_NEWPID`, only its future children).
pub fn unshare(flags: CloneFlags) -> io::Result<()> {
    Ok(sched::unshare(flags)?)
}

/// `setns(fd, nstype)`: joins the namespace that `fd` (an open
/// `/proc/PID/ns/*` or bind-mounted namespace file) refers to.
pub fn setns(fd: BorrowedFd<'_>, nstype: CloneFlags) -> io::Result<()> {
    Ok(sched::setns(fd, nstype)?)
}

/// Sets `IFF_UP` on the loopback interface of the current network namespace.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket() returns a new fd or -1; we take ownership right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is a plain C struct (and union) for which zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags in `req`,
    // which is valid and outlives the call.
    if unsafe { libc::ioctl(sock.as_fd().as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled the ifr_flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_fd().as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The inode number of `/proc/PID/ns/NAME` (`pid` `None` is this process),
/// which identifies the namespace.
pub fn ns_inode(pid: Option<Pid>, name: &str) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/ns/{name}"),
        None => format!("/proc/self/ns/{name}"),
    };
    Ok(std::fs::metadata(path)?.ino())
}

/// Makes a network namespace that outlives every process: a new namespace
/// (with `lo` up), made on a short-lived thread and bind-mounted onto
/// `target`, a file this creates. Containers join it by that path.
pub fn persistent_netns(target: &std::path::Path) -> io::Result<()> {
    std::fs::File::create(target)?;
    let at = target.to_path_buf();
    let made = std::thread::spawn(move || -> io::Result<()> {
        // Only this thread moves: unshare(CLONE_NEWNET) is per task.
        unshare(CloneFlags::CLONE_NEWNET)?;
        loopback_up()?;
        let own = format!("/proc/self/task/{}/ns/net", unistd::gettid());
        nix::mount::mount(Some(own.as_str()), &at, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if made.is_err() {
        let _ = std::fs::remove_file(target);
    }
    made
}

/// Whether `target` is a namespace file kept by a bind mount (what
/// [`persistent_netns`] makes): on the `nsfs` filesystem. `false` for a
/// plain file (a leftover whose mount is gone) and for no file at all.
pub fn is_persistent_ns(target: &std::path::Path) -> io::Result<bool> {
    match nix::sys::statfs::statfs(target) {
        Ok(fs) => Ok(fs.filesystem_type() == nix::sys::statfs::FsType(libc::NSFS_MAGIC as _)),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Undoes [`persistent_netns`]: detaches every bind mount on `target`
/// (`MNT_DETACH`: processes still in the namespace keep it until they
/// leave) and removes the file. Nothing there is not an error.
pub fn remove_persistent_netns(target: &std::path::Path) -> io::Result<()> {
    // Stacked mounts (two binds on one file) come off one at a time.
    for _ in 0..16 {
        match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            Err(e) => return Err(e.into()),
        }
    }
    match std::fs::remove_file(target) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
