//! The OCI distribution client: pull, push, log in and search, against
//! any registry that speaks the distribution API (Docker Hub, the CNCF
//! `registry`, Harbor, GHCR, …).
//!
//! | file | owns |
//! |---|---|
//! | `settings` | where a registry answers, insecure registries, config files |
//! | `client` | the HTTP client (`ureq` + rustls, system roots + `--ca-cert`), transport errors |
//! | `session` | one registry: HTTPS or allowed plain HTTP, the auth challenge flow, requests |
//! | `challenge`, `auth` | `WWW-Authenticate` parsing; saved credentials (berth's and Docker's) |
//! | `manifest` | media types, fetching manifests with their digest checked, platform choice |
//! | `transfer` | progress events, parallel transfers, verified and resumed downloads |
//! | `pull`, `push`, `search` | the operations |
//!
//! # Trust
//!
//! What a registry sends is checked before it is stored: every manifest
//! and blob against the digest that named it (and the size its descriptor
//! gives), while it streams, into the store's `tmp/`. A pull commits its
//! blobs only when all of them are verified, so a refused pull leaves the
//! store as it was. Credentials go only over TLS, or over plain HTTP to
//! registries the user allowed it for (and loopback).
//!
//! Nothing here prints: operations report [`Event`]s to a callback and
//! return what they did; the CLI renders both.

mod auth;
mod challenge;
mod client;
mod error;
mod manifest;
mod pull;
mod push;
mod search;
mod session;
mod settings;
#[cfg(test)]
mod tests;
mod transfer;

pub use auth::Credentials;
pub use challenge::Challenge;
pub use client::Client;
pub use error::RegistryError;
pub use manifest::Platform;
pub use pull::{PullOptions, Pulled};
pub use push::Pushed;
pub use search::Found;
pub use settings::{AUTH_FILE, SETTINGS_FILE, Settings, config_dir, is_loopback};
pub use transfer::{Event, Progress};

use session::{Body, Session, Target};

impl Client {
    /// Checks `creds` against `registry` and saves them in berth's
    /// `auth.json` (see `auth`). Wrong credentials are
    /// [`RegistryError::Unauthorized`], and nothing is saved.
    pub fn login(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let dir = self.settings.require_config_dir()?.to_owned();
        let session = Session::open_with(self, registry, Vec::new(), Some(creds.clone()))?;
        let url = session.url("/v2/");
        let response = session.send("GET", &url, &[], &Body::Empty, "the login")?;
        if !response.status().is_success() {
            return Err(session.fail(response, "the login", Target::Registry));
        }
        session::drain(response);
        auth::save(&dir, registry, creds)
    }

    /// Forgets berth's saved credentials for `registry`; whether it had any.
    /// Docker's `config.json` is not changed.
    pub fn logout(&self, registry: &str) -> Result<bool, RegistryError> {
        auth::remove(self.settings.require_config_dir()?, registry)
    }
}

/// A registry as a user may type it (`127.0.0.1:5000`, `https://ghcr.io/`,
/// `index.docker.io`) in the form references use; Docker Hub when `None`.
pub fn registry_name(input: Option<&str>) -> Result<String, RegistryError> {
    let Some(input) = input else { return Ok(crate::oci::reference::DEFAULT_REGISTRY.to_owned()) };
    let name = auth::normalise_key(input.trim());
    let probe = format!("{name}/x");
    let parsed: crate::oci::ImageRef = probe.parse()?;
    if !name.contains(['.', ':']) && name != "localhost" {
        return Err(RegistryError::BadRegistry {
            input: input.into(),
            why: "a registry is a host name with a dot or a port, such as registry.example.com or 127.0.0.1:5000"
                .into(),
        });
    }
    Ok(parsed.registry().to_owned())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn registry_names_are_normalised() {
        assert_eq!(registry_name(None).unwrap(), "docker.io");
        assert_eq!(registry_name(Some("https://index.docker.io/v1/")).unwrap(), "docker.io");
        assert_eq!(registry_name(Some("127.0.0.1:5000")).unwrap(), "127.0.0.1:5000");
        assert_eq!(registry_name(Some("http://127.0.0.1:5000/")).unwrap(), "127.0.0.1:5000");
        assert_eq!(registry_name(Some("localhost")).unwrap(), "localhost");
        assert!(registry_name(Some("debian")).is_err());
        assert!(registry_name(Some("bad host:5000")).is_err());
    }
}
