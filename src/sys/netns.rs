//! Network namespaces and the few socket calls std lacks, for the port
//! proxy (`runtime::ports`).
//!
//! A socket belongs to the network namespace of the thread that created it,
//! for its whole life, whichever thread uses it later. So the proxy keeps one
//! thread that has entered the container's namespace ([`enter_net_ns`]) and
//! creates sockets there ([`stream_socket`], [`datagram_socket`]); any other
//! thread then connects them ([`connect`], or std's `UdpSocket::connect`).
//! [`wake_listener`] makes a thread blocked in `accept` return, which std
//! cannot do without closing the listener under it; [`wait_readable`] waits
//! on many sockets at once, for the UDP relay.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{
    self, AddressFamily, Shutdown, SockFlag, SockType, SockaddrIn, SockaddrIn6, setsockopt, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

/// Moves the calling thread (only it) into the network namespace `ns`, an
/// open `/proc/PID/ns/net` or bind mount of one. Fails with `EINVAL` if `ns`
/// is not a network namespace, `EPERM` without `CAP_SYS_ADMIN`.
pub fn enter_net_ns(ns: &File) -> io::Result<()> {
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// A new TCP socket for `addr`'s family, in the calling thread's network
/// namespace, close-on-exec.
pub fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    socket::socket(family(addr), SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(io::Error::from)
}

/// A new UDP socket for `addr`'s family, in the calling thread's network
/// namespace, close-on-exec.
pub fn datagram_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    socket::socket(family(addr), SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(io::Error::from)
}

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// Connects `fd` (from [`stream_socket`]) to `addr`, giving up after
/// `timeout` (`ErrorKind::TimedOut`).
pub fn connect(fd: OwnedFd, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    // Linux bounds a blocking connect(2) by the send timeout; it is cleared
    // again afterwards so that later writes block as usual.
    let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX).max(1);
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::milliseconds(millis)).map_err(io::Error::from)?;
    let deadline = Instant::now() + timeout;
    let mut first = true;
    loop {
        let result = match addr {
            SocketAddr::V4(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
            SocketAddr::V6(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn6::from(a)),
        };
        match result {
            Ok(()) => break,
            // A retry after EINTR finds the first attempt finished.
            Err(Errno::EISCONN) if !first => break,
            // Interrupted by a signal: the attempt goes on in the background.
            Err(Errno::EINTR | Errno::EALREADY) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(Errno::EINPROGRESS | Errno::EALREADY | Errno::EINTR) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {timeout:?}")));
            }
            Err(e) => return Err(e.into()),
        }
        first = false;
    }
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::zero()).map_err(io::Error::from)?;
    Ok(TcpStream::from(fd))
}

/// Shuts a listening socket down: threads blocked in `accept` on it return
/// an error (`EINVAL`), later connections are refused, and the port is free
/// once the listener is dropped.
pub fn wake_listener(listener: &TcpListener) -> io::Result<()> {
    socket::shutdown(listener.as_raw_fd(), Shutdown::Both).map_err(io::Error::from)
}

/// Waits until one of `fds` can be read (or has an error, or hung up), or
/// `timeout` passes (`None`: no limit); returns, per fd, whether it can. A
/// signal ends the wait early with none ready.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polls: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
    let timeout = match timeout {
        None => PollTimeout::NONE,
        // Rounded up: a wait of 0 ms for 0.4 ms left would spin.
        Some(t) => PollTimeout::try_from(t.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX),
    };
    match poll(&mut polls, timeout) {
        Ok(_) => Ok(polls.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect()),
        Err(Errno::EINTR) => Ok(vec![false; fds.len()]),
        Err(e) => Err(e.into()),
    }
}

/// Runs `f` on a short-lived thread that has entered the network namespace
/// file `ns` (a bind mount of one, or `/proc/PID/ns/net`), so that sockets
/// `f` opens (netlink among them) belong to that namespace. The calling
/// thread stays where it is.
pub fn in_net_ns<T: Send>(ns: &std::path::Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let file = File::open(ns)?;
    thread::scope(|s| {
        s.spawn(|| {
            enter_net_ns(&file)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}
