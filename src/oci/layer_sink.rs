//! The byte pipeline under the layer writer: tar bytes → sha256 (diffID) →
//! compressor → sha256 and byte count (blob digest and size) → output, in
//! one pass.
//!
//! The gzip header is fixed (no file name, mtime 0, OS "unknown"), so the
//! blob depends only on the tar bytes, the compression level and the
//! compressor's implementation.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use sha2::Digest as _;

use super::digest::Digest;
use super::tar_write::Compression;

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing { inner, hasher: sha2::Sha256::new(), count: 0 }
    }

    pub fn into_parts(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_sha256(self.hasher.finalize().into()), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compressor between the tar stream and the output.
pub enum Sink<W: Write> {
    Plain(Hashing<W>),
    Gzip(GzEncoder<Hashing<W>>),
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, compression: Compression) -> Self {
        let out = Hashing::new(out);
        match compression {
            Compression::None => Sink::Plain(out),
            Compression::Gzip => Sink::Gzip(
                flate2::GzBuilder::new().mtime(0).operating_system(255).write(out, flate2::Compression::default()),
            ),
        }
    }

    pub fn finish(self) -> io::Result<Hashing<W>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Gzip(gz) => gz.finish(),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}
