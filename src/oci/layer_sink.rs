//! The byte pipeline under the layer writer: tar bytes → sha256 (diffID) →
//! compressor → sha256 and byte count (blob digest and size) → output, in
//! one pass.
//!
//! zstd frames are written by [`zstd_encoder`] (multithreaded, no checksum).
//! The gzip header is fixed (no file name, mtime 0, OS "unknown"), so the
//! blob depends only on the tar bytes, the compression level and the
//! compressor's implementation.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use sha2::Digest as _;

use super::digest::Digest;
use super::tar_write::Compression;

/// A writer that hashes (unless made with [`Hashing::off`]) and counts what
/// passes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: Option<sha2::Sha256>,
    count: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing { inner, hasher: Some(sha2::Sha256::new()), count: 0 }
    }

    /// Counts only: for tar streams nobody needs a digest of (`berth export`).
    pub fn off(inner: W) -> Self {
        Hashing { inner, hasher: None, count: 0 }
    }

    /// The inner writer, the digest (if hashing) and the byte count.
    pub fn into_parts(self) -> (W, Option<Digest>, u64) {
        (self.inner, self.hasher.map(|h| Digest::from_sha256(h.finalize().into())), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
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
    Zstd(zstd::stream::write::Encoder<'static, Hashing<W>>),
}

impl<W: Write> Sink<W> {
    /// A sink compressing into `out`, which is hashed if `hash`.
    pub fn new(out: W, compression: Compression, hash: bool) -> io::Result<Self> {
        let out = if hash { Hashing::new(out) } else { Hashing::off(out) };
        Ok(match compression {
            Compression::None => Sink::Plain(out),
            Compression::Gzip => Sink::Gzip(
                flate2::GzBuilder::new().mtime(0).operating_system(255).write(out, flate2::Compression::default()),
            ),
            Compression::Zstd => Sink::Zstd(zstd_encoder(out)?),
        })
    }

    pub fn finish(self) -> io::Result<Hashing<W>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Gzip(gz) => gz.finish(),
            Sink::Zstd(z) => z.finish(),
        }
    }
}

/// The zstd level of layer blobs: zstd's own default.
pub const ZSTD_LEVEL: i32 = 3;

/// A zstd encoder for a layer blob: level [`ZSTD_LEVEL`], with zstd's own
/// worker threads, one per core. In multithreaded mode the frame depends on
/// the input and the level, not on the number of workers, so the same tar
/// gives the same blob on any machine. No checksum (the digest covers the
/// blob), no content size (the length is not known when the frame starts).
pub fn zstd_encoder<W: Write>(out: W) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut z = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 64);
    z.multithread(workers as u32)?;
    z.include_checksum(false)?;
    z.include_contentsize(false)?;
    Ok(z)
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}
