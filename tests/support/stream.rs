//! Output that arrives while a test runs, and terminals.
//!
//! - [`Collected`]: a child's stdout or stderr copied by a thread into a
//!   buffer the test reads while the child runs; [`Collected::wait_for`] is
//!   the readiness signal "this line was printed".
//! - [`Terminal`]: a shell command run by `script(1)` on a pty of its own, as
//!   on a user's terminal; the test waits for what it printed, types keys,
//!   and reads what the terminal showed. `script` is in bsdutils, which is
//!   Essential in Debian.
//! - [`wait_child`]: waits for a child to exit, at most [`PATIENCE`], and
//!   kills it (by its pid) and fails the test if it does not.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::PATIENCE;

/// What a reader thread has copied so far from one pipe.
pub struct Collected {
    text: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Collected {
    /// Copies `from` into a buffer on a thread of its own until it ends.
    pub fn start(mut from: impl Read + Send + 'static) -> Collected {
        let text = Arc::new(Mutex::new(Vec::new()));
        let into = text.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Collected { text, thread: Some(thread) }
    }

    /// Everything copied so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Waits until the text from byte `from` on contains `needle`; returns
    /// the length of the text then. Fails the test, with the text, after
    /// [`PATIENCE`].
    #[track_caller]
    pub fn wait_for(&self, from: usize, needle: &str) -> usize {
        let until = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if text.get(from..).is_some_and(|t| t.contains(needle)) {
                return text.len();
            }
            assert!(Instant::now() < until, "never printed {needle:?} in {PATIENCE:?}; printed:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the pipe to end (its writers have exited) and returns all
    /// of the text.
    pub fn finish(mut self) -> String {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.text()
    }
}

/// Waits for `child` to exit, at most [`PATIENCE`]; kills it and fails the
/// test, naming `what`, if it does not.
#[track_caller]
pub fn wait_child(child: &mut Child, what: &str) -> ExitStatus {
    let until = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {PATIENCE:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A shell command running on a terminal of its own (see the module page).
pub struct Terminal {
    child: Child,
    keys: Option<ChildStdin>,
    shown: Option<Collected>,
}

impl Terminal {
    /// Runs `shell` with `script -qec SHELL /dev/null`. Its input stays
    /// open until it exits (script would otherwise send the end of its
    /// input to the terminal).
    pub fn run(shell: &str) -> Terminal {
        let mut child = Command::new("script")
            .args(["-qec", shell, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script(1) from bsdutils");
        let keys = child.stdin.take();
        let shown = Collected::start(child.stdout.take().unwrap());
        Terminal { child, keys, shown: Some(shown) }
    }

    /// Waits until the terminal has shown `needle`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) {
        self.shown.as_ref().unwrap().wait_for(0, needle);
    }

    /// Types `keys` on the terminal.
    pub fn type_keys(&mut self, keys: &[u8]) {
        let stdin = self.keys.as_mut().unwrap();
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the command to end and returns what the terminal showed,
    /// without carriage returns.
    #[track_caller]
    pub fn finish(mut self) -> String {
        wait_child(&mut self.child, "the command on the terminal");
        self.keys.take();
        self.shown.take().unwrap().finish().replace('\r', "")
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A shell snippet that waits (at most a minute) until the terminal it
/// runs on is in raw mode, as `berth attach` and `berth run -it` set it,
/// then prints `RAW-MODE-ON`: keys typed after that reach the container
/// as they are (typed earlier, the line discipline would edit them, and eat
/// Ctrl-Q as flow control). Run it in the background beside the command.
pub const WAIT_FOR_RAW_MODE: &str = "(i=0; while [ $i -lt 1200 ] && ! stty -a </dev/tty | grep -q -- ' -icanon'; \
     do sleep 0.05; i=$((i+1)); done; stty -a </dev/tty | grep -q -- ' -icanon' && echo RAW-MODE-ON)";
