//! A Bearer token service for the test registry: `GET /token?service=…&scope=…`
//! with HTTP Basic credentials answers `{"token": JWT}`, where the JWT
//! (ES256, its certificate in `x5c`) grants exactly the scopes asked for.
//! The registry trusts the certificate through `rootcertbundle`. The key
//! and certificate are made with openssl, and openssl signs each token.
//! Wrong credentials get a 401. Listens on 127.0.0.1 only; stops when
//! dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

pub struct TokenServer {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    /// Makes `token.key` and `token.pem` in `dir` and starts serving.
    pub fn start(dir: &Path, user: Option<(String, String)>) -> TokenServer {
        super::super::image::require_tool("openssl", "openssl");
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .args(["-keyout", "token.key", "-out", "token.pem", "-subj", "/CN=berth test tokens", "-days", "2"])
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
        let der =
            Command::new("openssl").args(["x509", "-in", "token.pem", "-outform", "DER"]).current_dir(dir).output();
        let cert = STANDARD.encode(der.expect("run openssl").stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream, &dir, &cert, user.as_ref());
                }
            }
        });
        TokenServer { addr, stop }
    }

    /// The token service's URL, for the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn answer(stream: TcpStream, dir: &Path, cert: &str, user: Option<&(String, String)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap_or(0);
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_owned());
        }
    }
    let allowed = match user {
        None => true,
        Some((u, p)) => authorization.as_deref() == Some(&format!("Basic {}", STANDARD.encode(format!("{u}:{p}")))),
    };
    let (status, body) = if allowed {
        let jwt = sign(dir, cert, &scopes(&target));
        ("200 OK", serde_json::json!({"token": jwt, "expires_in": 300}).to_string())
    } else {
        (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}"#.to_owned(),
        )
    };
    let mut out = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body.as_bytes());
}

/// The `access` claim for the `scope` parameters of `target`.
fn scopes(target: &str) -> Vec<serde_json::Value> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(decode)
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect()
}

/// Percent-decoding of a query value.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An ES256 JWT granting `access`, signed with `token.key` in `dir`.
fn sign(dir: &Path, cert: &str, access: &[serde_json::Value]) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [cert]});
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": "alice", "aud": "berth-test",
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let file: PathBuf = dir.join(format!("jwt-{}.txt", std::process::id()));
    std::fs::write(&file, &input).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", "token.key"])
        .arg(&file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl dgst: {}", String::from_utf8_lossy(&out.stderr));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(raw_signature(&out.stdout)))
}

/// A DER ECDSA signature (SEQUENCE of two INTEGERs) as JWS wants it: r ‖ s, 32 bytes each.
fn raw_signature(der: &[u8]) -> Vec<u8> {
    let mut i = 2; // SEQUENCE tag and (short) length
    let mut raw = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02, "an INTEGER");
        let len = der[i + 1] as usize;
        let int = &der[i + 2..i + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        raw.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        raw.extend_from_slice(int);
        i += 2 + len;
    }
    raw
}
