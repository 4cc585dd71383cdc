//! Where registries are, how to reach them, and the user's registry
//! settings.
//!
//! # Endpoints
//!
//! A reference's registry is a host with an optional port. `docker.io`
//! means Docker Hub, served at `registry-1.docker.io`. Every registry is
//! reached over HTTPS, verified with the system's root certificates plus
//! any `--ca-cert` files. Plain HTTP is used only for registries the user
//! lists as insecure, and for loopback hosts (`localhost`, `127.0.0.0/8`,
//! `::1`) as Docker does: for those, HTTPS is tried first and plain HTTP
//! only when the server does not speak TLS at all; a TLS server with a
//! certificate berth cannot verify is an error, never a silent downgrade.
//!
//! # Settings
//!
//! Read by [`Settings::from_env`] (the only place that reads the
//! environment):
//!
//! - `BERTH_INSECURE_REGISTRIES`: comma-separated `host[:port]` list of
//!   registries that may be reached over plain HTTP.
//! - `$XDG_CONFIG_HOME/berth/` (else `~/.config/berth/`), the config
//!   directory: `auth.json` holds the credentials `berth login` saved
//!   (mode 0600, Docker's `auths` format), `registries.toml` may hold
//!   `insecure = ["host:port", …]` and `ca-certs = ["/path/ca.pem", …]`.
//! - `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`): Docker's
//!   credentials, read (never written) when berth has none of its own for
//!   a registry.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::RegistryError;

/// The file `berth login` writes, in the config directory.
pub const AUTH_FILE: &str = "auth.json";
/// The optional settings file, in the config directory.
pub const SETTINGS_FILE: &str = "registries.toml";

/// How the registry client behaves. Build it with [`Settings::from_env`],
/// or by hand in tests.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// berth's config directory (`auth.json`, `registries.toml`).
    pub config_dir: Option<PathBuf>,
    /// Docker's config directory (`config.json`), read for credentials.
    pub docker_config_dir: Option<PathBuf>,
    /// Registries (`host[:port]`) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// PEM files of extra certificate authorities to trust.
    pub ca_certs: Vec<PathBuf>,
    /// Blobs transferred at once.
    pub jobs: usize,
    /// Attempts per blob before giving up.
    pub attempts: u32,
    /// Upload blobs in chunks of this many bytes (`None`: in one request).
    pub chunk_size: Option<u64>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SettingsFile {
    #[serde(default)]
    insecure: Vec<String>,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
}

impl Settings {
    /// Default transfer settings and no files.
    pub fn new() -> Settings {
        Settings { jobs: 4, attempts: 3, ..Settings::default() }
    }

    /// Settings from the environment and `registries.toml` (see the module
    /// page).
    pub fn from_env() -> Result<Settings, RegistryError> {
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let home = var("HOME");
        let mut settings = Settings::new();
        settings.config_dir = config_dir(var("XDG_CONFIG_HOME").as_deref(), home.as_deref());
        settings.docker_config_dir = var("DOCKER_CONFIG").or_else(|| home.map(|h| h.join(".docker")));
        if let Some(list) = std::env::var_os("BERTH_INSECURE_REGISTRIES") {
            settings.insecure.extend(parse_list(&list.to_string_lossy()));
        }
        if let Some(dir) = &settings.config_dir {
            let file = read_settings_file(&dir.join(SETTINGS_FILE))?;
            settings.insecure.extend(file.insecure);
            settings.ca_certs.extend(file.ca_certs);
        }
        Ok(settings)
    }

    /// berth's config directory, or an error saying none could be found.
    pub fn require_config_dir(&self) -> Result<&Path, RegistryError> {
        self.config_dir.as_deref().ok_or(RegistryError::NoConfigDir)
    }

    /// Whether `registry` may be reached over plain HTTP: listed as
    /// insecure, or a loopback host.
    pub fn allows_plain_http(&self, registry: &str) -> bool {
        is_loopback(registry) || self.insecure.iter().any(|i| i == registry || i == host_of(registry))
    }
}

/// `$XDG_CONFIG_HOME/berth`, else `$HOME/.config/berth` (absolute paths only).
pub fn config_dir(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let usable = |p: Option<&Path>| p.filter(|p| p.is_absolute()).map(Path::to_path_buf);
    usable(xdg_config_home).map(|x| x.join("berth")).or_else(|| usable(home).map(|h| h.join(".config/berth")))
}

fn parse_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn read_settings_file(path: &Path) -> Result<SettingsFile, RegistryError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| RegistryError::BadFile {
            path: path.to_owned(),
            why: format!("{}; expected insecure = [\"host:port\"] and ca-certs = [\"/path/ca.pem\"]", e.message()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SettingsFile::default()),
        Err(e) => Err(RegistryError::io("read", path)(e)),
    }
}

/// The host part of `host[:port]` (IPv6 literals in brackets lose them).
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, p)| if p.parse::<u16>().is_ok() { h } else { registry })
}

/// Whether `registry`'s host is this machine.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host:port that serves `registry` (Docker Hub's API is not at docker.io).
pub fn api_host(registry: &str) -> &str {
    if registry == crate::oci::reference::DEFAULT_REGISTRY { "registry-1.docker.io" } else { registry }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_insecure_hosts() {
        for host in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.3.4.5", "[::1]:5000"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["docker.io", "10.0.0.1:5000", "registry.local:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
        let settings = Settings { insecure: vec!["registry.local".into(), "b:5000".into()], ..Settings::new() };
        assert!(settings.allows_plain_http("registry.local:5000"));
        assert!(settings.allows_plain_http("b:5000"));
        assert!(!settings.allows_plain_http("b:6000"));
        assert!(!settings.allows_plain_http("ghcr.io"));
        assert!(settings.allows_plain_http("127.0.0.1:5000"));
    }

    #[test]
    fn config_dir_follows_xdg() {
        let home = Path::new("/home/u");
        assert_eq!(config_dir(Some(Path::new("/x")), Some(home)).unwrap(), Path::new("/x/berth"));
        assert_eq!(config_dir(Some(Path::new("rel")), Some(home)).unwrap(), Path::new("/home/u/.config/berth"));
        assert_eq!(config_dir(None, None), None);
    }

    #[test]
    fn settings_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        assert!(read_settings_file(&path).unwrap().insecure.is_empty());
        std::fs::write(&path, "insecure = [\"r:5000\"]\nca-certs = [\"/ca.pem\"]\n").unwrap();
        let file = read_settings_file(&path).unwrap();
        assert_eq!((file.insecure, file.ca_certs), (vec!["r:5000".to_owned()], vec![PathBuf::from("/ca.pem")]));
        std::fs::write(&path, "insecur = []\n").unwrap();
        let err = read_settings_file(&path).unwrap_err().to_string();
        assert!(err.contains("registries.toml") && err.contains("insecur"), "{err}");
    }

    #[test]
    fn docker_hub_is_served_elsewhere() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(parse_list(" a:1, b ,,c").collect::<Vec<_>>(), ["a:1", "b", "c"]);
    }
}
