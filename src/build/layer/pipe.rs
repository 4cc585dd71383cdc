//! The one pass: the tar stream the writer produces is cut into chunks and
//! handed to two consumer threads at once, one compressing it into the blob,
//! one unpacking it (overlay whiteouts) into the staging directory. Chunks
//! are shared (`Arc`), never copied; bounded channels keep the writer at
//! most a few chunks ahead of the slower consumer.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use crate::oci::{UnpackError, UnpackOptions, UnpackStats, unpack};
use crate::store::BlobWriter;

/// Bytes per chunk handed to the consumers.
const CHUNK: usize = 256 << 10;
/// Chunks a consumer may lag behind the writer.
const DEPTH: usize = 16;

/// The gzip level of layer blobs. Level 1 (fastest): on ordinary files
/// (binaries, text) it writes about 20% more bytes than the default level 6
/// but compresses about 5 times faster, and committing a step must not take
/// longer than `podman commit` (which stores layers uncompressed).
pub(super) const GZIP_LEVEL: u32 = 1;

type Chunk = Arc<Vec<u8>>;

/// A bounded channel of chunks.
pub(super) fn channel() -> (SyncSender<Chunk>, Receiver<Chunk>) {
    std::sync::mpsc::sync_channel(DEPTH)
}

/// The writer's output: buffers bytes into chunks and sends each chunk to
/// every consumer. If a consumer has stopped (it failed), writing fails and
/// `gone` is set, so the caller reports the consumer's error instead.
pub(super) struct Tee<'a> {
    buf: Vec<u8>,
    outs: Vec<SyncSender<Chunk>>,
    gone: &'a AtomicBool,
}

impl<'a> Tee<'a> {
    pub(super) fn new(outs: Vec<SyncSender<Chunk>>, gone: &'a AtomicBool) -> Self {
        Tee { buf: Vec::with_capacity(CHUNK), outs, gone }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Arc::new(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        for out in &self.outs {
            if out.send(Arc::clone(&chunk)).is_err() {
                self.gone.store(true, Ordering::Relaxed);
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "a layer consumer thread stopped"));
            }
        }
        Ok(())
    }
}

impl Write for Tee<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Reads the chunks of a channel as one stream; it ends when every sender
/// is gone.
struct ChunkReader {
    rx: Receiver<Chunk>,
    chunk: Chunk,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.chunk, self.pos) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Gzips the stream from `rx` into `blob` (fixed header: no name, mtime 0,
/// OS unknown, so the bytes depend on the tar alone) and returns the blob,
/// complete but not committed.
pub(super) fn compress(rx: Receiver<Chunk>, blob: BlobWriter) -> io::Result<BlobWriter> {
    let out = BufWriter::with_capacity(1 << 20, blob);
    let level = flate2::Compression::new(GZIP_LEVEL);
    let mut gz = flate2::GzBuilder::new().mtime(0).operating_system(255).write(out, level);
    for chunk in rx {
        gz.write_all(&chunk)?;
    }
    gz.finish()?.into_inner().map_err(|e| e.into_error())
}

/// Unpacks the stream from `rx` into `root`.
pub(super) fn stage(rx: Receiver<Chunk>, root: &Path, opts: &UnpackOptions) -> Result<UnpackStats, UnpackError> {
    unpack(ChunkReader { rx, chunk: Arc::default(), pos: 0 }, root, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_sees_every_byte_in_order() {
        let gone = AtomicBool::new(false);
        let data: Vec<u8> = (0..(3 * CHUNK + 123)).map(|i| (i * 7) as u8).collect();
        let (tx1, rx1) = channel();
        let (tx2, rx2) = channel();
        std::thread::scope(|s| {
            let readers = [rx1, rx2].map(|rx| {
                s.spawn(move || {
                    let mut got = Vec::new();
                    ChunkReader { rx, chunk: Arc::default(), pos: 0 }.read_to_end(&mut got).unwrap();
                    got
                })
            });
            let mut tee = Tee::new(vec![tx1, tx2], &gone);
            for piece in data.chunks(1000) {
                tee.write_all(piece).unwrap();
            }
            tee.flush().unwrap();
            drop(tee);
            for reader in readers {
                assert!(reader.join().unwrap() == data);
            }
        });
        assert!(!gone.load(Ordering::Relaxed));
    }

    #[test]
    fn a_stopped_consumer_fails_the_writer_and_says_so() {
        let gone = AtomicBool::new(false);
        let (tx, rx) = channel();
        drop(rx);
        let mut tee = Tee::new(vec![tx], &gone);
        let err = tee.write_all(&vec![0; CHUNK]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(gone.load(Ordering::Relaxed));
    }
}
