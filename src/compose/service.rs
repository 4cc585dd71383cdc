//! One compose service → the items of one env: each key Compose defines
//! either becomes its berth.toml key or a note saying why it cannot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use yaml_serde::Value as Y;

use super::interp::parse_env_file;
use super::toml_out::{Item, Value};
use super::values::{Mount, port_specs, scalar, strings, volume};
use crate::manifest::values::{ByteSize, Capability, RestartPolicy, SecurityOpt, Tmpfs, User};

/// What a service needs to know about the rest of the file.
pub struct Context<'a> {
    /// The directory relative paths in the compose file start from.
    pub compose_dir: &'a Path,
    /// The directory the berth.toml is written to.
    pub out_dir: &'a Path,
    /// Env name of each service (where a service's name is not an env name).
    pub env_names: &'a BTreeMap<String, String>,
    /// Which services have a health check, for depends_on notes.
    pub healthy: &'a BTreeMap<String, bool>,
    pub project: &'a str,
}

/// A wrongly shaped value, with where it is (`services.web.ports[1]`).
#[derive(Debug)]
pub struct Shape {
    pub at: String,
    pub what: String,
}

pub(super) fn shape(at: impl Into<String>, what: impl Into<String>) -> Shape {
    Shape { at: at.into(), what: what.into() }
}

/// Keys berth has no counterpart for, with why; a service that sets one gets the note.
const NOT_CARRIED: &[(&str, &str)] = &[
    ("container_name", "berth names containers PROJECT-ENV"),
    ("hostname", "an env's host name is its env name"),
    (
        "networks",
        "the envs of a project share one network namespace: they reach each other on localhost and by env name",
    ),
    ("expose", "the envs of a project share one network namespace: every port is reachable from the others"),
    ("extra_hosts", "berth writes /etc/hosts itself (env names and localhost)"),
    ("dns", "envs use the host's resolvers"),
    ("dns_search", "envs use the host's resolvers"),
    ("stop_signal", "berth stops with SIGTERM, then SIGKILL"),
    ("stop_grace_period", "berth waits 10 s before SIGKILL"),
    ("tty", "berth up runs envs without a terminal"),
    ("stdin_open", "berth up runs envs without stdin"),
    ("logging", "berth keeps each container's log in its store (berth logs)"),
    ("profiles", "every env of a berth.toml is part of the project"),
    ("secrets", "no secrets store: use a read-only bind mount in volumes"),
    ("configs", "no configs store: use a read-only bind mount in volumes"),
    ("ulimits", "berth keeps the caller's rlimits"),
    ("sysctls", "not supported"),
    ("devices", "not supported (privileged = true gives every device)"),
    ("ipc", "not supported"),
    ("pid", "not supported"),
    ("platform", "berth builds and runs the host's platform"),
    ("pull_policy", "berth pulls a registry image when its store lacks it"),
    ("mem_reservation", "berth sets limits only"),
    ("memswap_limit", "berth sets limits only"),
    ("cpu_shares", "use limits.cpus"),
    ("cpuset", "not supported"),
    ("scale", "one container per env"),
    ("links", "envs reach each other by env name"),
    ("external_links", "not supported"),
    ("domainname", "not supported"),
    ("mac_address", "not supported"),
    ("group_add", "not supported"),
    ("oom_score_adj", "not supported"),
    ("shm_size", "not supported"),
    ("userns_mode", "use userns in berth.toml"),
    ("annotations", "not supported"),
    ("attach", "not supported"),
    ("cgroup_parent", "berth places containers in its own cgroups"),
    ("develop", "use berth up --watch"),
    ("runtime", "berth runs containers itself"),
];

/// The env of service `name`.
pub fn convert(name: &str, svc: &Y, cx: &Context<'_>) -> Result<Vec<Item>, Shape> {
    let at = |k: &str| format!("services.{name}.{k}");
    let Y::Mapping(map) = svc else { return Err(shape(format!("services.{name}"), "must be a mapping of keys")) };
    let mut items = Vec::new();
    let mut notes = Vec::new();
    let get = |k: &str| map.get(k);
    let env_name = &cx.env_names[name];
    if env_name != name {
        notes.push(format!("service {name:?} is env {env_name:?}: env names are lower-case letters, digits and '-'"));
    }

    match (get("image"), get("build")) {
        (image, Some(build)) => items.push(super::build::convert(name, build, image, cx, &mut notes)?),
        (Some(image), None) => {
            items.push(Item::Key(
                "image",
                Value::Str(scalar(image).ok_or_else(|| shape(at("image"), "must be a string"))?),
            ));
        }
        (None, None) => {
            return Err(shape(format!("services.{name}"), "has neither image nor build; Compose needs one"));
        }
    }

    for (key, toml_key) in [("entrypoint", "entrypoint"), ("command", "cmd")] {
        if let Some(v) = get(key) {
            match v {
                Y::String(s) => match shlex::split(s) {
                    Some(words) => items.push(Item::Key(toml_key, Value::strings(words))),
                    None => return Err(shape(at(key), format!("{s:?} has an unclosed quote"))),
                },
                Y::Null => {}
                other => items.push(Item::Key(toml_key, Value::strings(strings(other, &at(key))?))),
            }
        }
    }

    let mut env = BTreeMap::new();
    if let Some(files) = get("env_file") {
        for (i, f) in env_files(files, &at("env_file"))?.into_iter().enumerate() {
            let path = cx.compose_dir.join(&f.0);
            match std::fs::read_to_string(&path) {
                Ok(text) => env.extend(parse_env_file(&text)),
                Err(_) if !f.1 => notes.push(format!("env_file: {} is missing (required: false)", f.0)),
                Err(e) => {
                    return Err(shape(
                        format!("{}[{i}]", at("env_file")),
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
            }
        }
    }
    if let Some(e) = get("environment") {
        for (k, v) in key_values(e, &at("environment"))? {
            match v {
                Some(v) => {
                    env.insert(k, v);
                }
                None => notes.push(format!(
                    "environment: {k} is passed from the shell by Compose; berth.toml has no such thing: give it a value in env"
                )),
            }
        }
    }
    if !env.is_empty() {
        items.push(Item::Key("env", Value::Table(env.into_iter().map(|(k, v)| (k, Value::Str(v))).collect())));
    }
    if let Some(w) = get("working_dir") {
        items.push(Item::Key(
            "workdir",
            Value::Str(scalar(w).ok_or_else(|| shape(at("working_dir"), "must be a string"))?),
        ));
    }
    if let Some(u) = get("user") {
        let u = scalar(u).ok_or_else(|| shape(at("user"), "must be a string"))?;
        match User::from_str(&u) {
            Ok(_) => items.push(Item::Key("user", Value::Str(u))),
            Err(e) => notes.push(format!("user: {e}")),
        }
    }

    if let Some(p) = get("ports") {
        let (ports, port_notes) = port_specs(p, &at("ports"))?;
        notes.extend(port_notes);
        if !ports.is_empty() {
            items.push(Item::Key("ports", Value::strings(ports)));
        }
    }
    let mut volumes = Vec::new();
    let mut tmpfs = Vec::new();
    if let Some(Y::Sequence(vs)) = get("volumes") {
        for (i, v) in vs.iter().enumerate() {
            match volume(v, &format!("{}[{i}]", at("volumes")), &|p| rebase(cx, p))? {
                Ok(Mount::Volume(s)) => volumes.push(s),
                Ok(Mount::Tmpfs(t)) => tmpfs.push(t),
                Err(note) => notes.push(note),
            }
        }
    }
    if !volumes.is_empty() {
        items.push(Item::Key("volumes", Value::strings(volumes)));
    }

    if let Some(d) = get("depends_on") {
        let mut deps = Vec::new();
        for (dep, condition) in depends_on(d, &at("depends_on"))? {
            let Some(env) = cx.env_names.get(&dep) else {
                return Err(shape(at("depends_on"), format!("names {dep:?}, which is not a service of this file")));
            };
            let healthy = cx.healthy.get(&dep).copied().unwrap_or(false);
            match condition.as_str() {
                "service_started" if healthy => notes.push(format!(
                    "depends_on: {dep} (service_started): berth up waits until {env} is healthy, since it has a health check"
                )),
                "service_healthy" if !healthy => {
                    notes.push(format!("depends_on: {dep} (service_healthy) has no health check; berth starts it first"))
                }
                "service_completed_successfully" => notes.push(format!(
                    "depends_on: {dep} (service_completed_successfully): berth up starts {env} first but does not wait for it to end"
                )),
                _ => {}
            }
            deps.push(env.clone());
        }
        items.push(Item::Key("depends_on", Value::strings(deps)));
    }
    if let Some(r) = get("restart") {
        let r = scalar(r).ok_or_else(|| shape(at("restart"), "must be a string"))?;
        match RestartPolicy::from_str(&r) {
            Ok(_) => items.push(Item::Key("restart", Value::Str(r))),
            Err(e) => notes.push(format!("restart: {e}")),
        }
    }
    if let Some(h) = get("healthcheck") {
        let (health, health_notes) = super::values::health(h, &at("healthcheck"))?;
        notes.extend(health_notes);
        if let Some(h) = health {
            items.push(Item::Key("health", h));
        }
    }
    let limits = limits(map, name, &mut notes)?;
    if !limits.is_empty() {
        items.push(Item::Key("limits", Value::Table(limits)));
    }
    if let Some(l) = get("labels") {
        let labels: Vec<(String, Value)> =
            key_values(l, &at("labels"))?.into_iter().map(|(k, v)| (k, Value::Str(v.unwrap_or_default()))).collect();
        if !labels.is_empty() {
            items.push(Item::Key("labels", Value::Table(labels)));
        }
    }
    if let Some(n) = get("network_mode") {
        match scalar(n).as_deref() {
            Some(m @ ("host" | "none")) => items.push(Item::Key("network", Value::Str(m.to_owned()))),
            Some(other) => notes.push(format!("network_mode: {other:?} is not supported (host and none are)")),
            None => return Err(shape(at("network_mode"), "must be a string")),
        }
    }
    for key in ["cap_add", "cap_drop"] {
        if let Some(c) = get(key) {
            let (ok, bad): (Vec<String>, Vec<String>) =
                strings(c, &at(key))?.into_iter().partition(|c| Capability::from_str(c).is_ok());
            if !bad.is_empty() {
                notes.push(format!("{key}: {} not capabilities berth knows", bad.join(", ")));
            }
            if !ok.is_empty() {
                items.push(Item::Key(key, Value::strings(ok)));
            }
        }
    }
    if let Some(s) = get("security_opt") {
        let mut ok = Vec::new();
        for opt in strings(s, &at("security_opt"))? {
            match SecurityOpt::from_str(&opt) {
                Ok(_) => ok.push(opt),
                Err(e) => notes.push(format!("security_opt: {e}")),
            }
        }
        if !ok.is_empty() {
            items.push(Item::Key("security_opt", Value::strings(ok)));
        }
    }
    for key in ["privileged", "read_only", "init"] {
        if let Some(b) = get(key) {
            let Y::Bool(b) = b else { return Err(shape(at(key), "must be true or false")) };
            items.push(Item::Key(key, Value::Bool(*b)));
        }
    }
    if let Some(t) = get("tmpfs") {
        let list = match t {
            Y::String(s) => vec![s.clone()],
            other => strings(other, &at("tmpfs"))?,
        };
        for spec in list {
            match Tmpfs::from_str(&spec) {
                Ok(_) => tmpfs.push(spec),
                Err(e) => notes.push(format!("tmpfs: {e}")),
            }
        }
    }
    if !tmpfs.is_empty() {
        items.push(Item::Key("tmpfs", Value::strings(tmpfs)));
    }

    for (key, why) in NOT_CARRIED {
        if map.contains_key(*key) {
            notes.push(format!("{key}: not carried over: {why}"));
        }
    }
    let known = |k: &str| KNOWN.contains(&k) || NOT_CARRIED.iter().any(|(n, _)| *n == k) || k.starts_with("x-");
    for k in map.keys().filter_map(|k| k.as_str()) {
        if !known(k) {
            notes.push(format!("{k}: not carried over: berth does not know this Compose key"));
        }
    }
    items.extend(notes.into_iter().map(Item::Note));
    Ok(items)
}

/// The keys [`convert`] carries over (or explains itself).
const KNOWN: &[&str] = &[
    "image",
    "build",
    "entrypoint",
    "command",
    "env_file",
    "environment",
    "working_dir",
    "user",
    "ports",
    "volumes",
    "depends_on",
    "restart",
    "healthcheck",
    "mem_limit",
    "cpus",
    "pids_limit",
    "deploy",
    "labels",
    "network_mode",
    "cap_add",
    "cap_drop",
    "security_opt",
    "privileged",
    "read_only",
    "init",
    "tmpfs",
];

/// A relative path of the compose file as the berth.toml in `out_dir` must write it.
pub(super) fn rebase(cx: &Context<'_>, p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() {
        return p.to_owned();
    }
    if let Some(home) = p.strip_prefix("~/") {
        return std::env::var("HOME").map(|h| format!("{h}/{home}")).unwrap_or_else(|_| p.to_owned());
    }
    if cx.compose_dir == cx.out_dir {
        return if p.starts_with('.') { p.to_owned() } else { format!("./{p}") };
    }
    let joined: PathBuf = cx.compose_dir.join(path);
    std::path::absolute(&joined).unwrap_or(joined).display().to_string()
}

/// `env_file`: paths, or `{path, required}` mappings.
fn env_files(v: &Y, at: &str) -> Result<Vec<(String, bool)>, Shape> {
    let one = |v: &Y| match v {
        Y::String(s) => Ok((s.clone(), true)),
        Y::Mapping(m) => {
            let path = m.get("path").and_then(scalar).ok_or_else(|| shape(at, "an entry needs a path"))?;
            Ok((path, !matches!(m.get("required"), Some(Y::Bool(false)))))
        }
        _ => Err(shape(at, "must be a path or a list of paths")),
    };
    match v {
        Y::Sequence(s) => s.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// `environment` and `labels`: a mapping, or a list of `K=V` (or bare `K`).
pub(super) fn key_values(v: &Y, at: &str) -> Result<Vec<(String, Option<String>)>, Shape> {
    match v {
        Y::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let k = scalar(k).ok_or_else(|| shape(at, "keys must be strings"))?;
                Ok((
                    k,
                    if v.is_null() {
                        None
                    } else {
                        Some(scalar(v).ok_or_else(|| shape(at, "values must be scalars"))?)
                    },
                ))
            })
            .collect(),
        Y::Sequence(s) => s
            .iter()
            .map(|e| {
                let e = scalar(e).ok_or_else(|| shape(at, "entries must be KEY=VALUE strings"))?;
                Ok(match e.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (e, None),
                })
            })
            .collect(),
        _ => Err(shape(at, "must be a mapping or a list of KEY=VALUE")),
    }
}

/// `depends_on`: a list of services, or a mapping of service → `{condition}`.
fn depends_on(v: &Y, at: &str) -> Result<Vec<(String, String)>, Shape> {
    match v {
        Y::Sequence(_) => Ok(strings(v, at)?.into_iter().map(|s| (s, "service_started".to_owned())).collect()),
        Y::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let k = scalar(k).ok_or_else(|| shape(at, "keys must be service names"))?;
                let c = v.get("condition").and_then(scalar).unwrap_or_else(|| "service_started".to_owned());
                Ok((k, c))
            })
            .collect(),
        _ => Err(shape(at, "must be a list of services or a mapping")),
    }
}

/// `mem_limit`, `cpus`, `pids_limit` and `deploy.resources.limits` (which wins).
fn limits(map: &yaml_serde::Mapping, name: &str, notes: &mut Vec<String>) -> Result<Vec<(String, Value)>, Shape> {
    let at = |k: &str| format!("services.{name}.{k}");
    let deploy = map.get("deploy").and_then(|d| d.get("resources")).and_then(|r| r.get("limits"));
    let pick = |own: &str, in_deploy: &str| deploy.and_then(|d| d.get(in_deploy)).or_else(|| map.get(own));
    let mut out = Vec::new();
    if let Some(m) = pick("mem_limit", "memory") {
        let text = scalar(m).ok_or_else(|| shape(at("mem_limit"), "must be a size"))?;
        match ByteSize::from_str(&text) {
            Ok(ByteSize(b)) if b >= 1 << 20 => out.push(("memory".to_owned(), Value::Str(text))),
            Ok(_) => notes.push(format!("mem_limit: {text} is below berth's least, 1 MiB")),
            Err(e) => notes.push(format!("mem_limit: {e}")),
        }
    }
    if let Some(c) = pick("cpus", "cpus") {
        match scalar(c).and_then(|c| c.parse::<f64>().ok()) {
            Some(c) if c >= 0.01 => out.push(("cpus".to_owned(), Value::Float(c))),
            Some(0.0) => {}
            _ => notes.push("cpus: expected a number of CPUs of at least 0.01".to_owned()),
        }
    }
    if let Some(p) = pick("pids_limit", "pids") {
        match scalar(p).and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if p >= 2 => out.push(("pids".to_owned(), Value::Int(p))),
            Some(p) if p <= 0 => {}
            _ => notes.push("pids_limit: berth needs at least 2 (its init and the command)".to_owned()),
        }
    }
    if let Some(d) = map.get("deploy") {
        let carried = |k: &str| k == "resources";
        if let Y::Mapping(d) = d {
            for k in d.keys().filter_map(|k| k.as_str()).filter(|k| !carried(k)) {
                notes.push(format!("deploy.{k}: not carried over: berth runs one container per env on this host"));
            }
        }
    }
    Ok(out)
}
