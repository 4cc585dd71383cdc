//! The client against a fake registry: a plain-HTTP server thread on
//! 127.0.0.1 that answers from a closure and records what it was asked.
//! It covers what the real registry in `tests/registry.rs` does not: the
//! Bearer token flow, a connection that breaks mid-blob (resumed with a
//! Range request), and a tampered blob of the right size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use super::*;
use crate::oci::{Digest, ImageRef};
use crate::store::testutil::temp_store;

/// A request as the fake server saw it.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An answer; `cut` sends only that many body bytes, then closes.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    cut: Option<usize>,
}

fn resp(status: u16, body: &[u8]) -> Resp {
    Resp { status, headers: Vec::new(), body: body.to_vec(), cut: None }
}

impl Resp {
    fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A fake registry on 127.0.0.1; stops when dropped.
struct Fake {
    addr: String,
    seen: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(handler: Box<Handler>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (seen.clone(), stop.clone());
        let handler: Arc<Handler> = Arc::from(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let (log, handler) = (log.clone(), handler.clone());
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(stream, &*handler, &log));
                }
            }
        });
        Fake { addr, seen, stop }
    }

    fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One connection: requests until the client closes or a body is cut.
fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Req>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
            let _ = out.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        if !version.starts_with("HTTP/") {
            let _ = out.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let mut req = Req { method: method.to_owned(), target: target.to_owned(), headers: Vec::new() };
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                req.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0usize);
        std::io::copy(&mut (&mut reader).take(len as u64), &mut std::io::sink()).unwrap();
        log.lock().unwrap().push(req.clone());
        let r = handler(&req);
        let mut head = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\n", r.status, r.body.len());
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes()).unwrap();
        let body = if req.method == "HEAD" { &[][..] } else { &r.body[..r.cut.unwrap_or(r.body.len())] };
        out.write_all(body).unwrap();
        if r.cut.is_some() {
            return;
        }
    }
}

/// A one-layer image's blobs: manifest, config and layer bytes.
struct Blobs {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

fn blobs() -> Blobs {
    let layer = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256(b"uncompressed").to_string()]}
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": Digest::sha256(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::sha256(&layer).to_string(), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    Blobs { manifest, config, layer }
}

const TOKEN: &str = "Bearer good-token";

/// A registry that wants a Bearer token (from `/token`, for alice:pw) and
/// serves `served` as the layer; the first layer request breaks halfway
/// when `break_once`.
fn token_registry(b: &Blobs, served: Vec<u8>, break_once: bool) -> Fake {
    let manifest = b.manifest.clone();
    let config = b.config.clone();
    let (config_path, layer_path) = (
        format!("/v2/team/app/blobs/{}", Digest::sha256(&b.config)),
        format!("/v2/team/app/blobs/{}", Digest::sha256(&b.layer)),
    );
    let broken = AtomicUsize::new(0);
    let realm = Arc::new(Mutex::new(String::new()));
    let realm_for_handler = realm.clone();
    let fake = Fake::start(Box::new(move |req: &Req| {
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:pw"));
        if req.target.starts_with("/token") {
            return match req.header("authorization") {
                Some(a) if a == basic => resp(200, br#"{"token":"good-token"}"#),
                _ => resp(401, br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}"#),
            };
        }
        if req.header("authorization") != Some(TOKEN) {
            let challenge = format!(
                r#"Bearer realm="{}/token",service="fake",scope="repository:team/app:pull""#,
                realm_for_handler.lock().unwrap()
            );
            return resp(401, b"{}").header("WWW-Authenticate", &challenge);
        }
        match req.target.as_str() {
            "/v2/" => resp(200, b"{}"),
            "/v2/team/app/manifests/1" => resp(200, &manifest).header("Content-Type", manifest::OCI_MANIFEST),
            p if p == config_path => resp(200, &config),
            p if p == layer_path => match req.header("range") {
                None if break_once && broken.fetch_add(1, Ordering::SeqCst) == 0 => {
                    Resp { cut: Some(served.len() / 2), ..resp(200, &served) }
                }
                None => resp(200, &served),
                Some(range) => {
                    let from: usize = range.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
                    let total = served.len();
                    resp(206, &served[from..]).header("Content-Range", &format!("bytes {from}-{}/{total}", total - 1))
                }
            },
            _ => resp(404, br#"{"errors":[{"code":"NOT_FOUND","message":"?"}]}"#),
        }
    }));
    *realm.lock().unwrap() = format!("http://{}", fake.addr);
    fake
}

fn client_with(dir: &std::path::Path, password: &str, fake: &Fake) -> Client {
    let config = dir.join("config");
    auth::save(&config, &fake.addr, &Credentials { username: "alice".into(), password: password.into() }).unwrap();
    Client::new(Settings { config_dir: Some(config), attempts: 3, ..Settings::new() }).unwrap()
}

#[test]
fn pulls_through_a_token_and_resumes_a_broken_blob() {
    let b = blobs();
    let fake = token_registry(&b, b.layer.clone(), true);
    let (dir, store) = temp_store();
    let client = client_with(dir.path(), "pw", &fake);
    let reference: ImageRef = format!("{}/team/app:1", fake.addr).parse().unwrap();
    let events = Mutex::new(Vec::new());
    let pulled = client.pull(&store, &reference, &PullOptions::default(), &|e| events.lock().unwrap().push(e)).unwrap();

    assert_eq!(pulled.digest, Digest::sha256(&b.manifest));
    assert_eq!(pulled.tag.as_deref(), Some(format!("{}/team/app:1", fake.addr).as_str()));
    assert_eq!(store.read_blob(&Digest::sha256(&b.layer)).unwrap(), b.layer);
    let seen = fake.seen();
    let token = seen.iter().find(|r| r.target.starts_with("/token")).expect("a token was asked for");
    assert!(
        token.target.contains("service=fake") && token.target.contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{token:?}"
    );
    let range = seen.iter().find(|r| r.header("range").is_some()).expect("the broken blob was resumed");
    assert_eq!(range.header("range"), Some(format!("bytes={}-", b.layer.len() / 2).as_str()));
    assert!(events.lock().unwrap().iter().any(|e| matches!(e, Event::Retrying { attempt: 1, .. })));
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn a_wrong_password_at_the_token_service_is_unauthorized() {
    let b = blobs();
    let fake = token_registry(&b, b.layer.clone(), false);
    let (dir, store) = temp_store();
    let client = client_with(dir.path(), "wrong", &fake);
    let reference: ImageRef = format!("{}/team/app:1", fake.addr).parse().unwrap();
    let err = client.pull(&store, &reference, &PullOptions::default(), &|_| {}).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("bad password") && err.to_string().contains("berth login"), "{err}");
    let err = client.login(&fake.addr, &Credentials { username: "alice".into(), password: "nope".into() }).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    client.login(&fake.addr, &Credentials { username: "alice".into(), password: "pw".into() }).unwrap();
}

#[test]
fn a_tampered_blob_of_the_right_size_stores_nothing() {
    let b = blobs();
    let mut tampered = b.layer.clone();
    tampered[1000] ^= 1;
    let fake = token_registry(&b, tampered, false);
    let (dir, store) = temp_store();
    let client = client_with(dir.path(), "pw", &fake);
    let reference: ImageRef = format!("{}/team/app:1", fake.addr).parse().unwrap();
    let err = client.pull(&store, &reference, &PullOptions::default(), &|_| {}).unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err:?}");
    assert_eq!(std::fs::read_dir(store.oci_dir().join("blobs/sha256")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    assert!(store.tags().unwrap().is_empty());
}

/// A registry without auth serving `files` (path → content type, bytes).
fn static_registry(files: Vec<(String, &'static str, Vec<u8>)>) -> Fake {
    Fake::start(Box::new(move |req: &Req| {
        if req.target == "/v2/" {
            return resp(200, b"{}");
        }
        match files.iter().find(|(path, _, _)| *path == req.target) {
            Some((_, content_type, body)) => resp(200, body).header("Content-Type", content_type),
            None => resp(404, br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
        }
    }))
}

#[test]
fn an_index_is_followed_to_the_wanted_platform() {
    let amd = blobs();
    let arm_config = String::from_utf8(amd.config.clone()).unwrap().replace("amd64", "arm64").into_bytes();
    let arm_manifest = String::from_utf8(amd.manifest.clone())
        .unwrap()
        .replace(&Digest::sha256(&amd.config).to_string(), &Digest::sha256(&arm_config).to_string())
        .into_bytes();
    let entry = |m: &[u8], arch: &str| {
        serde_json::json!({"mediaType": manifest::OCI_MANIFEST, "digest": Digest::sha256(m).to_string(),
            "size": m.len(), "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX,
        "manifests": [entry(&arm_manifest, "arm64"), entry(&amd.manifest, "amd64")]})
    .to_string()
    .into_bytes();
    let at = |d: &[u8], kind: &str| format!("/v2/multi/{kind}/{}", Digest::sha256(d));
    let fake = static_registry(vec![
        ("/v2/multi/manifests/1".into(), manifest::OCI_INDEX, index.clone()),
        (at(&arm_manifest, "manifests"), manifest::OCI_MANIFEST, arm_manifest.clone()),
        (at(&amd.manifest, "manifests"), manifest::OCI_MANIFEST, amd.manifest.clone()),
        (at(&arm_config, "blobs"), "application/octet-stream", arm_config.clone()),
        (at(&amd.layer, "blobs"), "application/octet-stream", amd.layer.clone()),
    ]);
    let (_dir, store) = temp_store();
    let client = Client::new(Settings::new()).unwrap();
    let reference: ImageRef = format!("{}/multi:1", fake.addr).parse().unwrap();
    let arm = PullOptions { platform: "linux/arm64".parse().unwrap(), tag: true };
    let pulled = client.pull(&store, &reference, &arm, &|_| {}).unwrap();
    assert_eq!((pulled.digest, pulled.resolved), (Digest::sha256(&arm_manifest), Digest::sha256(&index)));
    assert_eq!(pulled.config.architecture().to_string(), "arm64");

    let s390x = PullOptions { platform: "linux/s390x".parse().unwrap(), tag: true };
    let err = client.pull(&store, &reference, &s390x, &|_| {}).unwrap_err();
    assert!(matches!(err, RegistryError::NoPlatform { .. }), "{err:?}");
    assert!(err.to_string().contains("has no image for linux/s390x; it has: linux/arm64, linux/amd64"), "{err}");
}
