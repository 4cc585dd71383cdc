//! The foreground view of `berth up` (and `up --watch`): every env's new
//! output, each line prefixed by its container's name, like `docker
//! compose up`. One thread per container follows its log until the
//! container stops or goes, or until Ctrl-C; [`Followers::refresh`] picks
//! up containers that appeared (or started again) since the last call.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use berth::runtime::container::Container;
use berth::runtime::logs::{LogQuery, Outputs, follow_logs};
use berth::runtime::state::{self, Status};

/// Threads following the logs of a project's containers.
pub struct Followers {
    store: berth::store::Store,
    project: String,
    stop: Arc<AtomicBool>,
    threads: HashMap<String, JoinHandle<()>>,
    /// Output from this time on is shown.
    since: SystemTime,
}

impl Followers {
    /// Followers of `project`'s containers in the store at `root`, showing
    /// output from a few seconds before now; `stop` ends them all.
    pub fn new(root: &Path, project: &str, stop: Arc<AtomicBool>) -> anyhow::Result<Followers> {
        let store = berth::store::Store::open(root)?;
        let since = SystemTime::now() - Duration::from_secs(5);
        Ok(Followers { store, project: project.to_owned(), stop, threads: HashMap::new(), since })
    }

    /// Follows every running container of the project that nobody follows;
    /// returns how many containers the project has.
    pub fn refresh(&mut self) -> anyhow::Result<usize> {
        let containers = {
            let _shared = self.store.lock_shared()?;
            berth::plan::actual::project_containers(&self.store, &self.project)?
        };
        let width = containers.iter().map(|c| c.record.name.len()).max().unwrap_or(0);
        let now = SystemTime::now();
        self.threads.retain(|_, t| !t.is_finished());
        for c in &containers {
            if !self.threads.contains_key(c.record.id.as_str()) && running(&c.paths.dir) {
                let thread = follow(c.clone(), width, self.since, self.stop.clone());
                self.threads.insert(c.record.id.as_str().to_owned(), thread);
            }
        }
        // A container that stops and starts again is shown from here on.
        self.since = now;
        Ok(containers.len())
    }

    /// Waits for every follower to end.
    pub fn join(self) {
        for (_, t) in self.threads {
            let _ = t.join();
        }
    }
}

fn running(dir: &Path) -> bool {
    state::read_state(dir).is_ok_and(|s| state::observed_status(&s).status == Status::Running)
}

fn follow(c: Container, width: usize, since: SystemTime, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut out = Prefixed::new(&c.record.name, width, std::io::stdout());
        let mut err = Prefixed::new(&c.record.name, width, std::io::stderr());
        let mut outputs = Outputs::split(&mut out, &mut err);
        let query = LogQuery { since: Some(since), ..LogQuery::default() };
        let dir = c.paths.dir.clone();
        let done = move || stop.load(Ordering::SeqCst) || !running(&dir);
        let _ = follow_logs(&c.paths.log(), &query, &mut outputs, &done);
    })
}

/// A writer that starts every line with a prefix.
pub(super) struct Prefixed<W: Write> {
    prefix: String,
    at_line_start: bool,
    inner: W,
}

impl<W: Write> Prefixed<W> {
    /// `name` padded to `width`, then ` | `, before every line written to `inner`.
    pub(super) fn new(name: &str, width: usize, inner: W) -> Prefixed<W> {
        Prefixed { prefix: format!("{name:<width$} | "), at_line_start: true, inner }
    }
}

impl<W: Write> Write for Prefixed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + self.prefix.len());
        for &b in buf {
            if self.at_line_start {
                out.extend_from_slice(self.prefix.as_bytes());
            }
            out.push(b);
            self.at_line_start = b == b'\n';
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
