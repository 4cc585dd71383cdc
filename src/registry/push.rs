//! Pushing: an image in the store goes to a registry.
//!
//! Each blob (the layers and the config), side by side:
//! 1. `HEAD` — the registry has it already: skipped.
//! 2. If another repository of the same registry is known to hold it (the
//!    store has an image tagged there with that blob), a cross-repository
//!    mount is tried: `POST …/blobs/uploads/?mount=DIGEST&from=REPO`. A
//!    `201` means done without sending a byte; a `202` opens an upload.
//! 3. Otherwise an upload is opened (`POST …/blobs/uploads/`) and the blob
//!    sent in one `PUT …?digest=` (monolithic), or, with a chunk size set,
//!    in `PATCH` requests of that size with `Content-Range`, closed by an
//!    empty `PUT …?digest=`. A failed upload is started again, a bounded
//!    number of times.
//!
//! Last the manifest is `PUT` under the tag (or digest), with its own media
//! type, and the digest the registry reports is checked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::session::{Body, Session, Target, drain};
use super::transfer::{self, Event, Progress};
use super::{Client, RegistryError};
use crate::oci::{Digest, ImageRef};
use crate::store::{Image, Store};

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest, as the registry reported it.
    pub digest: Digest,
    /// Blobs sent, mounted from another repository, and already there.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub mounted: usize,
    pub present: usize,
}

/// How a blob got to the registry.
enum Outcome {
    Present,
    Mounted,
    Uploaded(u64),
}

impl Client {
    /// Pushes `image` (from `store`) to `target`: blobs, then the manifest
    /// (see the module page). Reads the store only; a shared lock is enough.
    pub fn push(
        &self,
        store: &Store,
        image: &Image,
        target: &ImageRef,
        progress: Progress<'_>,
    ) -> Result<Pushed, RegistryError> {
        let repository = target.repository();
        let sources = mount_sources(store, target);
        let mut scopes = vec![format!("repository:{repository}:pull,push")];
        let mut from: Vec<&String> = sources.values().collect();
        from.sort();
        from.dedup();
        scopes.extend(from.iter().take(8).map(|r| format!("repository:{r}:pull")));
        let session = Session::open(self, target.registry(), scopes)?;

        let config = &image.manifest.config();
        let config_digest: Digest = config.digest().as_ref().parse().map_err(|e| bad(&session, format!("{e}")))?;
        let mut blobs: Vec<(Digest, u64)> = image.layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
        blobs.push((config_digest, config.size()));
        let mut seen = std::collections::HashSet::new();
        blobs.retain(|(d, _)| seen.insert(d.clone()));
        let outcomes = transfer::parallel(self.settings.jobs, &blobs, |(digest, size), cancel| {
            let from = sources.get(digest).map(String::as_str);
            push_blob(&session, store, repository, (digest, *size), from, cancel, progress)
        })?;

        let manifest_bytes = store.read_blob(&image.manifest_digest)?;
        let media_type =
            image.manifest.media_type().as_ref().map_or(super::manifest::OCI_MANIFEST.to_owned(), |m| m.to_string());
        let reference = match (target.digest(), target.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => image.manifest_digest.to_string(),
        };
        let what = format!("the manifest {repository}:{reference}");
        let url = session.url(&format!("/v2/{repository}/manifests/{reference}"));
        let headers = [("Content-Type", media_type.as_str())];
        let response = session.send("PUT", &url, &headers, &Body::Bytes(&manifest_bytes), &what)?;
        if !response.status().is_success() {
            return Err(session.fail(response, &what, Target::Repository(repository)));
        }
        let reported = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_owned);
        drain(response);
        if let Some(reported) = reported.and_then(|r| r.parse::<Digest>().ok())
            && reported != image.manifest_digest
        {
            let registry = session.registry.clone();
            let (expected, actual) = (image.manifest_digest.clone(), reported);
            return Err(RegistryError::DigestMismatch {
                registry,
                what: "the pushed manifest".into(),
                expected,
                actual,
            });
        }
        let mut pushed =
            Pushed { digest: image.manifest_digest.clone(), uploaded: 0, uploaded_bytes: 0, mounted: 0, present: 0 };
        for outcome in outcomes {
            match outcome {
                Outcome::Present => pushed.present += 1,
                Outcome::Mounted => pushed.mounted += 1,
                Outcome::Uploaded(bytes) => {
                    pushed.uploaded += 1;
                    pushed.uploaded_bytes += bytes;
                }
            }
        }
        Ok(pushed)
    }
}

/// Blob digest (layers and configs) → another repository of `target`'s
/// registry that the store has an image tagged in (so the registry likely
/// holds the blob there).
fn mount_sources(store: &Store, target: &ImageRef) -> BTreeMap<Digest, String> {
    let mut sources = BTreeMap::new();
    for tag in store.tags().unwrap_or_default() {
        let Ok(r) = tag.name.parse::<ImageRef>() else { continue };
        if r.registry() != target.registry() || r.repository() == target.repository() {
            continue;
        }
        if let Ok(image) = store.resolve_image(&tag.name) {
            let config = image.manifest.config().digest().as_ref().parse::<Digest>().ok();
            for digest in image.layers.iter().map(|l| l.digest.clone()).chain(config) {
                sources.entry(digest).or_insert_with(|| r.repository().to_owned());
            }
        }
    }
    sources
}

/// Gets one blob to the registry: skipped, mounted or uploaded.
fn push_blob(
    session: &Session<'_>,
    store: &Store,
    repository: &str,
    (digest, size): (&Digest, u64),
    from: Option<&str>,
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Outcome, RegistryError> {
    let what = format!("the blob {digest}");
    let url = session.url(&format!("/v2/{repository}/blobs/{digest}"));
    let head = session.send("HEAD", &url, &[], &Body::Empty, &what)?;
    match head.status().as_u16() {
        200 => {
            drain(head);
            progress(Event::Present { digest: digest.clone(), size });
            return Ok(Outcome::Present);
        }
        404 => drain(head),
        _ => return Err(session.fail(head, &what, Target::Blob(repository, digest))),
    }
    let attempts = session.settings().attempts.max(1);
    let mut attempt = 1;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(RegistryError::Cancelled);
        }
        match upload(session, store, repository, (digest, size), from.filter(|_| attempt == 1), progress) {
            Ok(outcome) => return Ok(outcome),
            Err(e) if e.is_transient() && attempt < attempts => {
                progress(Event::Retrying { digest: digest.clone(), attempt, why: e.to_string() });
                std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt: mount or open an upload, then send the blob.
fn upload(
    session: &Session<'_>,
    store: &Store,
    repository: &str,
    (digest, size): (&Digest, u64),
    from: Option<&str>,
    progress: Progress<'_>,
) -> Result<Outcome, RegistryError> {
    let what = format!("the upload of {digest}");
    let mut start = format!("/v2/{repository}/blobs/uploads/");
    if let Some(from) = from {
        start.push_str(&format!("?mount={digest}&from={from}"));
    }
    let response = session.send("POST", &session.url(&start), &[], &Body::Empty, &what)?;
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match status {
        201 if from.is_some() => {
            drain(response);
            let from = from.unwrap_or_default().to_owned();
            progress(Event::Mounted { digest: digest.clone(), size, from });
            return Ok(Outcome::Mounted);
        }
        202 => drain(response),
        _ => return Err(session.fail(response, &what, Target::Repository(repository))),
    }
    let mut location =
        location.ok_or_else(|| bad(session, "the registry opened an upload without a Location".into()))?;
    let path = store.blob_path(digest);
    let sent = |offset: u64| {
        let last = AtomicU64::new(offset);
        move |n: u64| {
            let done = offset + n;
            if done == size || done >= last.load(Ordering::Relaxed) + (1 << 20) {
                last.store(done, Ordering::Relaxed);
                progress(Event::Moving { digest: digest.clone(), size, done });
            }
        }
    };
    let octets = ("Content-Type", "application/octet-stream");
    let mut offset = 0;
    if let Some(chunk) = session.settings().chunk_size.filter(|c| *c > 0 && *c < size) {
        while offset < size {
            let len = chunk.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let counter = sent(offset);
            let body = Body::File { path: &path, offset, len, sent: &counter };
            let url = session.url(&location);
            let response = session.send("PATCH", &url, &[octets, ("Content-Range", &range)], &body, &what)?;
            if response.status().as_u16() != 202 {
                return Err(session.fail(response, &what, Target::Repository(repository)));
            }
            if let Some(next) = response.headers().get("location").and_then(|v| v.to_str().ok()) {
                location = next.to_owned();
            }
            drain(response);
            offset += len;
        }
    }
    let url = with_query(&session.url(&location), "digest", &digest.to_string());
    let counter = sent(offset);
    let body = Body::File { path: &path, offset, len: size - offset, sent: &counter };
    let response = session.send("PUT", &url, &[octets], &body, &what)?;
    if !response.status().is_success() {
        return Err(session.fail(response, &what, Target::Blob(repository, digest)));
    }
    drain(response);
    progress(Event::Done { digest: digest.clone(), size });
    Ok(Outcome::Uploaded(size))
}

/// `url` with `key=value` added to its query.
fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", value.replace(':', "%3A"))
}

fn bad(session: &Session<'_>, why: String) -> RegistryError {
    RegistryError::BadContent { registry: session.registry.clone(), what: "the push".into(), why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_appended() {
        assert_eq!(with_query("http://r/u/1", "digest", "sha256:ab"), "http://r/u/1?digest=sha256%3Aab");
        assert_eq!(
            with_query("http://r/u/1?_state=x", "digest", "sha256:ab"),
            "http://r/u/1?_state=x&digest=sha256%3Aab"
        );
    }
}
