//! What a container is, as written once when it is created:
//! `containers/<id>/container.json`. Its changing state lives beside it in
//! `state.json` (see [`crate::runtime::state`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::id::ContainerId;
use crate::oci::Digest;
use crate::runtime::ports::PortMapping;

/// The file a container's record is kept in.
pub const RECORD_FILE: &str = "container.json";
/// The OCI runtime spec the container runs from.
pub const SPEC_FILE: &str = "config.json";
/// The container's log.
pub const LOG_FILE: &str = "container.log";

/// A container as created: its identity, image and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: ContainerId,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's manifest digest.
    pub image_digest: Digest,
    /// RFC 3339.
    pub created: String,
    /// The full command line (entrypoint + cmd), for listings.
    pub command: Vec<String>,
    /// Unpacked image layers, top first: the overlay's lower dirs.
    pub lowers: Vec<PathBuf>,
    /// Published ports (kept as `ADDR:HOST:CONTAINER/PROTO`, as `-p` takes them).
    pub ports: Vec<PortMapping>,
    /// Restart policy as written (`no`, `on-failure[:N]`, `always`, `unless-stopped`).
    pub restart: String,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    pub tty: bool,
    pub interactive: bool,
    /// The cgroup path relative to each hierarchy root.
    pub cgroup: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The health check the shim runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::runtime::health::HealthCheck>,
    /// Its limits are not applied: asked for with `--limits=ignore` where
    /// no cgroup is available (rootless). The spec still holds them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub limits_ignored: bool,
    /// `--userns=auto`: the first host id of the container's own id range
    /// (container ids 0..65536 are host ids `base..base+65536`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_base: Option<u32>,
    /// `--security-opt` (seccomp profile, no_new_privs), capabilities,
    /// `--privileged`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub security: crate::runtime::security::SecurityOptions,
    /// `--read-only`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// `--tmpfs` as asked (the read-only root's own are not listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<crate::runtime::tmpfs::Tmpfs>,
    /// `--no-init`: the command is PID 1.
    #[serde(default, skip_serializing_if = "is_default")]
    pub no_init: bool,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[cfg(test)]
impl Record {
    /// A plain record named `name` with a fresh id, for tests to adjust.
    pub fn example(name: &str) -> Record {
        Record {
            id: ContainerId::random().unwrap(),
            name: name.to_owned(),
            image: "busybox".into(),
            image_digest: Digest::sha256(b"x"),
            created: "2026-11-28T13:00:00Z".into(),
            command: vec!["true".into()],
            lowers: Vec::new(),
            ports: Vec::new(),
            restart: "no".into(),
            auto_remove: false,
            tty: false,
            interactive: false,
            cgroup: "berth/x".into(),
            labels: Default::default(),
            health: None,
            limits_ignored: false,
            userns_base: None,
            security: Default::default(),
            read_only: false,
            tmpfs: Vec::new(),
            no_init: false,
        }
    }
}

/// Paths inside one container's directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path) -> Paths {
        Paths { dir: dir.to_path_buf() }
    }

    pub fn record(&self) -> PathBuf {
        self.dir.join(RECORD_FILE)
    }

    pub fn spec(&self) -> PathBuf {
        self.dir.join(SPEC_FILE)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// The overlay's upper dir: everything the container wrote.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// Where the root filesystem is mounted, inside the container's own
    /// mount namespace only.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `hosts`, `hostname` and `resolv.conf` bind-mounted into `/etc`.
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }
}
