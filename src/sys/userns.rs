//! The mechanics of a rootless berth's user namespace: a forked *holder*
//! that makes a new user and mount namespace and then waits, doing nothing,
//! so that the namespaces outlive the invocation that made them; joining
//! them by pid; and reading the id maps this process lives under.
//!
//! Policy (who gets which ids, when a holder is made, where its pid is
//! kept) is `runtime::userns`; this file only forks, unshares, waits and
//! joins.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// The name a holder gives itself (`/proc/PID/comm`), so that a pid file
/// left over from a holder that died is not taken for a live one whose pid
/// the kernel gave to something else.
pub const HOLDER_COMM: &str = "berth-userns";

/// A forked holder that has made its namespaces and waits for its id maps
/// to be written before it detaches (see [`Holder::release`]).
#[derive(Debug)]
pub struct Holder {
    pid: Pid,
    go: File,
}

impl Holder {
    /// The holder's pid, for `newuidmap PID …` and `/proc/PID/ns/*`.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Lets the holder detach and wait forever (its maps are written).
    pub fn release(mut self) -> io::Result<()> {
        self.go.write_all(b"g")
    }

    /// Ends a holder whose maps could not be written, and reaps it.
    pub fn abandon(self) {
        drop(self.go); // EOF: the holder exits
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Forks a holder that unshares `flags` (a new user namespace, and more)
/// and reports back; returns once the namespaces exist. Call only while the
/// process has one thread (no Rust code but this runs in the child).
///
/// Once released, the holder starts a new session, moves to `/`, puts
/// `/dev/null` on its standard streams, closes every other fd and sleeps
/// until killed: it holds no file of its parent's (a pipe a test reads to
/// its end would never end otherwise). It is a child of the caller until
/// the caller exits; nothing needs to reap it before then.
pub fn fork_holder(flags: CloneFlags) -> io::Result<Holder> {
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    match super::ns::fork()? {
        super::ns::Forked::Child => {
            drop(ready_r);
            drop(go_w);
            holder_main(flags, File::from(ready_w), File::from(go_r))
        }
        super::ns::Forked::Parent(pid) => {
            drop(ready_w);
            drop(go_r);
            let mut status = [0u8; 5];
            let n = read_full(&mut File::from(ready_r), &mut status)?;
            if n == 5 && status[0] == b'k' {
                return Ok(Holder { pid, go: File::from(go_w) });
            }
            let _ = nix::sys::wait::waitpid(pid, None);
            if n == 5 && status[0] == b'e' {
                let errno = i32::from_le_bytes([status[1], status[2], status[3], status[4]]);
                return Err(io::Error::from_raw_os_error(errno));
            }
            Err(io::Error::other("the namespace holder exited before it made its namespaces"))
        }
    }
}

/// The holder's side of [`fork_holder`]; never returns.
fn holder_main(flags: CloneFlags, mut ready: File, mut go: File) -> ! {
    if let Err(e) = super::ns::unshare(flags) {
        let errno = e.raw_os_error().unwrap_or(libc::EINVAL).to_le_bytes();
        let _ = ready.write_all(&[b'e', errno[0], errno[1], errno[2], errno[3]]);
        super::exec::exit_now(1);
    }
    let _ = ready.write_all(b"k0000");
    let mut byte = [0u8; 1];
    if !matches!(go.read(&mut byte), Ok(1)) {
        super::exec::exit_now(1); // the parent gave up
    }
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    let _ = nix::sys::prctl::set_name(c"berth-userns");
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = super::exec::dup_onto(null.as_fd(), fd);
        }
    }
    // SAFETY: close_range only closes fds of this process; nothing in this
    // process uses any fd above 2 from here on (it only sleeps).
    unsafe { libc::close_range(3, libc::c_uint::MAX, 0) };
    loop {
        nix::unistd::pause();
    }
}

/// Joins the user namespace and then the mount namespace of `pid` (a
/// holder, whose user namespace this process's effective uid owns, which
/// gives it every capability there). Call only while single-threaded.
pub fn join(pid: Pid) -> io::Result<()> {
    let user = File::open(format!("/proc/{pid}/ns/user"))?;
    let mnt = File::open(format!("/proc/{pid}/ns/mnt"))?;
    super::ns::setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)?;
    super::ns::setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS)
}

/// `/proc/PID/comm`, trimmed; `None` if the process is gone.
pub fn comm(pid: Pid) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim_end().to_owned())
}

/// The uid of `/proc/PID` (the process's owner), `None` if it is gone.
pub fn proc_owner(pid: Pid) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// The real user and group id of this process.
pub fn real_ids() -> (u32, u32) {
    (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
}

/// `/proc/self/uid_map`'s text ("0 0 4294967295" in the initial namespace).
pub fn own_uid_map() -> io::Result<String> {
    std::fs::read_to_string("/proc/self/uid_map")
}

/// `/proc/self/gid_map`'s text.
pub fn own_gid_map() -> io::Result<String> {
    std::fs::read_to_string("/proc/self/gid_map")
}

/// Whether this process lives in a user namespace other than the initial
/// one: its uid map is not the identity over every id.
pub fn in_user_namespace() -> bool {
    match own_uid_map() {
        Ok(text) => !is_identity_map(&text),
        Err(_) => false,
    }
}

/// Whether a uid map's text is the initial namespace's ("0 0 4294967295").
pub fn is_identity_map(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The prefix of the xattrs overlayfs reads in this process's user
/// namespace: `trusted.overlay.` in the initial one, `user.overlay.` in
/// another, where berth mounts with `userxattr` (trusted xattrs need
/// `CAP_SYS_ADMIN` in the initial namespace).
pub fn overlay_xattr_prefix() -> &'static str {
    if in_user_namespace() { "user.overlay." } else { "trusted.overlay." }
}

/// Writes an id map directly (`/proc/PID/uid_map` or `gid_map`): what an
/// unprivileged process may do for a child namespace of its own when the
/// map names only its own id (for `gid_map`, after [`deny_setgroups`]).
pub fn write_map(pid: Pid, which: &str, map: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/{which}"), map)
}

/// Writes `deny` to `/proc/PID/setgroups`, which the kernel requires before
/// an unprivileged process writes a gid map.
pub fn deny_setgroups(pid: Pid) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
