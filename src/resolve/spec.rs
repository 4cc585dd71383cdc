//! `ContainerSpec`: the desired runtime configuration of one env, with the
//! image config inherited through `from` already applied.
//!
//! Image config (env vars, workdir, user, cmd, entrypoint, labels) is
//! inherited from the `from` env as Docker's `FROM` does, the child's values
//! winning; container settings (ports, limits, volumes, depends_on, restart,
//! health, network) belong to each env alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::key::CacheKey;
use crate::manifest::values::{
    Capability, Network, PortMapping, RestartPolicy, SecurityOpt, Tmpfs, User, UsernsMode, Volume, VolumeSource,
};
use crate::manifest::{Base, Env, Health, Limits, Manifest};

/// What one env's container should look like.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    pub project: String,
    pub env: String,
    /// The cache key of the env's last layer: its image.
    pub image: CacheKey,
    pub hostname: String,
    pub env_vars: BTreeMap<String, String>,
    pub workdir: String,
    pub user: Option<User>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
    pub limits: Limits,
    /// Volumes, with bind sources made absolute against the project directory.
    pub volumes: Vec<Volume>,
    pub depends_on: Vec<String>,
    pub restart: RestartPolicy,
    pub health: Option<Health>,
    pub network: Network,
    /// Security options, profile paths absolute (left out when empty, so
    /// specs written before the key existed keep their hash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<SecurityOpt>,
    /// The content of the seccomp profile `security_opt` names: blake3 of
    /// its JSON written canonically (a reformatted file keeps it, a changed
    /// rule changes it), so that editing the profile recreates the
    /// container. Left out when the env names no profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile_hash: Option<CacheKey>,
    /// The container's user namespace: the env's `userns`, else the
    /// store's default ([`super::Resolution::apply_store_defaults`]).
    /// Left out of the JSON (and so of the hash) when it is `host`, so the
    /// containers of specs from before the key existed stay as they are.
    #[serde(default, skip_serializing_if = "UsernsMode::is_host")]
    pub userns: UsernsMode,
    // The keys below are left out at their defaults for the same reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<Capability>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<Tmpfs>,
    /// berth's init is PID 1 (left out when so).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub init: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl ContainerSpec {
    /// A digest of the whole spec, so a change to any field is seen.
    pub fn config_hash(&self) -> CacheKey {
        let json = serde_json::to_vec(self).expect("a container spec always serialises");
        CacheKey::from_bytes(*blake3::hash(&json).as_bytes())
    }
}

/// Why a seccomp profile could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileHashError {
    #[error("cannot read the seccomp profile {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the seccomp profile {} is not JSON: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
}

/// The spec of `env` in `manifest`, whose image is `image`. Reads the
/// seccomp profile the env names, to hash it.
pub fn container_spec(manifest: &Manifest, env: &Env, image: CacheKey) -> Result<ContainerSpec, ProfileHashError> {
    // Ancestors from the root of the `from` chain down to `env`.
    let mut lineage = vec![env];
    while let Base::Env(parent) = &lineage[lineage.len() - 1].base {
        lineage.push(&manifest.envs[parent]);
    }
    lineage.reverse();
    let inherited = |pick: &dyn Fn(&Env) -> Option<Vec<String>>| lineage.iter().rev().find_map(|e| pick(e));
    let mut env_vars = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for e in &lineage {
        env_vars.extend(e.env.clone());
        labels.extend(e.labels.clone());
    }
    let volumes = env
        .volumes
        .iter()
        .map(|v| match &v.source {
            VolumeSource::Bind(p) => Volume { source: VolumeSource::Bind(absolute(&manifest.dir, p)), ..v.clone() },
            VolumeSource::Named(_) => v.clone(),
        })
        .collect();
    let security_opt: Vec<SecurityOpt> = env
        .security_opt
        .iter()
        .map(|o| match o {
            SecurityOpt::SeccompProfile(p) => SecurityOpt::SeccompProfile(absolute(&manifest.dir, p)),
            other => other.clone(),
        })
        .collect();
    // The last seccomp option is the one that applies.
    let seccomp = security_opt
        .iter()
        .rev()
        .find(|o| matches!(o, SecurityOpt::SeccompProfile(_) | SecurityOpt::SeccompUnconfined));
    let seccomp_profile_hash = match seccomp {
        Some(SecurityOpt::SeccompProfile(p)) => Some(profile_hash(p)?),
        _ => None,
    };
    Ok(ContainerSpec {
        project: manifest.project.clone(),
        env: env.name.clone(),
        image,
        hostname: env.name.clone(),
        env_vars,
        workdir: lineage.iter().rev().find_map(|e| e.workdir.clone()).unwrap_or_else(|| "/".to_owned()),
        user: lineage.iter().rev().find_map(|e| e.user.clone()),
        entrypoint: inherited(&|e| e.entrypoint.clone()),
        cmd: inherited_cmd(&lineage),
        labels,
        ports: env.ports.clone(),
        limits: env.limits.clone(),
        volumes,
        depends_on: env.depends_on.clone(),
        restart: env.restart,
        health: env.health.clone(),
        network: env.network,
        security_opt,
        seccomp_profile_hash,
        userns: env.userns.unwrap_or_default(),
        cap_add: env.cap_add.clone(),
        cap_drop: env.cap_drop.clone(),
        privileged: env.privileged,
        read_only: env.read_only,
        tmpfs: env.tmpfs.clone(),
        init: env.init,
    })
}

/// blake3 of the profile at `path` as canonical JSON: keys sorted, no
/// whitespace.
fn profile_hash(path: &std::path::Path) -> Result<CacheKey, ProfileHashError> {
    let text = std::fs::read(path).map_err(|source| ProfileHashError::Read { path: path.to_owned(), source })?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|source| ProfileHashError::Json { path: path.to_owned(), source })?;
    let canonical = serde_json::to_vec(&value).expect("a JSON value always serialises");
    Ok(CacheKey::from_bytes(*blake3::hash(&canonical).as_bytes()))
}

/// `cmd` as Docker inherits it: the nearest env that sets `cmd` wins, but an
/// env that sets `entrypoint` without `cmd` resets the inherited `cmd`.
fn inherited_cmd(lineage: &[&Env]) -> Option<Vec<String>> {
    for e in lineage.iter().rev() {
        if e.cmd.is_some() {
            return e.cmd.clone();
        }
        if e.entrypoint.is_some() {
            return None;
        }
    }
    None
}

fn absolute(dir: &std::path::Path, p: &std::path::Path) -> PathBuf {
    let joined = dir.join(p);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn image_config_is_inherited_and_container_settings_are_not() {
        let text = r#"
            [env.base]
            image = "scratch"
            env = { A = "1", B = "base" }
            workdir = "/srv"
            cmd = ["serve"]
            ports = ["8080:80"]
            limits = { memory = "64MiB" }
            volumes = ["./data:/data"]
            [env.child]
            from = "base"
            env = { B = "child" }
            user = "1000"
        "#;
        let r = crate::resolve::resolve_text(text);
        let (base, child) = (&r.specs["base"], &r.specs["child"]);
        assert_eq!(child.env_vars["A"], "1");
        assert_eq!(child.env_vars["B"], "child");
        assert_eq!(child.workdir, "/srv");
        assert_eq!(child.cmd.as_deref(), Some(&["serve".to_owned()][..]));
        assert!(child.ports.is_empty() && child.limits.memory.is_none() && child.volumes.is_empty());
        assert_eq!(child.user.as_ref().unwrap().user, "1000");
        assert!(base.user.is_none());
        let crate::manifest::values::VolumeSource::Bind(p) = &base.volumes[0].source else { panic!() };
        assert_eq!(p, Path::new("/p/data"));
        assert_eq!(child.image, base.image, "no steps of its own: the same image");
        assert_ne!(child.config_hash(), base.config_hash());
    }

    #[test]
    fn a_profiles_rules_are_part_of_the_spec_and_its_layout_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let spec = |opts: &str, profile: &str| {
            std::fs::write(dir.path().join("p.json"), profile).unwrap();
            let text = format!("[env.a]\nimage = \"scratch\"\ncmd = [\"x\"]\nsecurity_opt = [{opts}]\n");
            let m = crate::manifest::parse(&text, Path::new("berth.toml"), dir.path()).unwrap();
            crate::resolve::resolve(&m, &Default::default()).unwrap().specs["a"].clone()
        };
        let deny =
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#;
        let reformatted = "{\n  \"syscalls\": [{ \"action\": \"SCMP_ACT_ERRNO\", \"names\": [\"mkdir\"] }],\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n";
        let named = spec("\"seccomp=p.json\"", deny);
        assert!(named.seccomp_profile_hash.is_some());
        assert_eq!(named.config_hash(), spec("\"seccomp=p.json\"", reformatted).config_hash());
        assert_ne!(named.config_hash(), spec("\"seccomp=p.json\"", &deny.replace("mkdir", "rmdir")).config_hash());
        // The last seccomp option applies: no profile, nothing to hash.
        let lifted = spec("\"seccomp=p.json\", \"seccomp=unconfined\"", deny);
        assert_eq!(lifted.seccomp_profile_hash, None);
        let json = serde_json::to_value(spec("\"no-new-privileges\"", deny)).unwrap();
        assert!(json.get("seccomp_profile_hash").is_none(), "left out, so older specs keep their hash: {json}");
    }

    #[test]
    fn an_entrypoint_resets_the_inherited_cmd() {
        let text = r#"
            [env.base]
            image = "scratch"
            cmd = ["serve"]
            [env.tool]
            from = "base"
            entrypoint = ["/bin/tool"]
            [env.both]
            from = "base"
            entrypoint = ["/bin/tool"]
            cmd = ["--help"]
            [env.plain]
            from = "base"
        "#;
        let r = crate::resolve::resolve_text(text);
        assert_eq!(r.specs["tool"].cmd, None);
        assert_eq!(r.specs["both"].cmd.as_deref(), Some(&["--help".to_owned()][..]));
        assert_eq!(r.specs["plain"].cmd.as_deref(), Some(&["serve".to_owned()][..]));
    }
}
