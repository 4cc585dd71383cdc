//! Compose files in: `berth init --from compose.yaml` writes a berth.toml
//! from a Compose file (`compose.yaml`, `docker-compose.yml`, …).
//!
//! The pipeline:
//! 1. the YAML is read (`yaml_serde`), and every string value interpolated
//!    as Compose does ([`interp`]: `${VAR:-default}`, `.env`, `$$`);
//! 2. each service becomes an env ([`service`]): each key Compose defines
//!    becomes its berth.toml key, its value checked with berth's own parser
//!    ([`values`]), or a `# compose:` comment beside the env saying what
//!    was not carried over and why;
//! 3. the text is written ([`toml_out`]) and checked as `berth plan` checks
//!    a manifest, so what `init` writes passes `plan` unedited.
//!
//! Like `manifest/` and `dockerfile/`, this module reads only the files it
//! is given (the compose file, its `.env` and `env_file`s) and writes
//! nothing; the CLI writes the text.

mod build;
pub mod interp;
pub mod service;
pub mod toml_out;
pub mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_serde::Value as Y;

use crate::manifest::{self, ManifestError};

/// Why a compose file could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}{location}: not a YAML file Compose could read: {message}", path.display())]
    Yaml { path: PathBuf, location: String, message: String },
    #[error("{}: {at}: {what}", path.display())]
    Shape { path: PathBuf, at: String, what: String },
    #[error("{}: {what}", path.display())]
    Interpolate { path: PathBuf, what: String },
    #[error("the berth.toml converted from {} does not check (a berth bug; please report it with the compose file): {source}", path.display())]
    Check { path: PathBuf, source: Box<ManifestError> },
}

/// A converted compose file.
#[derive(Debug)]
pub struct Converted {
    /// The berth.toml text.
    pub text: String,
    pub project: String,
    pub envs: usize,
    /// How many `# compose:` notes the text has.
    pub notes: usize,
    /// Variables the file used that were not set (they became "").
    pub unset: Vec<String>,
}

/// Converts the compose file `file` into a berth.toml for the directory
/// `out_dir`, naming the project `project` (else the file's `name`, else
/// the directory's name).
pub fn convert(file: &Path, out_dir: &Path, project: Option<&str>) -> Result<Converted, ComposeError> {
    let text = std::fs::read_to_string(file).map_err(|source| ComposeError::Read { path: file.into(), source })?;
    let compose_dir =
        std::path::absolute(file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
            .map_err(|source| ComposeError::Read { path: file.into(), source })?;
    let out_dir = std::path::absolute(out_dir).map_err(|source| ComposeError::Read { path: out_dir.into(), source })?;
    let mut doc: Y = yaml_serde::from_str(&text).map_err(|e| ComposeError::Yaml {
        path: file.into(),
        location: e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default(),
        message: e.to_string(),
    })?;
    let mut vars =
        interp::Vars::for_dir(&compose_dir).map_err(|what| ComposeError::Interpolate { path: file.into(), what })?;
    interpolate(&mut doc, &mut vars).map_err(|what| ComposeError::Interpolate { path: file.into(), what })?;
    let shape_err = |s: service::Shape| ComposeError::Shape { path: file.into(), at: s.at, what: s.what };
    let Some(Y::Mapping(services)) = doc.get("services") else {
        return Err(shape_err(service::Shape {
            at: "services".into(),
            what: "must be a mapping of services; the file has none".into(),
        }));
    };

    let project = match project.map(str::to_owned).or_else(|| doc.get("name").and_then(values::scalar)) {
        Some(p) => p,
        None => manifest::default_project(&out_dir),
    };
    let mut env_names = BTreeMap::new();
    let mut healthy = BTreeMap::new();
    for (name, svc) in services {
        let name = values::scalar(name).unwrap_or_default();
        let env = env_name(&name);
        if let Some((other, _)) = env_names.iter().find(|(_, e)| **e == env) {
            return Err(shape_err(service::Shape {
                at: format!("services.{name}"),
                what: format!("becomes env {env:?}, as service {other:?} does; rename one"),
            }));
        }
        let check = svc.get("healthcheck");
        let has_test = check
            .and_then(|h| h.get("test"))
            .is_some_and(|t| !matches!(t, Y::Sequence(s) if s.first().and_then(Y::as_str) == Some("NONE")));
        let disabled = matches!(check.and_then(|h| h.get("disable")), Some(Y::Bool(true)));
        healthy.insert(name.clone(), has_test && !disabled);
        env_names.insert(name, env);
    }
    let cx = service::Context {
        compose_dir: &compose_dir,
        out_dir: &out_dir,
        env_names: &env_names,
        healthy: &healthy,
        project: &project,
    };

    let mut out = format!(
        "# Written by `berth init --from {}`.\n# Lines starting \"# compose:\" name what berth did not carry over, and why.\n",
        file.display()
    );
    for (key, why) in [
        ("networks", "the envs of a project share one network namespace (localhost and env names)"),
        ("secrets", "no secrets store: bind-mount the files read-only in volumes"),
        ("configs", "no configs store: bind-mount the files read-only in volumes"),
    ] {
        if doc.get(key).is_some() {
            out.push_str(&format!("# compose: top-level {key}: not carried over: {why}\n"));
        }
    }
    if let Some(Y::Mapping(vols)) = doc.get("volumes") {
        for (name, v) in vols {
            if v.get("external").is_some_and(|e| matches!(e, Y::Bool(true))) {
                let name = values::scalar(name).unwrap_or_default();
                out.push_str(&format!(
                    "# compose: volume {name} is external: berth makes named volumes in its store\n"
                ));
            }
        }
    }
    out.push_str(&format!("project = {}\n", toml_out::quote(&project)));
    let mut notes = out.matches("# compose:").count();
    for (name, svc) in services {
        let name = values::scalar(name).unwrap_or_default();
        let items = service::convert(&name, svc, &cx).map_err(shape_err)?;
        notes += items.iter().filter(|i| matches!(i, toml_out::Item::Note(_))).count();
        toml_out::env_table(&mut out, &env_names[&name], &items);
    }
    manifest::parse(&out, &out_dir.join(manifest::FILE_NAME), &out_dir)
        .map_err(|source| ComposeError::Check { path: file.into(), source: Box::new(source) })?;
    Ok(Converted { text: out, project, envs: services.len(), notes, unset: vars.unset })
}

/// A service name as an env name: lower-case, `_` and `.` as `-`.
fn env_name(service: &str) -> String {
    let mut s: String =
        service.to_ascii_lowercase().chars().map(|c| if c == '_' || c == '.' { '-' } else { c }).collect();
    s = s.trim_start_matches('-').to_owned();
    s.truncate(63);
    s
}

/// Interpolates every string value of `v` (not keys, as Compose).
fn interpolate(v: &mut Y, vars: &mut interp::Vars) -> Result<(), String> {
    match v {
        Y::String(s) => *s = vars.interpolate(s)?,
        Y::Sequence(items) => {
            for i in items {
                interpolate(i, vars)?;
            }
        }
        Y::Mapping(m) => {
            for (_, val) in m.iter_mut() {
                interpolate(val, vars)?;
            }
        }
        Y::Tagged(t) => interpolate(&mut t.value, vars)?,
        _ => {}
    }
    Ok(())
}
