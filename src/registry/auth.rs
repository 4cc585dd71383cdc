//! Credentials: what `berth login` saves and what pulls and pushes send.
//!
//! berth keeps them in `auth.json` in its config directory, in the format
//! Docker and Podman use (`{"auths": {"host:port": {"auth":
//! base64("user:password")}}}`), written atomically with mode 0600 in a
//! 0700 directory; other keys in the file are kept. When berth has nothing
//! for a registry, Docker's `config.json` `auths` is read (never written);
//! its keys may be URLs such as `https://index.docker.io/v1/`, which mean
//! Docker Hub. Credential helpers (`credsStore`) are not consulted.
//!
//! A password is never printed: [`Credentials`]' `Debug` hides it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::RegistryError;
use super::settings::{AUTH_FILE, Settings};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<hidden>").finish()
    }
}

impl Credentials {
    /// The `Authorization` header value for HTTP Basic.
    pub fn basic(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.username, self.password)))
    }

    /// Decodes an `auth` value, `base64(user:password)`.
    fn decode(auth: &str) -> Option<Credentials> {
        let bytes = STANDARD.decode(auth.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (username, password) = text.split_once(':')?;
        Some(Credentials { username: username.to_owned(), password: password.to_owned() })
    }
}

/// The credentials for `registry`: berth's own, else Docker's, else none.
pub fn lookup(settings: &Settings, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let files = [
        settings.config_dir.as_ref().map(|d| d.join(AUTH_FILE)),
        settings.docker_config_dir.as_ref().map(|d| d.join("config.json")),
    ];
    for path in files.into_iter().flatten() {
        if let Some(found) = read_auths(&path)?.and_then(|auths| find(&auths, registry)) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Saves `creds` for `registry` in berth's `auth.json` (see the module page).
pub fn save(config_dir: &Path, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let path = config_dir.join(AUTH_FILE);
    let mut doc = read_doc(&path)?.unwrap_or_else(|| json!({}));
    let auth = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
    auths_mut(&path, &mut doc)?.insert(registry.to_owned(), json!({ "auth": auth }));
    write_private(config_dir, &path, &doc)
}

/// Forgets `registry`'s credentials; whether there were any.
pub fn remove(config_dir: &Path, registry: &str) -> Result<bool, RegistryError> {
    let path = config_dir.join(AUTH_FILE);
    let Some(mut doc) = read_doc(&path)? else { return Ok(false) };
    let auths = auths_mut(&path, &mut doc)?;
    let keys: Vec<String> = auths.keys().filter(|k| normalise_key(k) == registry).cloned().collect();
    for k in &keys {
        auths.remove(k);
    }
    if !keys.is_empty() {
        write_private(config_dir, &path, &doc)?;
    }
    Ok(!keys.is_empty())
}

/// A config file key as a registry name: `https://index.docker.io/v1/` is
/// `docker.io`, `https://host:5000` is `host:5000`.
pub(crate) fn normalise_key(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        other => other,
    }
}

fn find(auths: &Map<String, Value>, registry: &str) -> Option<Credentials> {
    auths.iter().filter(|(k, _)| normalise_key(k) == registry).find_map(|(_, entry)| {
        let field = |name: &str| entry.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        match (field("auth"), field("username"), field("password")) {
            (Some(auth), _, _) => Credentials::decode(auth),
            (None, Some(u), Some(p)) => Some(Credentials { username: u.to_owned(), password: p.to_owned() }),
            _ => None,
        }
    })
}

fn read_doc(path: &Path) -> Result<Option<Value>, RegistryError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::BadFile { path: path.to_owned(), why: format!("not JSON: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io("read", path)(e)),
    }
}

fn read_auths(path: &Path) -> Result<Option<Map<String, Value>>, RegistryError> {
    Ok(read_doc(path)?.and_then(|doc| doc.get("auths").and_then(Value::as_object).cloned()))
}

fn auths_mut<'v>(path: &Path, doc: &'v mut Value) -> Result<&'v mut Map<String, Value>, RegistryError> {
    let bad = || RegistryError::BadFile { path: path.to_owned(), why: "expected a JSON object with \"auths\"".into() };
    let obj = doc.as_object_mut().ok_or_else(bad)?;
    obj.entry("auths").or_insert_with(|| json!({})).as_object_mut().ok_or_else(bad)
}

/// Writes `doc` to `path` atomically, readable by its owner only.
fn write_private(dir: &Path, path: &Path, doc: &Value) -> Result<(), RegistryError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(RegistryError::io("create", dir))?;
    let tmp = dir.join(format!(".{AUTH_FILE}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(doc).expect("JSON values serialise"))?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        RegistryError::io("write", path)(e)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials { username: u.into(), password: p.into() }
    }

    #[test]
    fn save_lookup_remove_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("berth");
        let settings = Settings { config_dir: Some(config.clone()), ..Settings::new() };
        assert_eq!(lookup(&settings, "127.0.0.1:5000").unwrap(), None);
        save(&config, "127.0.0.1:5000", &creds("alice", "s3:cret")).unwrap();
        save(&config, "other:1", &creds("bob", "x")).unwrap();
        assert_eq!(lookup(&settings, "127.0.0.1:5000").unwrap(), Some(creds("alice", "s3:cret")));
        let mode = fs::metadata(config.join(AUTH_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o700);
        let text = fs::read_to_string(config.join(AUTH_FILE)).unwrap();
        assert!(!text.contains("s3:cret"), "passwords are not stored in the clear: {text}");
        assert!(remove(&config, "127.0.0.1:5000").unwrap());
        assert!(!remove(&config, "127.0.0.1:5000").unwrap());
        assert_eq!(lookup(&settings, "127.0.0.1:5000").unwrap(), None);
        assert_eq!(lookup(&settings, "other:1").unwrap(), Some(creds("bob", "x")));
    }

    #[test]
    fn docker_config_is_read_when_berth_has_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        fs::create_dir(&docker).unwrap();
        let hub = STANDARD.encode("hubuser:hubpass");
        let doc = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": hub},
            "registry.local:5000": {"username": "u", "password": "p"},
            "empty.example": {}
        }, "credsStore": "desktop"});
        fs::write(docker.join("config.json"), doc.to_string()).unwrap();
        let settings =
            Settings { config_dir: Some(dir.path().join("berth")), docker_config_dir: Some(docker), ..Settings::new() };
        assert_eq!(lookup(&settings, "docker.io").unwrap(), Some(creds("hubuser", "hubpass")));
        assert_eq!(lookup(&settings, "registry.local:5000").unwrap(), Some(creds("u", "p")));
        assert_eq!(lookup(&settings, "empty.example").unwrap(), None);
        save(&dir.path().join("berth"), "docker.io", &creds("mine", "pw")).unwrap();
        assert_eq!(lookup(&settings, "docker.io").unwrap(), Some(creds("mine", "pw")));
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", creds("alice", "hunter2"));
        assert!(shown.contains("alice") && !shown.contains("hunter2"), "{shown}");
        assert_eq!(creds("a", "b").basic(), "Basic YTpi");
    }
}
