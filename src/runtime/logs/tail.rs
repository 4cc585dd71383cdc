//! `--tail` without reading the whole log: [`RevLines`] reads a file
//! backwards in blocks and [`TailScan`] keeps the records of the last N lines
//! that pass the filters, so memory follows the output, not the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::LogQuery;
use super::record::decode;

/// How much is read at a time.
const BLOCK: usize = 64 * 1024;
/// A stretch this long without a newline is not a record; it is dropped
/// rather than buffered.
pub(super) const GARBAGE_CAP: usize = 1024 * 1024;
/// A line whose pieces add up to this much is cut here (as the printer does).
pub(super) const LINE_CAP: usize = 8 * 1024 * 1024;

/// Collects, scanning backwards, the records of the last `n` lines that
/// pass the filters.
pub(super) struct TailScan {
    query: LogQuery,
    n: usize,
    /// Lines of the file, newest first.
    pub(super) collected: Vec<Vec<u8>>,
    counted: usize,
    /// Per stream: the line whose `P` pieces are still being collected, with
    /// the bytes collected so far.
    open: [Option<usize>; 2],
    /// A line older than `since` was seen: nothing before it can pass.
    too_old: bool,
    pub(super) skipped: u64,
}

impl TailScan {
    pub(super) fn new(query: LogQuery, n: usize) -> TailScan {
        TailScan { query, n, collected: Vec::new(), counted: 0, open: [None, None], too_old: false, skipped: 0 }
    }

    pub(super) fn done(&self) -> bool {
        (self.counted >= self.n || self.too_old) && self.open == [None, None]
    }

    pub(super) fn run(&mut self, rev: &mut RevLines<'_>) -> io::Result<()> {
        while !self.done() {
            let Some(line) = rev.next_line()? else { return Ok(()) };
            let Some(rec) = decode(&line) else {
                self.skipped += 1;
                continue;
            };
            if !self.query.streams.contains(rec.stream) {
                continue;
            }
            let s = rec.stream.index();
            if rec.partial {
                // A piece of a line: kept only if that line was counted.
                if let Some(bytes) = self.open[s] {
                    let bytes = bytes + rec.text.len();
                    self.open[s] = (bytes < LINE_CAP).then_some(bytes);
                    self.collected.push(line);
                }
                continue;
            }
            // The end of a line, which also closes the newer line of its stream.
            self.open[s] = None;
            if self.counted >= self.n || self.too_old {
                continue;
            }
            if self.query.since.is_some() || self.query.until.is_some() {
                let Some(t) = rec.time() else {
                    self.skipped += 1;
                    continue;
                };
                if self.query.until.is_some_and(|u| t > u) {
                    continue;
                }
                if self.query.since.is_some_and(|s| t < s) {
                    self.too_old = true;
                    continue;
                }
            }
            self.counted += 1;
            self.open[s] = Some(rec.text.len());
            self.collected.push(line);
        }
        Ok(())
    }
}

/// Complete lines of a file from its end backwards, read in blocks.
pub(super) struct RevLines<'f> {
    file: &'f File,
    /// The file offset of `buf[0]`.
    pos: u64,
    /// Bytes from `pos` up to the end of the unreturned part, which is right
    /// after a `\n` once [`boundary`](Self::boundary) has run.
    buf: Vec<u8>,
}

impl<'f> RevLines<'f> {
    pub(super) fn new(file: &'f File, end: u64) -> RevLines<'f> {
        RevLines { file, pos: end, buf: Vec::new() }
    }

    /// Drops an incomplete last line (a record being written) and returns
    /// the offset where complete lines end: where forward reading resumes.
    pub(super) fn boundary(&mut self) -> io::Result<u64> {
        self.back_to_newline()?;
        Ok(self.pos + self.buf.len() as u64)
    }

    /// Reads backwards until `buf` holds a `\n`, then drops what follows
    /// the last one. Bytes past [`GARBAGE_CAP`] without a newline are not a
    /// record and are dropped as they are read.
    fn back_to_newline(&mut self) -> io::Result<()> {
        loop {
            if let Some(i) = self.buf.iter().rposition(|&c| c == b'\n') {
                self.buf.truncate(i + 1);
                return Ok(());
            }
            if self.pos == 0 {
                self.buf.clear();
                return Ok(());
            }
            if self.buf.len() > GARBAGE_CAP {
                self.buf.clear();
            }
            self.read_block()?;
        }
    }

    /// Prepends the block before `pos` to `buf`.
    fn read_block(&mut self) -> io::Result<()> {
        let start = self.pos.saturating_sub(BLOCK as u64);
        let mut block = vec![0u8; (self.pos - start) as usize];
        self.file.read_exact_at(&mut block, start)?;
        block.extend_from_slice(&self.buf);
        self.buf = block;
        self.pos = start;
        Ok(())
    }

    /// The previous complete line, without its `\n`, or `None` at the start
    /// of the file. Returns `Some(empty)` for a runaway non-record it skipped.
    fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if self.buf.is_empty() {
                if self.pos == 0 {
                    return Ok(None);
                }
                self.read_block()?;
                continue;
            }
            // buf ends with the `\n` of the line to return.
            let body = &self.buf[..self.buf.len() - 1];
            match body.iter().rposition(|&c| c == b'\n') {
                Some(i) => {
                    let line = body[i + 1..].to_vec();
                    self.buf.truncate(i + 1);
                    return Ok(Some(line));
                }
                None if self.pos == 0 => {
                    let mut line = std::mem::take(&mut self.buf);
                    line.pop();
                    return Ok(Some(line));
                }
                None if self.buf.len() > GARBAGE_CAP => {
                    self.buf.clear();
                    self.back_to_newline()?;
                    return Ok(Some(Vec::new()));
                }
                None => self.read_block()?,
            }
        }
    }
}
