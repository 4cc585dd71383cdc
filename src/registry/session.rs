//! A conversation with one registry: where it answers (HTTPS, or plain
//! HTTP where allowed), how to authenticate, and sending requests.
//!
//! # Authentication
//!
//! [`Session::open`] pings `/v2/`. A 200 means anonymous access; a 401
//! carries a challenge ([`Challenge`]): for `Basic`, the saved
//! credentials go with every request; for `Bearer`, berth asks the token
//! service (`realm`) for a token for the `service` and for the scopes the
//! operation needs (`repository:team/app:pull`, `…:pull,push`), sending the
//! credentials if it has any, and sends `Authorization: Bearer TOKEN`. A
//! later 401 (a token that expired, or a scope the challenge adds, such as
//! the source repository of a cross-repository mount) is answered once
//! more the same way; a second refusal is [`RegistryError::Unauthorized`].
//!
//! Credentials never go over plain HTTP to a host that is not allowed it
//! (a token realm on `http://` is used only for loopback or insecure hosts).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use ureq::SendBody;
use ureq::http::{Request, Response};

use super::RegistryError;
use super::auth::{self, Credentials};
use super::challenge::Challenge;
use super::client::{Client, Failure};
use super::settings::api_host;

/// A request body that can be sent again (after a 401, or a retry).
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of the file at `path` from `offset`; `sent` hears how
    /// many bytes went out so far.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        sent: &'a (dyn Fn(u64) + Sync),
    },
}

/// What a failed request was about, to name it in errors.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Registry,
    Repository(&'a str),
    Tag(&'a str, &'a str),
    Manifest(&'a str, &'a crate::oci::Digest),
    Blob(&'a str, &'a crate::oci::Digest),
}

/// One registry, reachable and authenticated for some scopes.
pub(crate) struct Session<'c> {
    client: &'c Client,
    /// As references name it, such as `127.0.0.1:5000` or `docker.io`.
    pub(crate) registry: String,
    /// `https://host:port` or `http://host:port`.
    base: String,
    creds: Option<Credentials>,
    scopes: Vec<String>,
    /// The `Authorization` header value to send, once known.
    authorization: Mutex<Option<String>>,
}

impl<'c> Session<'c> {
    /// Finds how `registry` answers and authenticates for `scopes`, with
    /// the saved credentials.
    pub(crate) fn open(client: &'c Client, registry: &str, scopes: Vec<String>) -> Result<Self, RegistryError> {
        let creds = auth::lookup(&client.settings, registry)?;
        Session::open_with(client, registry, scopes, creds)
    }

    /// [`Session::open`] with the credentials given.
    pub(crate) fn open_with(
        client: &'c Client,
        registry: &str,
        scopes: Vec<String>,
        creds: Option<Credentials>,
    ) -> Result<Self, RegistryError> {
        let host = api_host(registry);
        let mut session = Session {
            client,
            registry: registry.to_owned(),
            base: format!("https://{host}"),
            creds,
            scopes,
            authorization: Mutex::new(None),
        };
        let ping = |base: &str| client.agent.get(format!("{base}/v2/")).call();
        let response = match ping(&session.base) {
            Ok(r) => r,
            Err(e) => match Failure::of(e) {
                // Not TLS, or a server that hung up on a TLS hello: maybe plain HTTP.
                Failure::NotTls(_) | Failure::Transfer(_) if client.settings.allows_plain_http(registry) => {
                    session.base = format!("http://{host}");
                    let url = format!("{}/v2/", session.base);
                    ping(&session.base).map_err(|e| Failure::of(e).into_error(registry, &url, "a ping"))?
                }
                other => return Err(other.into_error(registry, &format!("{}/v2/", session.base), "a ping")),
            },
        };
        match response.status().as_u16() {
            200..=299 => drain(response),
            401 => {
                let challenge = challenge_of(&response);
                drain(response);
                if let Some(c) = challenge {
                    session.authenticate(&c, "the login")?;
                }
            }
            _ => return Err(session.fail(response, "a ping of /v2/", Target::Registry)),
        }
        Ok(session)
    }

    /// The client's settings.
    pub(crate) fn settings(&self) -> &super::Settings {
        &self.client.settings
    }

    /// The full URL of `path` (which starts with `/v2/`), or `location` as
    /// a registry's `Location` header gave it (absolute or relative).
    pub(crate) fn url(&self, path_or_location: &str) -> String {
        if path_or_location.starts_with("http://") || path_or_location.starts_with("https://") {
            path_or_location.to_owned()
        } else {
            format!("{}{path_or_location}", self.base)
        }
    }

    /// Sends a request, answering one 401 challenge; statuses are the
    /// caller's to read. `what` names the request in errors.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        what: &str,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut answered = false;
        loop {
            let mut request = Request::builder().method(method).uri(url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            if let Some(value) = self.authorization.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                request = request.header("Authorization", value);
            }
            let fail = |e| Failure::of(e).into_error(&self.registry, url, what);
            let response = match body {
                Body::Empty => self.client.agent.run(request.body(()).map_err(|e| self.bad_request(e))?),
                Body::Bytes(bytes) => self
                    .client
                    .agent
                    .run(request.header("Content-Length", bytes.len()).body(*bytes).map_err(|e| self.bad_request(e))?),
                Body::File { path, offset, len, sent } => {
                    let mut file = File::open(path).map_err(RegistryError::io("open", *path))?;
                    file.seek(SeekFrom::Start(*offset)).map_err(RegistryError::io("read", *path))?;
                    let mut reader = Counting { inner: file.take(*len), done: 0, sent: *sent };
                    let body = SendBody::from_reader(&mut reader);
                    self.client
                        .agent
                        .run(request.header("Content-Length", *len).body(body).map_err(|e| self.bad_request(e))?)
                }
            }
            .map_err(fail)?;
            if response.status().as_u16() == 401
                && !answered
                && let Some(challenge) = challenge_of(&response)
            {
                drain(response);
                answered = true;
                if self.authenticate(&challenge, what)? {
                    continue;
                }
                let message = if self.creds.is_some() {
                    "the saved user name and password were refused"
                } else {
                    "the registry asks for credentials, and berth has none saved for it"
                };
                let (registry, what) = (self.registry.clone(), what.to_owned());
                return Err(RegistryError::Unauthorized { registry, what, message: message.to_owned() });
            }
            return Ok(response);
        }
    }

    /// Answers `challenge`; whether there is a new `Authorization` to try.
    fn authenticate(&self, challenge: &Challenge, what: &str) -> Result<bool, RegistryError> {
        let value = match challenge {
            Challenge::Basic => match &self.creds {
                Some(creds) => creds.basic(),
                None => return Ok(false),
            },
            Challenge::Bearer { realm, service, scope } => {
                let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
                if let Some(s) = scope.as_deref().filter(|s| !scopes.contains(s)) {
                    scopes.push(s);
                }
                format!("Bearer {}", self.token(realm, service.as_deref(), &scopes, what)?)
            }
        };
        let mut current = self.authorization.lock().unwrap_or_else(|p| p.into_inner());
        let changed = current.as_deref() != Some(value.as_str());
        *current = Some(value);
        Ok(changed || matches!(challenge, Challenge::Bearer { .. }))
    }

    /// A token from the token service at `realm`.
    fn token(&self, realm: &str, service: Option<&str>, scopes: &[&str], what: &str) -> Result<String, RegistryError> {
        let bad = |why: String| RegistryError::Token { registry: self.registry.clone(), realm: realm.into(), why };
        let realm_host = realm.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default();
        if realm.starts_with("http://") && !self.client.settings.allows_plain_http(realm_host) {
            return Err(bad("its address is plain http://, which berth does not send credentials to".into()));
        }
        let mut request = self.client.agent.get(realm);
        if let Some(service) = service {
            request = request.query("service", service);
        }
        for scope in scopes {
            request = request.query("scope", *scope);
        }
        if let Some(creds) = &self.creds {
            request = request.header("Authorization", creds.basic());
        }
        let mut response = request.call().map_err(|e| Failure::of(e).into_error(&self.registry, realm, what))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                let message = error_message(&read_small(response));
                let registry = self.registry.clone();
                return Err(RegistryError::Unauthorized { registry, what: what.to_owned(), message });
            }
            status => return Err(bad(format!("HTTP {status}"))),
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| bad(e.to_string()))?;
        let parsed: Token = serde_json::from_slice(&body).map_err(|e| bad(format!("not a token: {e}")))?;
        parsed.token.or(parsed.access_token).filter(|t| !t.is_empty()).ok_or_else(|| bad("no token in it".into()))
    }

    /// The error for an unsuccessful `response` to `what`, from its status
    /// and the registry's error body.
    pub(crate) fn fail(&self, response: Response<ureq::Body>, what: &str, target: Target<'_>) -> RegistryError {
        let status = response.status().as_u16();
        let (code, message) = error_code(&read_small(response));
        let registry = self.registry.clone();
        let (what, repo) = (what.to_owned(), |r: &str| r.to_owned());
        match (status, code.as_str(), target) {
            (401, _, _) | (_, "UNAUTHORIZED", _) => RegistryError::Unauthorized { registry, what, message },
            (403, _, _) | (_, "DENIED", _) => RegistryError::Denied { registry, what, message },
            (_, "NAME_UNKNOWN", Target::Repository(r) | Target::Tag(r, _))
            | (_, "NAME_UNKNOWN", Target::Manifest(r, _) | Target::Blob(r, _)) => {
                RegistryError::UnknownRepository { registry, repository: repo(r), message }
            }
            (404, "MANIFEST_UNKNOWN" | "", Target::Tag(r, tag)) => {
                RegistryError::UnknownTag { registry, repository: repo(r), tag: tag.to_owned(), message }
            }
            (404, "MANIFEST_UNKNOWN" | "", Target::Manifest(r, d)) => {
                RegistryError::UnknownManifest { registry, repository: repo(r), digest: d.clone(), message }
            }
            (404, "BLOB_UNKNOWN" | "", Target::Blob(r, d)) => {
                RegistryError::UnknownBlob { registry, repository: repo(r), digest: d.clone(), message }
            }
            _ => RegistryError::Status { registry, what, status, message },
        }
    }

    fn bad_request(&self, e: ureq::http::Error) -> RegistryError {
        RegistryError::BadContent { registry: self.registry.clone(), what: "a request".into(), why: e.to_string() }
    }
}

/// Counts what goes out of a request body.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    sent: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.sent)(self.done);
        Ok(n)
    }
}

fn challenge_of(response: &Response<ureq::Body>) -> Option<Challenge> {
    response.headers().get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).find_map(Challenge::parse)
}

/// Reads and drops a small body, so that the connection can be reused.
pub(crate) fn drain(response: Response<ureq::Body>) {
    let _ = read_small(response);
}

/// At most 64 KiB of a body.
pub(crate) fn read_small(response: Response<ureq::Body>) -> Vec<u8> {
    response.into_body().with_config().limit(64 << 10).read_to_vec().unwrap_or_default()
}

/// The first error code and message of a registry's error body
/// (`{"errors":[{"code":"…","message":"…"}]}`), or empty strings.
fn error_code(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body).ok().and_then(|e| e.errors.into_iter().next()) {
        Some(e) => (e.code, e.message),
        None => (String::new(), String::from_utf8_lossy(body).trim().chars().take(200).collect()),
    }
}

fn error_message(body: &[u8]) -> String {
    let (_, message) = error_code(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_code_and_message() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_code(body), ("MANIFEST_UNKNOWN".into(), "manifest unknown".into()));
        assert_eq!(error_code(b"  plain text\n"), (String::new(), "plain text".into()));
        assert_eq!(error_code(b""), (String::new(), String::new()));
    }
}
