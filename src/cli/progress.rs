//! Build progress: a live view of the graph on a terminal (each step's
//! state and elapsed time, redrawn in place), plain timestamped lines
//! otherwise.

use std::io::IsTerminal;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use berth::build::Event;
use berth::resolve::{CacheKey, Step};

enum State {
    Cached,
    Building(Instant),
    Done(Duration, u64),
    Failed,
}

struct Line {
    key: CacheKey,
    step: Step,
    state: State,
}

/// Where build events go.
#[derive(Clone)]
pub struct Progress {
    live: bool,
    lines: Arc<Mutex<(Vec<Line>, usize)>>,
}

impl Progress {
    /// A live view when `live`, else plain lines.
    pub fn new(live: bool) -> Progress {
        Progress { live, lines: Arc::new(Mutex::new((Vec::new(), 0))) }
    }

    pub fn event(&self, e: Event) {
        let (key, step, state) = match e {
            Event::Cached { key, step } => (key, step, State::Cached),
            Event::Started { key, step } => (key, step, State::Building(Instant::now())),
            Event::Built { key, step, took, bytes } => (key, step, State::Done(took, bytes)),
            Event::Failed { key, step } => (key, step, State::Failed),
        };
        if !self.live {
            eprintln!("{} {}", berth::store::rfc3339(SystemTime::now()), render(&Line { key, step, state }, false));
            return;
        }
        let mut guard = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        match guard.0.iter_mut().find(|l| l.key == key) {
            Some(line) => line.state = state,
            None => guard.0.push(Line { key, step, state }),
        }
        drop(guard);
        self.redraw();
    }

    /// Redraws the live view in place.
    pub fn redraw(&self) {
        if !self.live {
            return;
        }
        let mut guard = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let (lines, drawn) = &mut *guard;
        let mut out = String::new();
        if *drawn > 0 {
            out.push_str(&format!("\x1b[{drawn}A"));
        }
        for l in lines.iter() {
            out.push_str("\x1b[2K");
            out.push_str(&render(l, true));
            out.push('\n');
        }
        *drawn = lines.len();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    /// Redraws every quarter second (for the elapsed times) until dropped.
    pub fn tick(&self) -> Ticker {
        let stop = Arc::new(Mutex::new(false));
        if self.live {
            let me = self.clone();
            let flag = stop.clone();
            std::thread::spawn(move || {
                while !*flag.lock().unwrap_or_else(|p| p.into_inner()) {
                    std::thread::sleep(Duration::from_millis(250));
                    me.redraw();
                }
            });
        }
        Ticker(stop)
    }
}

/// Stops the redraws when dropped.
/// Runs `work` with a reporter that shows its build events on stderr (a
/// live display on a terminal), or nothing when `quiet`.
pub fn showing<T>(quiet: bool, work: impl FnOnce(&(dyn Fn(Event) + Sync)) -> T) -> T {
    let progress = Progress::new(std::io::stderr().is_terminal());
    let report = |e: Event| {
        if !quiet {
            progress.event(e);
        }
    };
    let ticker = (!quiet).then(|| progress.tick());
    let out = work(&report);
    drop(ticker);
    progress.redraw();
    out
}

pub struct Ticker(Arc<Mutex<bool>>);

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }
}

/// One step's line; `live` adds the running time of a step being built.
fn render(l: &Line, live: bool) -> String {
    let state = match &l.state {
        State::Cached => "cached".to_owned(),
        State::Building(since) if live => format!("building {:.1}s", since.elapsed().as_secs_f64()),
        State::Building(_) => "building".to_owned(),
        State::Done(took, bytes) => {
            format!("done in {:.1}s, {}", took.as_secs_f64(), berth::manifest::values::ByteSize((*bytes).max(1)))
        }
        State::Failed => "FAILED".to_owned(),
    };
    let desc = super::output::shorten(&l.step.describe(), 56);
    format!("{} {:<8} {desc}: {state}", l.key.short(), l.step.kind())
}
