//! The actual state of a project, read from the store: each container `up`
//! made (found by its labels), with its image, config hash, status as its
//! files and processes show it (running, exited with its code, OOM-killed,
//! restarting, or left without a shim), its health verdict and, when asked,
//! its filesystem drift. The plan compares this with the desired state;
//! `berth ps` shows it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::up::{CONFIG_LABEL, ENV_LABEL, ENV_SPEC_FILE, PROJECT_LABEL};
use crate::oci::Digest;
use crate::runtime::container::{self, Container, ContainerError};
use crate::runtime::diff::{self, Change};
use crate::runtime::health::{self, Health};
use crate::runtime::state::{self, Stale, Status};
use crate::store::Store;

/// Paths whose changes are not drift: scratch space by convention.
const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/run"];

/// One env's container as it is.
#[derive(Debug, Clone, Serialize)]
pub struct EnvState {
    pub env: String,
    #[serde(skip)]
    pub container: Container,
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_digest: Digest,
    /// The hash of the `ContainerSpec` it was made from.
    pub config_hash: String,
    pub status: Status,
    /// How it ended, for one that is not running: `exited (1)`, `OOM
    /// killed`, `its shim is gone`.
    pub detail: Option<String>,
    pub health: Option<Health>,
    /// RFC 3339 time of its last start.
    pub started_at: Option<String>,
    pub ports: Vec<crate::runtime::ports::PortMapping>,
    /// The spec it was made from, when recorded.
    pub spec: Option<serde_json::Value>,
    /// What the container changed in its own filesystem (volumes, mounts
    /// and scratch directories aside), when asked for.
    pub drift: Vec<Change>,
}

impl EnvState {
    pub fn running(&self) -> bool {
        self.status == Status::Running
    }

    /// Its shim is gone but its process still runs.
    pub fn unsupervised(&self) -> bool {
        self.status == Status::Dead
    }

    /// Running, or between two runs of its restart policy: its shim has it.
    pub fn supervised(&self) -> bool {
        matches!(self.status, Status::Running | Status::Restarting)
    }
}

/// The containers of `project` in `store` (found by their label), oldest
/// first.
pub fn project_containers(store: &Store, project: &str) -> Result<Vec<Container>, ContainerError> {
    let mut all = container::list(&store.containers_dir())?;
    all.retain(|c| c.record.labels.get(PROJECT_LABEL).map(String::as_str) == Some(project));
    Ok(all)
}

/// The state of `project`'s containers, sorted by env; with `drift`, each
/// container's changed files too.
pub fn project_state(store: &Store, project: &str, drift: bool) -> Result<Vec<EnvState>, ContainerError> {
    let mut out: Vec<EnvState> = project_containers(store, project)?.into_iter().map(|c| env_state(c, drift)).collect();
    out.sort_by(|a, b| a.env.cmp(&b.env));
    Ok(out)
}

fn env_state(c: Container, with_drift: bool) -> EnvState {
    let st = state::read_state(&c.paths.dir).ok();
    let observed = st.as_ref().map(state::observed_status);
    let status = observed.as_ref().map_or(Status::Created, |o| o.status);
    let detail = match (&st, observed.as_ref().and_then(|o| o.stale.as_ref())) {
        (_, Some(Stale::ShimGone { .. })) => Some("its shim is gone; how it ended is unknown".to_owned()),
        (_, Some(Stale::Orphaned { pid, .. })) => Some(format!("its shim is gone; pid {pid} still runs")),
        (Some(s), None) if status == Status::Exited && s.oom_killed => Some("OOM killed".to_owned()),
        (Some(s), None) if status == Status::Exited => s.exit_code.map(|code| format!("exited ({code})")),
        (Some(s), None) => s.error.clone(),
        _ => None,
    };
    let running = status == Status::Running;
    let spec = std::fs::read(c.paths.dir.join(ENV_SPEC_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let drift = if with_drift { drift_of(&c) } else { Vec::new() };
    EnvState {
        env: c.record.labels.get(ENV_LABEL).cloned().unwrap_or_default(),
        id: c.record.id.as_str().to_owned(),
        name: c.record.name.clone(),
        image: c.record.image.clone(),
        image_digest: c.record.image_digest.clone(),
        config_hash: c.record.labels.get(CONFIG_LABEL).cloned().unwrap_or_default(),
        status,
        detail,
        health: if running && c.record.health.is_some() { health::read(&c.paths.dir) } else { None },
        started_at: st.and_then(|s| s.started_at).map(|t| t.to_string()),
        ports: c.record.ports.clone(),
        spec,
        drift,
        container: c,
    }
}

/// The container's changed files, leaving out directories that only hold
/// changes and scratch directories.
fn drift_of(c: &Container) -> Vec<Change> {
    let Ok(changes) = diff::container_changes(c) else { return Vec::new() };
    let scratch = |p: &Path| SCRATCH.iter().any(|s| p.starts_with(s));
    let parents: Vec<PathBuf> = changes.iter().filter_map(|ch| ch.path.parent().map(Path::to_path_buf)).collect();
    changes
        .into_iter()
        .filter(|ch| !scratch(&ch.path))
        .filter(|ch| !(ch.kind == diff::ChangeKind::Changed && parents.contains(&ch.path)))
        .collect()
}
