//! `-it`: relaying a container's pty to the user's terminal.
//!
//! The supervisor holds the pty master; the container's stdio is the slave.
//! [`relay`] copies the user's input to the master and the master's output
//! to the user, keeps the window size in step (SIGWINCH), and returns when
//! the container side closes. The user's terminal is in raw mode meanwhile
//! and restored by the caller's [`crate::sys::tty::RawMode`] guard, also on
//! error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::thread;

use signal_hook::consts::SIGWINCH;
use signal_hook::iterator::Signals;

use crate::sys::tty::{set_window_size, window_size};

/// Copies the window size of the user's terminal to the pty now and on every
/// SIGWINCH, on a background thread, until the returned handle is closed.
pub fn follow_window_size(master: &File) -> io::Result<signal_hook::iterator::Handle> {
    let copy = master.try_clone()?;
    if let Some(ws) = window_size(io::stdout()) {
        let _ = set_window_size(&copy, &ws);
    }
    let mut signals = Signals::new([SIGWINCH])?;
    let handle = signals.handle();
    thread::spawn(move || {
        for _ in signals.forever() {
            if let Some(ws) = window_size(io::stdout()) {
                let _ = set_window_size(&copy, &ws);
            }
        }
    });
    Ok(handle)
}

/// Relays between the pty `master` and the user's terminal until the
/// container closes its side. Input is copied on a detached thread (a read
/// of stdin cannot be interrupted portably); it ends with the process.
pub fn relay(master: OwnedFd, forward_input: bool) -> io::Result<()> {
    let master = File::from(master);
    let resize = follow_window_size(&master)?;
    if forward_input {
        let mut to_container = master.try_clone()?;
        thread::spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let result = copy_until_hangup(&master, &mut io::stdout().lock());
    resize.close();
    result
}

/// Copies `from` to `to` until EOF or EIO (a pty master reads EIO once the
/// last slave is closed).
fn copy_until_hangup(mut from: &File, to: &mut impl Write) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                to.write_all(&buf[..n])?;
                to.flush()?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A pty for a command started in the foreground: the master (for
/// [`relay`]) and the slave as the command's stdio, already of the user's
/// window size so the command sees it from its first instruction.
pub fn open_terminal() -> io::Result<(OwnedFd, crate::runtime::process::Stdio)> {
    let (master, slave) = crate::sys::pty::open_pair()?;
    if let Some(ws) = window_size(io::stdout()) {
        let _ = set_window_size(&master, &ws);
    }
    Ok((master, crate::runtime::process::Stdio::terminal(slave)?))
}

/// What a CLI that supervises a process in the foreground runs beside it:
/// the signals berth gets passed on to the process, and its terminal
/// relayed when it has one.
pub struct Companions {
    signals: signal_hook::iterator::Handle,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Companions {
    /// Starts forwarding to `pid`, and relaying `master` (with the user's
    /// input when `interactive`) in raw mode.
    pub fn start(pid: nix::unistd::Pid, master: Option<OwnedFd>, interactive: bool) -> io::Result<Companions> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])?;
        let handle = signals.handle();
        let mut threads = vec![thread::spawn(move || {
            for sig in signals.forever() {
                let _ = crate::sys::proc::kill_raw(pid, sig);
            }
        })];
        if let Some(m) = master {
            threads.push(thread::spawn(move || {
                let _raw = crate::sys::tty::RawMode::enter(io::stdin()).ok();
                let _ = relay(m, interactive);
            }));
        }
        Ok(Companions { signals: handle, threads })
    }

    /// Stops forwarding and waits for the relay to drain (call once the
    /// process has exited).
    pub fn finish(self) {
        self.signals.close();
        for t in self.threads {
            let _ = t.join();
        }
    }
}
