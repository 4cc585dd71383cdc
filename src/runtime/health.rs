//! Health checks, as Docker runs them: the shim runs the check command in
//! the running container every `interval` (each run killed after
//! `timeout`), and keeps the verdict in `health.json` beside the state:
//! `starting` until the first success, `healthy` after a success, and
//! `unhealthy` after `retries` failures in a row. Failures during the
//! `start_period` do not count. `berth up` waits on that file for the envs
//! others depend on; `berth ps` and `berth inspect` show it. A check runs as
//! [`exec`] runs a command without `-u`: as the container's
//! user, with the container's environment (its `$HOME` included, see
//! `spec::process_user`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::container::Container;
use super::exec::{self, ExecError, ExecOptions};

/// The file the shim writes each verdict to.
pub const HEALTH_FILE: &str = "health.json";

/// A container's health check, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Run as `exec` runs a command (no shell unless the check names one).
    pub cmd: Vec<String>,
    #[serde(with = "millis")]
    pub interval: Duration,
    #[serde(with = "millis")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(with = "millis")]
    pub start_period: Duration,
}

/// The verdict so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Starting,
    Healthy,
    Unhealthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Starting => "starting",
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

/// What `health.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: Verdict,
    /// Failures in a row that counted.
    pub failing_streak: u32,
    /// Checks run since the container started.
    pub checks: u32,
    /// The last check: its exit code, or why it has none.
    pub last: Option<String>,
    /// RFC 3339 time of the last check.
    pub last_at: Option<String>,
}

/// Reads a container's last verdict; `None` when it has no check (or the
/// shim has not written one yet).
pub fn read(dir: &Path) -> Option<Health> {
    let bytes = std::fs::read(dir.join(HEALTH_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Runs `check` in `c` until `stop` is set, writing each verdict to the
/// container's `health.json`. Called by the shim on a thread of its own once
/// the container runs.
pub fn run_checks(c: &Container, check: &HealthCheck, stop: &Arc<AtomicBool>) {
    let started = Instant::now();
    let mut health = Health { status: Verdict::Starting, failing_streak: 0, checks: 0, last: None, last_at: None };
    write(c, &health);
    let opts =
        ExecOptions { args: check.cmd.clone(), quiet: true, timeout: Some(check.timeout), ..ExecOptions::default() };
    // The first check runs soon after start, then one every interval.
    let mut next = started + check.interval.min(Duration::from_millis(200));
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        let outcome = exec::exec(c, &opts);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        health.checks += 1;
        health.last_at = Some(crate::store::rfc3339(std::time::SystemTime::now()));
        let passed = matches!(outcome, Ok(0));
        health.last = Some(match outcome {
            Ok(code) => format!("exit code {code}"),
            Err(ExecError::TimedOut { after, .. }) => format!("timed out after {after:?}"),
            Err(e) => e.to_string(),
        });
        if passed {
            health.status = Verdict::Healthy;
            health.failing_streak = 0;
        } else if started.elapsed() >= check.start_period {
            health.failing_streak += 1;
            if health.failing_streak >= check.retries {
                health.status = Verdict::Unhealthy;
            }
        }
        write(c, &health);
        next = Instant::now() + check.interval;
    }
}

fn write(c: &Container, health: &Health) {
    let json = serde_json::to_vec_pretty(health).expect("a health verdict always serialises");
    let _ = crate::store::atomic_write(&c.paths.dir, &c.paths.dir.join(HEALTH_FILE), &json);
}

/// The longest a container with `check` can take to become healthy or
/// unhealthy after it starts, plus a margin.
pub fn verdict_within(check: &HealthCheck) -> Duration {
    let per_check = check.interval + check.timeout;
    check.start_period + per_check * (check.retries + 1) + Duration::from_secs(2)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
