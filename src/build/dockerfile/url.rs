//! `ADD http(s)://…`: fetching a URL into a file, as BuildKit's HTTP
//! source does: the body as it comes (never unpacked), its sha256, and the
//! `Last-Modified` time when the server gives one. With `--checksum` the
//! digest must match, else the build stops naming the URL, the expected
//! and the fetched digest.
//!
//! When the fetch happens is the resolver's business: a URL without
//! `--checksum` is fetched before the graph is keyed (its key is the
//! content's digest, as BuildKit's cache key is); one with `--checksum` is
//! keyed by the checksum and fetched only when its layer is not cached.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::Digest as _;

use crate::resolve::dockerfile::copy::Fetched;

/// Why a URL could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("ADD {url}: cannot fetch it: {why}")]
    Fetch { url: String, why: String },
    #[error("ADD {url}: the server answered {status}; ADD needs a 200 answer")]
    Status { url: String, status: u16 },
    #[error("ADD {url}: checksum mismatch: --checksum expects {expected}, the content is {got}")]
    Checksum { url: String, expected: String, got: String },
    #[error("ADD {url}: --checksum={expected}: berth verifies sha256 and sha512 digests; give one of those")]
    Algorithm { url: String, expected: String },
    #[error("ADD {url}: {}: {source}", path.display())]
    File { url: String, path: std::path::PathBuf, source: std::io::Error },
}

fn agent() -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let tls = TlsConfig::builder().root_certs(RootCerts::new_with_certs(&roots)).build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .user_agent(format!("berth/{}", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

/// Checks that the fetched `file` of `url` has the digest `expected`
/// (`sha256:HEX` or `sha512:HEX`).
pub fn verify(url: &str, file: &Fetched, expected: &str) -> Result<(), UrlError> {
    let got = if expected.starts_with("sha256:") {
        file.digest.clone()
    } else if expected.starts_with("sha512:") {
        let mut hasher = sha2::Sha512::new();
        let read = |source| UrlError::File { url: url.to_owned(), path: file.path.clone(), source };
        let mut f = std::fs::File::open(&file.path).map_err(read)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf).map_err(read)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        format!("sha512:{}", hex::encode(hasher.finalize()))
    } else {
        return Err(UrlError::Algorithm { url: url.to_owned(), expected: expected.to_owned() });
    };
    if got != expected {
        return Err(UrlError::Checksum { url: url.to_owned(), expected: expected.to_owned(), got });
    }
    Ok(())
}

/// Fetches `url` into the file `into`; with `checksum` (`sha256:HEX` or
/// `sha512:HEX`) the content must have that digest.
pub fn fetch(url: &str, into: &Path, checksum: Option<&str>) -> Result<Fetched, UrlError> {
    if let Some(c) = checksum
        && !(c.starts_with("sha256:") || c.starts_with("sha512:"))
    {
        return Err(UrlError::Algorithm { url: url.to_owned(), expected: c.to_owned() });
    }
    let fail = |why: String| UrlError::Fetch { url: url.to_owned(), why };
    let response = agent().get(url).call().map_err(|e| fail(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(UrlError::Status { url: url.to_owned(), status });
    }
    let mtime = response.headers().get("last-modified").and_then(|v| v.to_str().ok()).and_then(http_date);
    let write = |source| UrlError::File { url: url.to_owned(), path: into.to_owned(), source };
    let mut file = std::fs::File::create(into).map_err(write)?;
    let mut reader = response.into_body().into_reader();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(write)?;
    }
    file.sync_all().map_err(write)?;
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let fetched = Fetched { path: into.to_owned(), digest, mtime };
    if let Some(expected) = checksum {
        verify(url, &fetched, expected)?;
    }
    Ok(fetched)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as seconds since the epoch.
pub fn http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else { return None };
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = months.iter().position(|x| *x == month)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [hh, mm, ss] = t[..] else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    u64::try_from(days * 86400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates() {
        assert_eq!(super::http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(super::http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(super::http_date("yesterday"), None);
    }
}
