//! The checked manifest: every reference resolved, every value typed.
//!
//! A [`Manifest`] only exists once the checker has accepted the whole file,
//! so code downstream never re-validates it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::values::{
    ByteSize, Capability, Duration, Network, PortMapping, RestartPolicy, SecurityOpt, Tmpfs, User, UsernsMode, Volume,
};
use crate::oci::ImageRef;

/// A checked `berth.toml`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The manifest file, as the user named it.
    pub file: PathBuf,
    /// The project directory: the manifest's directory, absolute.
    pub dir: PathBuf,
    pub project: String,
    /// Envs by name.
    pub envs: BTreeMap<String, Env>,
}

impl Manifest {
    /// Env names in an order where every env comes after its `from` parent
    /// (ties broken by name), so builds can go front to back.
    pub fn build_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = Vec::new();
        fn visit<'a>(m: &'a Manifest, name: &'a str, order: &mut Vec<&'a str>) {
            if order.contains(&name) {
                return;
            }
            if let Base::Env(parent) = &m.envs[name].base {
                visit(m, parent, order);
            }
            order.push(name);
        }
        for name in self.envs.keys() {
            visit(self, name, &mut order);
        }
        order
    }
}

/// One `[env.NAME]`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Env {
    pub name: String,
    pub base: Base,
    pub packages: Vec<String>,
    pub copy: Vec<Copy>,
    pub run: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<User>,
    pub ports: Vec<PortMapping>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub limits: Limits,
    pub volumes: Vec<Volume>,
    pub depends_on: Vec<String>,
    pub restart: RestartPolicy,
    pub health: Option<Health>,
    pub network: Network,
    pub security_opt: Vec<SecurityOpt>,
    pub cap_add: Vec<Capability>,
    pub cap_drop: Vec<Capability>,
    /// Every capability, no seccomp filter, the host's devices.
    pub privileged: bool,
    /// A read-only root filesystem.
    pub read_only: bool,
    pub tmpfs: Vec<Tmpfs>,
    /// berth's init is PID 1 (the default); `false`: the command is.
    pub init: bool,
    /// `userns`; `None`: the store's default.
    pub userns: Option<UsernsMode>,
    pub labels: BTreeMap<String, String>,
}

/// Where an env's filesystem starts.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "source")]
pub enum Base {
    /// Another env of the same manifest (`from`): its layers are shared.
    Env(String),
    /// `image = "…"`.
    Image(ImageSource),
    /// `bootstrap = { … }`.
    Bootstrap(Bootstrap),
    /// `build = { context, dockerfile, target, args }`: a Dockerfile's
    /// target stage.
    Build(BuildSource),
}

/// `build`: a Dockerfile build whose target stage is the env's base.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct BuildSource {
    /// The build context as written, relative to the project directory
    /// (or absolute).
    pub context: PathBuf,
    /// The Dockerfile as written, relative to the context (Compose's rule);
    /// `Dockerfile` when not given.
    pub dockerfile: PathBuf,
    /// The stage to build; the last when `None`.
    pub target: Option<String>,
    /// Build args (`ARG`s the Dockerfile declares take these values).
    pub args: BTreeMap<String, String>,
}

impl BuildSource {
    /// The context directory, absolute, for a project in `dir`.
    pub fn context_dir(&self, dir: &std::path::Path) -> PathBuf {
        dir.join(&self.context)
    }

    /// The Dockerfile, absolute, for a project in `dir`.
    pub fn dockerfile_path(&self, dir: &std::path::Path) -> PathBuf {
        self.context_dir(dir).join(&self.dockerfile)
    }
}

/// The forms `image` can take.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum ImageSource {
    /// `scratch`: an empty filesystem.
    Scratch,
    /// A registry reference such as `debian:bookworm`.
    Registry { reference: String },
    /// `oci:DIR[:TAG]`: an OCI image layout directory.
    OciDir { path: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE[:TAG]`: a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker-archive:FILE`: what `docker save` writes.
    DockerArchive { path: PathBuf },
    /// `rootfs:FILE.tar`: a flat filesystem tarball.
    Rootfs { path: PathBuf },
}

impl ImageSource {
    /// The parsed registry reference, for `Registry` sources.
    pub fn registry_ref(&self) -> Option<ImageRef> {
        match self {
            ImageSource::Registry { reference } => reference.parse().ok(),
            _ => None,
        }
    }
}

/// A Debian root built from the archive.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Bootstrap {
    pub suite: String,
    pub mirror: String,
    pub variant: String,
    pub components: Vec<String>,
}

/// One `copy` entry. `src` is relative to the project directory and inside it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Copy {
    pub src: PathBuf,
    pub dest: String,
    pub mode: Option<u32>,
    pub owner: Option<User>,
}

/// Resource limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Limits {
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
}

/// A health check run inside the container.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// Debian's archive, used when `bootstrap` names no mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
