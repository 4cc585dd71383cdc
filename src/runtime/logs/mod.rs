//! Container logs: what the container wrote to stdout and stderr, with a
//! timestamp and a stream tag per line, kept by the shim and read by
//! `berth logs`.
//!
//! # Format
//!
//! One record per line, as the CRI logging format (what kubelet reads):
//!
//! ```text
//! 2026-11-28T13:24:00.123456789Z stdout F hello
//! 2026-11-28T13:24:00.123501000Z stderr P first 16 KiB of a long line…
//! 2026-11-28T13:24:00.123502000Z stderr F …and the rest
//! ```
//!
//! The timestamp is UTC with nine fraction digits ([`time`]); the tag is `F`
//! for a record that ends a line and `P` for a piece of a line longer than
//! [`MAX_RECORD_TEXT`] (16 KiB). A line of any length becomes one or more `P`
//! records and a final `F`; the text never holds a newline. Timestamps are
//! taken under the writer's lock, so records are in time order in the file.
//!
//! # Writing ([`writer`])
//!
//! [`LogWriter`] appends records with one `write(2)` each under a mutex, so
//! the stdout and stderr [`pump`] threads never interleave inside a record.
//! When the file would grow past its cap (10 MiB by default) it is renamed to
//! `log.1` (replacing the previous one) and a new `log` is started: at most
//! twice the cap is kept.
//!
//! # Reading ([`read`])
//!
//! [`read_logs`] prints like `docker logs`: the text only, or `TIMESTAMP text`
//! with timestamps on, stdout and stderr to the same or to separate writers,
//! filtered by `--since`/`--until` ([`parse_time_arg`]) and `--tail`. Reading
//! covers `log.1` then `log`; `--tail` reads backwards in blocks and never
//! loads the whole file. [`follow_logs`] then keeps printing new records,
//! following a rotation, until the container has exited and the file is
//! drained.

pub mod read;
pub mod time;
pub mod writer;

mod record;
mod tail;

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A reader that hands every chunk it reads to `copy` too: the container's
/// output on its way to the log pump, also going to attached clients or to
/// the user's terminal.
pub struct Tee<R, F: FnMut(&[u8])> {
    pub inner: R,
    pub copy: F,
}

impl<R: std::io::Read, F: FnMut(&[u8])> std::io::Read for Tee<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.copy)(&buf[..n]);
        }
        Ok(n)
    }
}

pub use read::{LogQuery, LogSummary, Outputs, Streams, follow_logs, read_logs};
pub use time::{TimeError, Timestamp, format_nanos, parse_rfc3339, parse_time_arg};
pub use writer::{DEFAULT_MAX_BYTES, LogWriter, PumpStats, pump, rotated_path};

/// The longest text of one record; longer lines are split into `P` records.
pub const MAX_RECORD_TEXT: usize = 16 * 1024;

/// Which output of the container a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The tag written in the log: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong keeping or reading a container's log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open container log {} for appending: {source}; its directory must exist and be writable", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("cannot append to container log {}: {source}; records are dropped until writing works again (is the disk full?)", path.display())]
    Write { path: PathBuf, source: io::Error },

    #[error(
        "cannot rotate container log {} to {}: {source}; records keep going to the current file, which grows past its size cap",
        path.display(),
        rotated.display()
    )]
    Rotate { path: PathBuf, rotated: PathBuf, source: io::Error },

    #[error("cannot read the container's {stream} for its log {}: {source}; later output was not logged", path.display())]
    Input { stream: Stream, path: PathBuf, source: io::Error },

    #[error("cannot start the thread that copies the container's {stream} to {}: {source}", path.display())]
    Spawn { stream: Stream, path: PathBuf, source: io::Error },

    #[error("cannot read container log {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("cannot write out the logs of {}: {source}", path.display())]
    Output { path: PathBuf, source: io::Error },

    #[error(transparent)]
    Time(#[from] TimeError),
}
