//! The manifest as written: serde types that mirror `berth.toml` one to one
//! and keep the span of every value, so the checker can point at it.
//!
//! Unknown keys are refused here (`deny_unknown_fields`); every other rule
//! lives in the checker. Values that may take more than one shape (a command
//! as a string or a list, an env value as a string or a number) stay
//! `toml::Value` so the checker can say precisely what is wrong with them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

/// The whole `berth.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub project: Option<S<String>>,
    #[serde(default)]
    pub env: BTreeMap<S<String>, S<RawEnv>>,
}

/// One `[env.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    pub image: Option<S<String>>,
    pub bootstrap: Option<S<RawBootstrap>>,
    pub build: Option<S<RawBuild>>,
    pub from: Option<S<String>>,
    #[serde(default)]
    pub packages: Vec<S<String>>,
    #[serde(default)]
    pub copy: Vec<S<RawCopy>>,
    #[serde(default)]
    pub run: Vec<S<String>>,
    #[serde(default)]
    pub env: BTreeMap<S<String>, S<toml::Value>>,
    pub workdir: Option<S<String>>,
    pub user: Option<S<String>>,
    #[serde(default)]
    pub ports: Vec<S<String>>,
    pub cmd: Option<S<toml::Value>>,
    pub entrypoint: Option<S<toml::Value>>,
    pub limits: Option<S<RawLimits>>,
    #[serde(default)]
    pub volumes: Vec<S<String>>,
    #[serde(default)]
    pub depends_on: Vec<S<String>>,
    pub restart: Option<S<String>>,
    pub health: Option<S<RawHealth>>,
    pub network: Option<S<String>>,
    pub userns: Option<S<String>>,
    #[serde(default)]
    pub security_opt: Vec<S<String>>,
    #[serde(default)]
    pub cap_add: Vec<S<String>>,
    #[serde(default)]
    pub cap_drop: Vec<S<String>>,
    pub privileged: Option<S<bool>>,
    pub read_only: Option<S<bool>>,
    #[serde(default)]
    pub tmpfs: Vec<S<String>>,
    pub init: Option<S<bool>>,
    #[serde(default)]
    pub labels: BTreeMap<S<String>, S<String>>,
}

/// `bootstrap = { suite, mirror, variant, components }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBootstrap {
    pub suite: S<String>,
    pub mirror: Option<S<String>>,
    pub variant: Option<S<String>>,
    #[serde(default)]
    pub components: Vec<S<String>>,
}

/// `build = "DIR"` or `build = { context, dockerfile, target, args }`.
#[derive(Debug)]
pub enum RawBuild {
    /// The context directory alone (Compose's short form).
    Context(String),
    Table(RawBuildTable),
}

/// The table form of `build`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuildTable {
    pub context: S<String>,
    pub dockerfile: Option<S<String>>,
    pub target: Option<S<String>>,
    #[serde(default)]
    pub args: BTreeMap<S<String>, S<toml::Value>>,
}

impl<'de> Deserialize<'de> for RawBuild {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawBuild;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a context directory (build = \"svc\") or a table (build = { context = \"svc\", dockerfile = \"Dockerfile\", target = \"prod\", args = { V = \"1\" } })",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawBuild, E> {
                Ok(RawBuild::Context(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawBuild, A::Error> {
                RawBuildTable::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawBuild::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One entry of `copy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCopy {
    pub src: S<String>,
    pub dest: S<String>,
    pub mode: Option<S<toml::Value>>,
    pub owner: Option<S<String>>,
}

/// `limits = { memory, cpus, pids }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<S<toml::Value>>,
    pub cpus: Option<S<toml::Value>>,
    pub pids: Option<S<i64>>,
}

/// `health = { cmd, interval, timeout, retries, start_period }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub cmd: S<toml::Value>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub retries: Option<S<i64>>,
    pub start_period: Option<S<String>>,
}
