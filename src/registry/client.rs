//! The HTTP side: one [`Client`] per command, holding the connection pool
//! and the TLS roots, and the translation of transport failures into
//! [`RegistryError`]s a user can act on.
//!
//! TLS is rustls (through `ureq`), verified against the system's roots
//! (`rustls-native-certs`) plus the `--ca-cert` files. Status codes are
//! not errors at this level: the caller reads the registry's error body.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::RegistryError;
use super::settings::Settings;

/// A registry client: connection pool, TLS roots and settings. Cheap to
/// share between threads.
#[derive(Debug)]
pub struct Client {
    pub(crate) agent: ureq::Agent,
    pub(crate) settings: Settings,
}

impl Client {
    /// A client trusting the system's roots and `settings.ca_certs`.
    pub fn new(settings: Settings) -> Result<Client, RegistryError> {
        let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        for path in &settings.ca_certs {
            roots.extend(read_pem_certs(path)?);
        }
        let tls = TlsConfig::builder().root_certs(RootCerts::new_with_certs(&roots)).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(format!("berth/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(16)
            .build();
        Ok(Client { agent: config.new_agent(), settings })
    }

    /// The settings this client was made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The certificates in the PEM file `path`; an error when it has none.
fn read_pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>, RegistryError> {
    let bytes = std::fs::read(path).map_err(RegistryError::io("read the CA certificate file", path))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(RegistryError::BadFile { path: path.to_owned(), why: e.to_string() }),
        }
    }
    if certs.is_empty() {
        let why = "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned();
        return Err(RegistryError::BadFile { path: path.to_owned(), why });
    }
    Ok(certs)
}

/// How a request failed before any answer came.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered, but not with TLS: it may speak plain HTTP.
    NotTls(String),
    /// TLS failed (a certificate that cannot be verified, …).
    Tls(String),
    /// No connection could be made.
    Unreachable(String),
    /// The connection broke, or the answer was not HTTP.
    Transfer(String),
}

impl Failure {
    /// Sorts a `ureq` error.
    pub(crate) fn of(e: ureq::Error) -> Failure {
        use std::io::ErrorKind as K;
        match e {
            ureq::Error::Io(io) => {
                if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return match tls {
                        rustls::Error::InvalidMessage(_) => Failure::NotTls(tls.to_string()),
                        other => Failure::Tls(other.to_string()),
                    };
                }
                match io.kind() {
                    K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                        Failure::Unreachable(io.to_string())
                    }
                    _ => Failure::Transfer(io.to_string()),
                }
            }
            ureq::Error::Rustls(tls) => Failure::Tls(tls.to_string()),
            ureq::Error::Tls(why) => Failure::Tls(why.to_owned()),
            ureq::Error::HostNotFound => Failure::Unreachable("the host name does not resolve".to_owned()),
            ureq::Error::ConnectionFailed => Failure::Unreachable("the connection failed".to_owned()),
            ureq::Error::Timeout(t) => Failure::Transfer(format!("timed out ({t})")),
            other => Failure::Transfer(other.to_string()),
        }
    }

    /// The user's error for this failure while doing `what` with `registry` at `url`.
    pub(crate) fn into_error(self, registry: &str, url: &str, what: &str) -> RegistryError {
        let registry = registry.to_owned();
        match self {
            Failure::Unreachable(why) => RegistryError::Unreachable { registry, url: url.to_owned(), why },
            Failure::Tls(why) | Failure::NotTls(why) => {
                let loopback = super::settings::is_loopback(&registry);
                RegistryError::Tls { registry, why, loopback }
            }
            Failure::Transfer(why) => RegistryError::Transfer { registry, what: what.to_owned(), why },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, b"not a certificate").unwrap();
        let err = read_pem_certs(&path).unwrap_err().to_string();
        assert!(err.contains("ca.pem") && err.contains("no PEM certificate"), "{err}");
        let err = read_pem_certs(&dir.path().join("missing.pem")).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn refused_connections_are_unreachable() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = Failure::of(ureq::Error::Io(io)).into_error("127.0.0.1:9", "http://127.0.0.1:9/v2/", "a ping");
        assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("cannot reach the registry 127.0.0.1:9"), "{err}");
    }
}
