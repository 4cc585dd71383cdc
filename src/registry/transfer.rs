//! Moving blobs: progress events, a small pool that runs transfers side
//! by side, and the download of one blob into the store's `tmp/` with its
//! size and digest checked while it streams, retried and resumed.
//!
//! A download that breaks is resumed with `Range: bytes=N-` from the byte
//! it reached (a registry that answers the whole blob again restarts it),
//! at most [`Settings::attempts`](super::Settings::attempts) times, with a
//! short pause between attempts. More bytes than the descriptor says, or a
//! digest that differs, are refused at once: trying again would fetch the
//! same content.

use std::io::{BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::RegistryError;
use super::session::{Body, Session, Target};
use crate::oci::Digest;
use crate::store::{BlobWriter, Store, StoreError};

/// What a transfer is doing, for progress output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The blob is already where it is going (the store on pull, the
    /// registry on push).
    Present { digest: Digest, size: u64 },
    /// The registry copied the blob from another of its repositories.
    Mounted { digest: Digest, size: u64, from: String },
    /// `done` of `size` bytes moved so far.
    Moving { digest: Digest, size: u64, done: u64 },
    /// The transfer failed and is being tried again.
    Retrying { digest: Digest, attempt: u32, why: String },
    /// Verified (pull) or accepted (push).
    Done { digest: Digest, size: u64 },
}

/// Where progress events go.
pub type Progress<'a> = &'a (dyn Fn(Event) + Sync);

/// Runs `work` on every item, at most `jobs` at once; results in order.
/// After the first error, items not started yet are not started.
pub(crate) fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    work: impl Fn(&T, &AtomicBool) -> Result<R, RegistryError> + Sync,
) -> Result<Vec<R>, RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<Option<Result<R, RegistryError>>> = (0..items.len()).map(|_| None).collect();
    let slots: Vec<std::sync::Mutex<&mut Option<Result<R, RegistryError>>>> =
        results.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let result = work(&items[i], &failed);
                    if result.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    **slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    drop(slots);
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(RegistryError::Cancelled)) | None => {}
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if out.len() == items.len() => Ok(out),
        None => Err(RegistryError::Cancelled),
    }
}

/// How often progress is reported while bytes move.
const REPORT_EVERY: u64 = 1 << 20;

/// Downloads the blob `digest` of `size` bytes from `repository` into a
/// blob writer in the store's `tmp/`, verified but not committed.
pub(crate) fn download(
    session: &Session<'_>,
    store: &Store,
    repository: &str,
    (digest, size): (&Digest, u64),
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<BlobWriter, RegistryError> {
    let job = Download {
        session,
        store,
        repository,
        digest,
        size,
        url: session.url(&format!("/v2/{repository}/blobs/{digest}")),
        what: format!("the blob {digest}"),
        cancel,
        progress,
    };
    let attempts = session.settings().attempts.max(1);
    let mut out = job.new_writer()?;
    let mut done = 0u64;
    let mut attempt = 1;
    loop {
        match job.attempt(&mut out, &mut done) {
            Ok(()) => break,
            Err(e) if e.is_transient() && attempt < attempts && !cancel.load(Ordering::SeqCst) => {
                progress(Event::Retrying { digest: digest.clone(), attempt, why: e.to_string() });
                std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let writer = out.into_inner().map_err(|e| StoreError::io("write a blob into", store.tmp_dir())(e.into_error()))?;
    let (actual, _) = writer.written();
    if actual != *digest {
        let registry = session.registry.clone();
        return Err(RegistryError::DigestMismatch {
            registry,
            what: "the blob".into(),
            expected: digest.clone(),
            actual,
        });
    }
    progress(Event::Done { digest: digest.clone(), size });
    Ok(writer)
}

/// One blob being downloaded.
struct Download<'a> {
    session: &'a Session<'a>,
    store: &'a Store,
    repository: &'a str,
    digest: &'a Digest,
    size: u64,
    url: String,
    what: String,
    cancel: &'a AtomicBool,
    progress: Progress<'a>,
}

impl Download<'_> {
    fn new_writer(&self) -> Result<BufWriter<BlobWriter>, RegistryError> {
        Ok(BufWriter::with_capacity(1 << 20, self.store.blob_writer()?))
    }

    fn broken(&self, why: String) -> RegistryError {
        RegistryError::Transfer { registry: self.session.registry.clone(), what: self.what.clone(), why }
    }

    /// One attempt: fetches from byte `*done` on, appending to `out`.
    fn attempt(&self, out: &mut BufWriter<BlobWriter>, done: &mut u64) -> Result<(), RegistryError> {
        let range = format!("bytes={done}-");
        let headers: &[(&str, &str)] = if *done > 0 { &[("Range", range.as_str())] } else { &[] };
        let response = self.session.send("GET", &self.url, headers, &Body::Empty, &self.what)?;
        let status = response.status().as_u16();
        let resumed_at = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        match status {
            206 if resumed_at == Some(*done) => {}
            200 => {
                // The whole blob again: start over.
                if *done > 0 {
                    *out = self.new_writer()?;
                    *done = 0;
                }
            }
            206 => {
                *out = self.new_writer()?;
                *done = 0;
                return Err(self.broken("the registry answered a range that was not asked for".into()));
            }
            _ => return Err(self.session.fail(response, &self.what, Target::Blob(self.repository, self.digest))),
        }
        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; 256 << 10];
        let mut reported = *done;
        loop {
            if self.cancel.load(Ordering::SeqCst) {
                return Err(RegistryError::Cancelled);
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(self.broken(format!("the connection broke after {done} of {} bytes: {e}", self.size)));
                }
            };
            if *done + n as u64 > self.size {
                let registry = self.session.registry.clone();
                let (digest, actual, expected) = (self.digest.clone(), *done + n as u64, self.size);
                return Err(RegistryError::SizeMismatch {
                    registry,
                    what: "the blob".into(),
                    digest,
                    expected,
                    actual,
                });
            }
            out.write_all(&buf[..n]).map_err(StoreError::io("write a blob into", self.store.tmp_dir()))?;
            *done += n as u64;
            if *done - reported >= REPORT_EVERY {
                reported = *done;
                (self.progress)(Event::Moving { digest: self.digest.clone(), size: self.size, done: *done });
            }
        }
        if *done < self.size {
            return Err(self.broken(format!("the connection closed after {done} of {} bytes", self.size)));
        }
        Ok(())
    }
}
