//! Terminal calls: window sizes, raw mode and echo on the user's terminal.

use std::os::fd::{AsFd, AsRawFd};

use nix::sys::termios::{self, SetArg, Termios};

pub use nix::pty::Winsize;

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, Winsize);

/// The window size of the terminal on `fd`, if it is one.
pub fn window_size(fd: impl AsFd) -> Option<Winsize> {
    let mut ws = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `Winsize` into the valid, owned `ws`;
    // the fd is borrowed and open for the duration of the call.
    let r = unsafe { tiocgwinsz(fd.as_fd().as_raw_fd(), &mut ws) };
    r.ok().map(|_| ws)
}

/// Sets the window size of the terminal on `fd` (a pty master).
pub fn set_window_size(fd: impl AsFd, ws: &Winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one `Winsize` from the valid reference `ws`;
    // the fd is borrowed and open for the duration of the call.
    unsafe { tiocswinsz(fd.as_fd().as_raw_fd(), ws) }.map(|_| ())
}

/// Puts the terminal on `fd` in raw mode until the guard is dropped, which
/// restores the settings it found.
pub struct RawMode<F: AsFd> {
    fd: F,
    saved: Termios,
}

impl<F: AsFd> RawMode<F> {
    pub fn enter(fd: F) -> nix::Result<RawMode<F>> {
        let saved = termios::tcgetattr(fd.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl<F: AsFd> Drop for RawMode<F> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Turns echo off on the terminal on `fd` until the guard is dropped, which
/// restores the settings it found: for reading a password.
pub struct NoEcho<F: AsFd> {
    fd: F,
    saved: Termios,
}

impl<F: AsFd> NoEcho<F> {
    pub fn enter(fd: F) -> nix::Result<NoEcho<F>> {
        let saved = termios::tcgetattr(fd.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &quiet)?;
        Ok(NoEcho { fd, saved })
    }
}

impl<F: AsFd> Drop for NoEcho<F> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
