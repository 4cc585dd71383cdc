//! Pull and push progress: one line per blob, redrawn in place on a
//! terminal (at most ten times a second), plain lines for each finished
//! blob otherwise.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth::manifest::values::ByteSize;
use berth::oci::Digest;
use berth::registry::Event;

struct View {
    lines: Vec<(Digest, String)>,
    drawn: usize,
    last: Option<Instant>,
}

/// Where transfer events go.
pub struct TransferView {
    live: bool,
    quiet: bool,
    moving: &'static str,
    view: Mutex<View>,
}

impl TransferView {
    /// `moving` is what a blob in flight is doing ("downloading",
    /// "uploading"); `live` redraws in place; `quiet` shows nothing.
    pub fn new(moving: &'static str, live: bool, quiet: bool) -> TransferView {
        TransferView { live, quiet, moving, view: Mutex::new(View { lines: Vec::new(), drawn: 0, last: None }) }
    }

    pub fn event(&self, e: Event) {
        if self.quiet {
            return;
        }
        let (digest, state, finished) = match &e {
            Event::Present { digest, size } => (digest, format!("already there ({})", ByteSize(*size)), true),
            Event::Mounted { digest, size, from } => {
                (digest, format!("mounted from {from} ({})", ByteSize(*size)), true)
            }
            Event::Moving { digest, size, done } => {
                (digest, format!("{} {} / {}", self.moving, ByteSize(*done), ByteSize(*size)), false)
            }
            Event::Retrying { digest, attempt, why } => {
                (digest, format!("retrying after attempt {attempt}: {why}"), true)
            }
            Event::Done { digest, size } => (digest, format!("done ({})", ByteSize(*size)), true),
        };
        if !self.live {
            if finished {
                eprintln!("{}: {state}", short(digest));
            }
            return;
        }
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        match view.lines.iter_mut().find(|(d, _)| d == digest) {
            Some(line) => line.1 = state,
            None => view.lines.push((digest.clone(), state)),
        }
        let due = view.last.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if finished || due {
            draw(&mut view);
        }
    }

    /// Draws the final state (on a terminal).
    pub fn finish(&self) {
        if self.live && !self.quiet {
            draw(&mut self.view.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }
}

fn draw(view: &mut View) {
    let mut out = String::new();
    if view.drawn > 0 {
        out.push_str(&format!("\x1b[{}A", view.drawn));
    }
    for (digest, state) in &view.lines {
        out.push_str(&format!("\x1b[2K{}: {state}\n", short(digest)));
    }
    view.drawn = view.lines.len();
    view.last = Some(Instant::now());
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
}

fn short(digest: &Digest) -> &str {
    &digest.hex()[..12]
}
