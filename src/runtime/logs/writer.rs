//! The writing side: [`LogWriter`] appends records and rotates the file;
//! [`pump`] copies one of the container's output pipes into it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::SystemTime;

use super::record::encode;
use super::{LogError, MAX_RECORD_TEXT, Stream};

/// The default size cap of one log file: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// How much of a pipe [`pump`] reads at a time.
const PUMP_BUFFER: usize = 32 * 1024;

/// Where a log goes when rotated: `PATH.1`.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".1");
    PathBuf::from(name)
}

/// Appends records to one container's log; shared by the stdout and stderr
/// pumps through an `Arc`.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    rotated: PathBuf,
    max_bytes: Option<u64>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    /// Bytes in `file`, counted from its size at open.
    size: u64,
    /// The record being encoded, reused between records.
    buf: Vec<u8>,
}

impl LogWriter {
    /// Opens (creating it with mode 0640 if needed) the log at `path` for
    /// appending, rotating at [`DEFAULT_MAX_BYTES`].
    pub fn open(path: &Path) -> Result<LogWriter, LogError> {
        LogWriter::open_with_cap(path, Some(DEFAULT_MAX_BYTES))
    }

    /// Like [`open`](Self::open) with a size cap of `max_bytes` per file
    /// (`None`: never rotate). A record is never split across files, so a
    /// file can pass the cap by one record.
    pub fn open_with_cap(path: &Path, max_bytes: Option<u64>) -> Result<LogWriter, LogError> {
        let file = open_append(path).map_err(|source| LogError::Open { path: path.to_owned(), source })?;
        let size = file.metadata().map_err(|source| LogError::Open { path: path.to_owned(), source })?.len();
        Ok(LogWriter {
            path: path.to_owned(),
            rotated: rotated_path(path),
            max_bytes,
            inner: Mutex::new(Inner { file, size, buf: Vec::with_capacity(MAX_RECORD_TEXT + 64) }),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs `text` as complete lines of `stream`: split at each `\n` (a
    /// trailing `\n` does not start an empty line) and into `P` records past
    /// [`MAX_RECORD_TEXT`]. For the shim's own messages; the container's
    /// output goes through [`pump`].
    pub fn write_lines(&self, stream: Stream, text: &[u8]) -> Result<(), LogError> {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        for line in text.split(|&c| c == b'\n') {
            self.write_line(stream, line)?;
        }
        Ok(())
    }

    /// Writes one line (no `\n` in it) as `P` records and a final `F`.
    fn write_line(&self, stream: Stream, line: &[u8]) -> Result<(), LogError> {
        let mut rest = line;
        while rest.len() > MAX_RECORD_TEXT {
            let (piece, tail) = rest.split_at(MAX_RECORD_TEXT);
            self.write_record(stream, true, piece)?;
            rest = tail;
        }
        self.write_record(stream, false, rest)
    }

    /// Appends one record with a single `write(2)`, rotating first if the
    /// record would take the file past its cap. If rotating fails the record
    /// is still appended to the current file and the rotation error returned.
    pub(crate) fn write_record(&self, stream: Stream, partial: bool, text: &[u8]) -> Result<(), LogError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.buf.clear();
        encode(&mut inner.buf, SystemTime::now(), stream, partial, text);
        let len = inner.buf.len() as u64;
        let mut rotate_error = None;
        if let Some(max) = self.max_bytes
            && inner.size > 0
            && inner.size + len > max
        {
            match self.rotate() {
                Ok(file) => {
                    inner.file = file;
                    inner.size = 0;
                }
                Err(e) => rotate_error = Some(e),
            }
        }
        inner.file.write_all(&inner.buf).map_err(|source| LogError::Write { path: self.path.clone(), source })?;
        inner.size += len;
        rotate_error.map_or(Ok(()), Err)
    }

    /// Renames the log to `PATH.1` and opens a new, empty one.
    fn rotate(&self) -> Result<File, LogError> {
        let error = |source| LogError::Rotate { path: self.path.clone(), rotated: self.rotated.clone(), source };
        fs::rename(&self.path, &self.rotated).map_err(error)?;
        open_append(&self.path).map_err(error)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst a record half-built in
        // `buf`, which is cleared before each use.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    File::options().append(true).create(true).mode(0o640).open(path)
}

/// What a [`pump`] copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// Records written.
    pub records: u64,
    /// Bytes of container output read (newlines included).
    pub bytes: u64,
    /// Records that could not be written.
    pub dropped: u64,
}

/// Starts a thread that copies `reader` (the container's stdout or stderr)
/// into `writer` as records of `stream` until end of file, then returns what
/// it did. A trailing line without `\n` is kept until more output or end of
/// file, then written as an `F` record.
///
/// The pipe is always read to its end, even when writing fails (so the
/// container never blocks on a full pipe); the thread then returns the first
/// error. `EIO`, which a pseudo-terminal's master reports once the terminal
/// is closed, counts as end of file.
pub fn pump<R>(
    reader: R,
    stream: Stream,
    writer: Arc<LogWriter>,
) -> Result<JoinHandle<Result<PumpStats, LogError>>, LogError>
where
    R: Read + Send + 'static,
{
    let path = writer.path.clone();
    thread::Builder::new()
        .name(format!("log-{stream}"))
        .spawn(move || Pump { writer, stream, stats: PumpStats::default(), error: None }.run(reader))
        .map_err(|source| LogError::Spawn { stream, path, source })
}

struct Pump {
    writer: Arc<LogWriter>,
    stream: Stream,
    stats: PumpStats,
    error: Option<LogError>,
}

impl Pump {
    fn run(mut self, mut reader: impl Read) -> Result<PumpStats, LogError> {
        let mut buf = vec![0u8; PUMP_BUFFER];
        // The start of a line whose end has not been read yet; never longer
        // than MAX_RECORD_TEXT after each chunk is handled.
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(source) => {
                    let path = self.writer.path.clone();
                    self.fail(LogError::Input { stream: self.stream, path, source });
                    break;
                }
            };
            self.stats.bytes += n as u64;
            let mut chunk = &buf[..n];
            while let Some(i) = chunk.iter().position(|&c| c == b'\n') {
                if pending.is_empty() {
                    self.line(&chunk[..i]);
                } else {
                    pending.extend_from_slice(&chunk[..i]);
                    self.line(&pending);
                    pending.clear();
                }
                chunk = &chunk[i + 1..];
            }
            pending.extend_from_slice(chunk);
            // Only a line known to be longer than a record is cut, so a line
            // of exactly MAX_RECORD_TEXT bytes stays one F record.
            if pending.len() > MAX_RECORD_TEXT {
                let cut = (pending.len() - 1) / MAX_RECORD_TEXT * MAX_RECORD_TEXT;
                for piece in pending[..cut].chunks(MAX_RECORD_TEXT) {
                    self.record(true, piece);
                }
                pending.drain(..cut);
            }
        }
        if !pending.is_empty() {
            self.line(&pending);
        }
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.stats),
        }
    }

    fn line(&mut self, line: &[u8]) {
        let mut rest = line;
        while rest.len() > MAX_RECORD_TEXT {
            let (piece, tail) = rest.split_at(MAX_RECORD_TEXT);
            self.record(true, piece);
            rest = tail;
        }
        self.record(false, rest);
    }

    fn record(&mut self, partial: bool, text: &[u8]) {
        match self.writer.write_record(self.stream, partial, text) {
            Ok(()) => self.stats.records += 1,
            // The record went to the current file; only rotation failed.
            Err(e @ LogError::Rotate { .. }) => {
                self.stats.records += 1;
                self.fail(e);
            }
            Err(e) => {
                self.stats.dropped += 1;
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, error: LogError) {
        self.error.get_or_insert(error);
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
