//! The reading side: `berth logs` with `--since`, `--until`, `--tail`,
//! `--timestamps` and `--follow`.
//!
//! A log is `PATH.1` (older, may be missing) followed by `PATH`. Records are
//! assembled into lines per stream (a line's `P` pieces and its `F`; the
//! other stream's records may come between them) and a line is printed when
//! its `F` arrives. A line's time, for filtering and for `-t`, is its `F`
//! record's. Malformed records are skipped and counted.
//!
//! `--tail N` reads backwards in blocks (module `tail`) from the end of
//! `PATH` into `PATH.1`, keeping only the last N lines that pass the filters
//! (and their `P` pieces). Records being in time order, a backwards scan
//! stops at the first line older than `--since`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime};

use super::record::{Record, decode};
use super::tail::{GARBAGE_CAP, LINE_CAP, RevLines, TailScan};
use super::writer::rotated_path;
use super::{LogError, Stream};

/// How often [`follow_logs`] looks for new records.
const POLL: Duration = Duration::from_millis(100);
/// How much a reader reads at a time.
const BLOCK: usize = 64 * 1024;

/// Which streams to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streams {
    pub stdout: bool,
    pub stderr: bool,
}

impl Streams {
    /// Both stdout and stderr.
    pub const BOTH: Streams = Streams { stdout: true, stderr: true };

    pub(super) fn contains(self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

impl Default for Streams {
    fn default() -> Streams {
        Streams::BOTH
    }
}

/// What `berth logs` asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only lines at or after this time.
    pub since: Option<SystemTime>,
    /// Only lines at or before this time; [`follow_logs`] stops once it passes.
    pub until: Option<SystemTime>,
    /// Only the last this many lines (that pass the other filters).
    pub tail: Option<usize>,
    /// Print each line as `TIMESTAMP text`.
    pub timestamps: bool,
    pub streams: Streams,
}

/// Where lines go: stderr lines to their own writer, or with stdout's.
pub struct Outputs<'a> {
    stdout: &'a mut dyn Write,
    stderr: Option<&'a mut dyn Write>,
}

impl<'a> Outputs<'a> {
    /// Both streams to one writer, in log order.
    pub fn merged(out: &'a mut dyn Write) -> Outputs<'a> {
        Outputs { stdout: out, stderr: None }
    }

    /// Stdout lines to `stdout`, stderr lines to `stderr` (as `docker logs`
    /// does on a terminal).
    pub fn split(stdout: &'a mut dyn Write, stderr: &'a mut dyn Write) -> Outputs<'a> {
        Outputs { stdout, stderr: Some(stderr) }
    }

    fn for_stream(&mut self, stream: Stream) -> &mut dyn Write {
        match (stream, &mut self.stderr) {
            (Stream::Stderr, Some(err)) => &mut **err,
            _ => &mut *self.stdout,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()?;
        if let Some(err) = &mut self.stderr {
            err.flush()?;
        }
        Ok(())
    }
}

/// What a read printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// Lines printed.
    pub lines: u64,
    /// Records that were not valid and were skipped.
    pub skipped: u64,
}

/// Prints the log at `path` (and `PATH.1`) as `query` asks, then returns.
/// A log that does not exist yet (the container has not started) prints nothing.
pub fn read_logs(path: &Path, query: &LogQuery, out: &mut Outputs<'_>) -> Result<LogSummary, LogError> {
    let mut printer = Printer::new(path, query, out);
    if let Some(mut cursor) = start(path, query, &mut printer)? {
        cursor.drain(&mut printer)?;
    }
    printer.finish()
}

/// Prints like [`read_logs`], then keeps printing new records (following a
/// rotation) until `until_exited()` returns true and everything written
/// before that has been printed, or until `query.until` has passed.
///
/// `until_exited` must only return true once nothing more will be written:
/// the container has exited and the shim's pumps have finished.
pub fn follow_logs(
    path: &Path,
    query: &LogQuery,
    out: &mut Outputs<'_>,
    until_exited: &dyn Fn() -> bool,
) -> Result<LogSummary, LogError> {
    let mut printer = Printer::new(path, query, out);
    let mut cursor = start(path, query, &mut printer)?;
    loop {
        // Asked before draining: whatever was written before the answer is
        // read by the drain below.
        let exited = until_exited();
        let mut read = 0;
        if let Some(c) = &mut cursor {
            read += c.drain(&mut printer)?;
        }
        if let Some(mut new) = reopen_if_rotated(path, cursor.as_ref())? {
            if let Some(old) = &mut cursor {
                old.drain(&mut printer)?; // the last records before the rename
                read_skipped_file(path, old.ino, new.ino, &mut printer)?;
            }
            new.drain(&mut printer)?;
            cursor = Some(new);
            continue;
        }
        printer.flush()?;
        if exited || query.until.is_some_and(|until| SystemTime::now() > until) {
            break;
        }
        if read == 0 {
            thread::sleep(POLL);
        }
    }
    printer.finish()
}

/// After a rotation from the file `old_ino` to `new_ino`: if `PATH.1` is
/// neither, the writer rotated twice since the last look, and `PATH.1` is a
/// file never read; reads it. (A third rotation in one poll would lose one.)
fn read_skipped_file(
    path: &Path,
    old_ino: u64,
    new_ino: u64,
    printer: &mut Printer<'_, '_, '_>,
) -> Result<(), LogError> {
    let rotated = rotated_path(path);
    let file = match File::open(&rotated) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(LogError::Read { path: rotated, source }),
    };
    let cursor = Cursor::new(file, &rotated)?;
    if cursor.ino != old_ino && cursor.ino != new_ino {
        let mut cursor = cursor;
        cursor.drain(printer)?;
    }
    Ok(())
}

/// Prints the part of the log before the current end of `PATH` (all of it,
/// or the tail) and returns a cursor there, or `None` if there is no log yet.
fn start(path: &Path, query: &LogQuery, printer: &mut Printer<'_, '_, '_>) -> Result<Option<Cursor>, LogError> {
    let read_error = |p: &Path| {
        let p = p.to_owned();
        move |source| LogError::Read { path: p, source }
    };
    let rotated = rotated_path(path);
    let Some((current, old)) = open_pair(path, &rotated).map_err(read_error(path))? else {
        return Ok(None);
    };
    let Some(n) = query.tail else {
        if let Some(old) = old {
            Cursor::new(old, &rotated)?.drain(printer)?;
        }
        return Ok(Some(Cursor::new(current, path)?));
    };
    // Tail: scan backwards from the current end of PATH, then into PATH.1.
    let end = current.metadata().map_err(read_error(path))?.len();
    let mut scan = TailScan::new(*query, n);
    let mut rev = RevLines::new(&current, end);
    let resume_at = rev.boundary().map_err(read_error(path))?;
    scan.run(&mut rev).map_err(read_error(path))?;
    if let Some(old) = &old
        && !scan.done()
    {
        let old_end = old.metadata().map_err(read_error(&rotated))?.len();
        let mut rev = RevLines::new(old, old_end);
        rev.boundary().map_err(read_error(&rotated))?;
        scan.run(&mut rev).map_err(read_error(&rotated))?;
    }
    printer.summary.skipped += scan.skipped;
    for line in scan.collected.iter().rev() {
        printer.line(line)?;
    }
    let mut cursor = Cursor::new(current, path)?;
    cursor.file.seek(SeekFrom::Start(resume_at)).map_err(read_error(path))?;
    Ok(Some(cursor))
}

/// Opens `PATH` and, if it exists, `PATH.1`, retrying if a rotation happened
/// in between (which would make both name the same file). If only `PATH.1`
/// exists (the writer is between its rename and create, or died there), it
/// is returned as the current file.
fn open_pair(path: &Path, rotated: &Path) -> io::Result<Option<(File, Option<File>)>> {
    let open = |p: &Path| match File::open(p) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    for attempt in 0..10 {
        let Some(current) = open(path)? else {
            return match open(rotated)? {
                Some(_) if attempt < 9 => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Some(old) => Ok(Some((old, None))),
                None => Ok(None),
            };
        };
        let old = open(rotated)?;
        let same = match &old {
            Some(old) => old.metadata()?.ino() == current.metadata()?.ino(),
            None => false,
        };
        if !same {
            return Ok(Some((current, old)));
        }
    }
    Err(io::Error::other("the log kept rotating while being opened"))
}

/// If `PATH` is no longer the file the cursor reads (it was rotated, or has
/// just appeared), the new file.
fn reopen_if_rotated(path: &Path, cursor: Option<&Cursor>) -> Result<Option<Cursor>, LogError> {
    let ino = match std::fs::metadata(path) {
        Ok(meta) => meta.ino(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LogError::Read { path: path.to_owned(), source }),
    };
    if cursor.is_some_and(|c| c.ino == ino) {
        return Ok(None);
    }
    match File::open(path) {
        Ok(file) => Cursor::new(file, path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Read { path: path.to_owned(), source }),
    }
}

/// Reads one log file forwards, handing complete lines to the printer and
/// keeping an incomplete last line until the rest is written.
struct Cursor {
    file: File,
    ino: u64,
    path: PathBuf,
    carry: Vec<u8>,
    /// The carry is a runaway non-record being skipped.
    skipping: bool,
}

impl Cursor {
    fn new(file: File, path: &Path) -> Result<Cursor, LogError> {
        let ino = file.metadata().map_err(|source| LogError::Read { path: path.to_owned(), source })?.ino();
        Ok(Cursor { file, ino, path: path.to_owned(), carry: Vec::new(), skipping: false })
    }

    /// Reads to the current end of the file; returns the bytes read.
    fn drain(&mut self, printer: &mut Printer<'_, '_, '_>) -> Result<usize, LogError> {
        let mut buf = vec![0u8; BLOCK];
        let mut total = 0;
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(LogError::Read { path: self.path.clone(), source }),
            };
            total += n;
            let mut chunk = &buf[..n];
            while let Some(i) = chunk.iter().position(|&c| c == b'\n') {
                if self.skipping {
                    self.skipping = false;
                    printer.summary.skipped += 1;
                } else if self.carry.is_empty() {
                    printer.line(&chunk[..i])?;
                } else {
                    self.carry.extend_from_slice(&chunk[..i]);
                    let line = std::mem::take(&mut self.carry);
                    printer.line(&line)?;
                }
                chunk = &chunk[i + 1..];
            }
            if !self.skipping {
                self.carry.extend_from_slice(chunk);
                if self.carry.len() > GARBAGE_CAP {
                    self.carry = Vec::new();
                    self.skipping = true;
                }
            }
        }
    }
}

/// Assembles records into lines, filters them and writes them out.
struct Printer<'q, 'o, 'w> {
    path: &'q Path,
    query: &'q LogQuery,
    out: &'o mut Outputs<'w>,
    /// Per stream, the text of the `P` records of a line not yet ended, and
    /// the timestamp of the last one.
    pending: [Vec<u8>; 2],
    pending_ts: [Vec<u8>; 2],
    line_buf: Vec<u8>,
    summary: LogSummary,
}

impl<'q, 'o, 'w> Printer<'q, 'o, 'w> {
    fn new(path: &'q Path, query: &'q LogQuery, out: &'o mut Outputs<'w>) -> Printer<'q, 'o, 'w> {
        Printer {
            path,
            query,
            out,
            pending: [Vec::new(), Vec::new()],
            pending_ts: [Vec::new(), Vec::new()],
            line_buf: Vec::new(),
            summary: LogSummary::default(),
        }
    }

    /// Takes one line of the file (without its `\n`).
    fn line(&mut self, line: &[u8]) -> Result<(), LogError> {
        let Some(rec) = decode(line) else {
            self.summary.skipped += 1;
            return Ok(());
        };
        if !self.query.streams.contains(rec.stream) {
            return Ok(());
        }
        let s = rec.stream.index();
        if rec.partial && self.pending[s].len() + rec.text.len() < LINE_CAP {
            self.pending[s].extend_from_slice(rec.text);
            self.pending_ts[s].clear();
            self.pending_ts[s].extend_from_slice(rec.ts);
            return Ok(());
        }
        self.emit(rec)
    }

    /// Ends the line `rec` belongs to (with `rec`'s text) and prints it if it
    /// passes the filters.
    fn emit(&mut self, rec: Record<'_>) -> Result<(), LogError> {
        let pending = std::mem::take(&mut self.pending[rec.stream.index()]);
        let (since, until) = (self.query.since, self.query.until);
        if since.is_some() || until.is_some() {
            let Some(t) = rec.time() else {
                self.summary.skipped += 1;
                return Ok(());
            };
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                return Ok(());
            }
        }
        let buf = &mut self.line_buf;
        buf.clear();
        if self.query.timestamps {
            buf.extend_from_slice(rec.ts);
            buf.push(b' ');
        }
        buf.extend_from_slice(&pending);
        buf.extend_from_slice(rec.text);
        buf.push(b'\n');
        let path = self.path;
        self.out
            .for_stream(rec.stream)
            .write_all(buf)
            .map_err(|source| LogError::Output { path: path.to_owned(), source })?;
        self.summary.lines += 1;
        // Give the pending buffer's allocation back for the next line.
        self.pending[rec.stream.index()] = pending;
        self.pending[rec.stream.index()].clear();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.out.flush().map_err(|source| LogError::Output { path: self.path.to_owned(), source })
    }

    /// Prints lines whose end was never written (the writer is in the middle
    /// of a long line, or died there), with their last piece's time, and flushes.
    fn finish(mut self) -> Result<LogSummary, LogError> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let s = stream.index();
            if !self.pending[s].is_empty() {
                let ts = std::mem::take(&mut self.pending_ts[s]);
                self.emit(Record { ts: &ts, stream, partial: false, text: b"" })?;
            }
        }
        self.flush()?;
        Ok(self.summary)
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
