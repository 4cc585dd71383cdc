//! The container half of a plan: each env's desired container (its
//! `ContainerSpec`, whose hash covers the image's cache key and every
//! setting) against the container `berth up` made for it, with the reason
//! for every action and, for a recreation, which fields changed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::resolve::ContainerSpec;

/// Why a container whose shim died is recreated.
pub const UNSUPERVISED: &str = "its shim is gone and it runs unsupervised";

/// The reason given when only the image's bytes changed.
pub fn image_changed(old: &crate::oci::Digest, new: &crate::oci::Digest) -> String {
    format!("image: {} -> {}", &old.to_string()[..19], &new.to_string()[..19])
}

/// What `berth up` would do with one env's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum ContainerAction {
    /// No container yet.
    Create,
    /// The container differs: these fields, old → new.
    Recreate { changes: Vec<String> },
    /// Up to date but not running.
    Start { status: String },
    /// Up to date and running.
    Unchanged,
    /// The env is gone from the manifest.
    Remove,
    /// The env has no command: its image is built, no container runs.
    ImageOnly,
}

/// One env's container plan.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerPlan {
    pub env: String,
    #[serde(flatten)]
    pub action: ContainerAction,
    /// The container's status now, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Files the container changed in its own filesystem (`C /etc/x`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// Limits the env asks for that no cgroup here can apply, and why
    /// (berth without root): `up` refuses them unless `--limits=ignore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits_unavailable: Option<String>,
    /// The env's security options that differ from Docker's defaults
    /// (`seccomp=unconfined`, `cap-add=NET_ADMIN`, …), shown so that none
    /// goes unnoticed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<String>,
    /// `privileged = true`: the container gets the host (every capability,
    /// no seccomp filter, the host's devices); `plan` marks it loudly.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

/// The spec's settings that weaken or change Docker's default confinement,
/// as `--flag=value` words.
fn security_notes(spec: &ContainerSpec) -> Vec<String> {
    let mut out: Vec<String> = spec.security_opt.iter().map(ToString::to_string).collect();
    out.extend(spec.cap_add.iter().map(|c| format!("cap-add={c}")));
    out.extend(spec.cap_drop.iter().map(|c| format!("cap-drop={c}")));
    out
}

/// A container `berth up` made, as the store shows it now.
pub struct Existing {
    pub env: String,
    pub config_hash: String,
    pub running: bool,
    pub status: String,
    /// The spec it was made from, when recorded.
    pub spec: Option<serde_json::Value>,
    /// Its filesystem drift, as `C /path` lines.
    pub drift: Vec<String>,
    /// The manifest digest of the image it runs.
    pub image_digest: Option<crate::oci::Digest>,
    /// Its shim is gone but its process runs: nobody keeps its logs or
    /// restart policy, so `up` recreates it.
    pub unsupervised: bool,
}

impl From<&super::actual::EnvState> for Existing {
    fn from(s: &super::actual::EnvState) -> Existing {
        Existing {
            env: s.env.clone(),
            config_hash: s.config_hash.clone(),
            running: s.supervised(),
            status: match &s.detail {
                Some(d) => format!("{}: {d}", s.status.as_str()),
                None => s.status.as_str().to_owned(),
            },
            spec: s.spec.clone(),
            drift: s.drift.iter().map(|c| format!("{} {}", c.kind.letter(), c.path.display())).collect(),
            unsupervised: s.unsupervised(),
            image_digest: Some(s.image_digest.clone()),
        }
    }
}

/// The container actions for `specs` given `existing`; `runs(env)` says
/// whether an env has a command (else it is image-only), `built(env)` the
/// manifest digest of its image in the store, if built. With
/// `reset_drift`, a container whose files drifted is recreated.
pub fn container_actions(
    specs: &BTreeMap<String, ContainerSpec>,
    existing: &[Existing],
    runs: &dyn Fn(&ContainerSpec) -> bool,
    built: &dyn Fn(&str) -> Option<crate::oci::Digest>,
    reset_drift: bool,
) -> Vec<ContainerPlan> {
    let mut out = Vec::new();
    for (env, spec) in specs {
        let current = existing.iter().find(|e| &e.env == env);
        let action = match current {
            _ if !runs(spec) => ContainerAction::ImageOnly,
            None => ContainerAction::Create,
            Some(e) if e.unsupervised => ContainerAction::Recreate { changes: vec![UNSUPERVISED.to_owned()] },
            Some(e)
                if e.config_hash == spec.config_hash().to_string()
                    && let (Some(old), Some(new)) = (&e.image_digest, built(env))
                    && *old != new =>
            {
                ContainerAction::Recreate { changes: vec![image_changed(old, &new)] }
            }
            Some(e) if reset_drift && !e.drift.is_empty() && e.config_hash == spec.config_hash().to_string() => {
                ContainerAction::Recreate {
                    changes: vec![format!("filesystem drift: {} paths changed", e.drift.len())],
                }
            }
            Some(e) if e.config_hash == spec.config_hash().to_string() => {
                if e.running {
                    ContainerAction::Unchanged
                } else {
                    ContainerAction::Start { status: e.status.clone() }
                }
            }
            Some(e) => ContainerAction::Recreate { changes: changes(e.spec.as_ref(), spec) },
        };
        let drift = current.map(|e| e.drift.clone()).unwrap_or_default();
        let status = current.map(|e| e.status.clone());
        out.push(ContainerPlan {
            env: env.clone(),
            action,
            status,
            drift,
            limits_unavailable: None,
            security: security_notes(spec),
            privileged: spec.privileged,
        });
    }
    for e in existing.iter().filter(|e| !specs.contains_key(&e.env)) {
        let status = Some(e.status.clone());
        out.push(ContainerPlan {
            env: e.env.clone(),
            action: ContainerAction::Remove,
            status,
            drift: Vec::new(),
            limits_unavailable: None,
            security: Vec::new(),
            privileged: false,
        });
    }
    out
}

/// `field: old -> new` for every top-level field that differs.
pub fn changes(old: Option<&serde_json::Value>, new: &ContainerSpec) -> Vec<String> {
    let new = serde_json::to_value(new).expect("a container spec always serialises");
    let Some(old) = old else { return vec!["the container predates recorded specs".to_owned()] };
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else { return Vec::new() };
    let mut out = Vec::new();
    for (k, v) in new {
        let before = old.get(k).unwrap_or(&serde_json::Value::Null);
        if before != v {
            out.push(format!("{k}: {} -> {}", short(before), short(v)));
        }
    }
    // Keys left out when at their default (`userns` for host, an empty
    // `security_opt`).
    for (k, v) in old.iter().filter(|(k, _)| !new.contains_key(*k)) {
        out.push(format!("{k}: {} -> (default)", short(v)));
    }
    out
}

fn short(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> BTreeMap<String, ContainerSpec> {
        crate::resolve::resolve_text(text).specs
    }

    #[test]
    fn actions_and_their_reasons() {
        let before =
            specs("[env.a]\nimage = \"scratch\"\ncmd = [\"x\"]\n[env.b]\nimage = \"scratch\"\ncmd = [\"y\"]\n");
        let after = specs(
            "[env.a]\nimage = \"scratch\"\ncmd = [\"x\"]\nenv = { MODE = \"test\" }\n[env.c]\nimage = \"scratch\"\ncmd = [\"z\"]\n[env.base]\nimage = \"scratch\"\n",
        );
        let existing: Vec<Existing> = before
            .iter()
            .map(|(env, spec)| Existing {
                env: env.clone(),
                config_hash: spec.config_hash().to_string(),
                running: true,
                status: "running".into(),
                spec: Some(serde_json::to_value(spec).unwrap()),
                drift: if env == "b" { vec!["A /etc/x".into()] } else { Vec::new() },
                unsupervised: false,
                image_digest: None,
            })
            .collect();
        let plan = container_actions(&after, &existing, &|s| s.cmd.is_some(), &|_| None, false);
        let by: BTreeMap<&str, &ContainerAction> = plan.iter().map(|p| (p.env.as_str(), &p.action)).collect();
        let ContainerAction::Recreate { changes } = by["a"] else { panic!("{plan:?}") };
        assert_eq!(changes, &["env_vars: {} -> {\"MODE\":\"test\"}"]);
        assert_eq!(by["c"], &ContainerAction::Create);
        assert_eq!(by["b"], &ContainerAction::Remove);
        assert_eq!(by["base"], &ContainerAction::ImageOnly);
        let same = container_actions(&before, &existing, &|_| true, &|_| None, false);
        assert!(same.iter().all(|p| p.action == ContainerAction::Unchanged));
        assert_eq!(same.iter().find(|p| p.env == "b").unwrap().drift, ["A /etc/x"]);
        let reset = container_actions(&before, &existing, &|_| true, &|_| None, true);
        let by: BTreeMap<&str, &ContainerAction> = reset.iter().map(|p| (p.env.as_str(), &p.action)).collect();
        assert_eq!(by["a"], &ContainerAction::Unchanged);
        assert_eq!(by["b"], &ContainerAction::Recreate { changes: vec!["filesystem drift: 1 paths changed".into()] });
    }
}
