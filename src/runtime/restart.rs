//! The restart policy as pure logic: what the shim does when the container's
//! main process has exited.
//!
//! The rules are Docker's (moby's `restartmanager`):
//!
//! * a container the user stopped (`berth stop`, `berth down`) never restarts,
//!   whatever its policy;
//! * `no` never restarts;
//! * `on-failure[:N]` restarts after a non-zero exit code, at most `N` times in
//!   total (`on-failure` and `on-failure:0` mean no limit). A container killed
//!   by the OOM killer exits with 137 and so counts as failed; the `oom_killed`
//!   flag alone does not change the decision, as in Docker;
//! * `always` and `unless-stopped` restart after any exit. They differ only
//!   when the host (or the project) comes back up: see [`Policy::resume_at_boot`].
//!
//! Restarts are delayed with an exponential backoff: 100 ms, then twice the
//! previous delay each time, capped at one minute. A run that lasted at least
//! ten seconds resets the backoff to 100 ms. The caller (the shim) keeps the
//! previous delay and passes it back in [`History::previous_delay`]; nothing
//! here reads a clock or sleeps, so every rule is a table-driven unit test.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The first restart delay, and the delay after a run that reset the backoff.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest restart delay.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff to [`INITIAL_DELAY`].
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// A container's restart policy (`--restart`, `restart =` in the manifest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Never restart (the default).
    #[default]
    No,
    /// Restart after a non-zero exit code, at most `max` times (`None`: no limit).
    OnFailure { max: Option<u32> },
    /// Restart after any exit that was not a user's stop.
    Always,
    /// Like [`Policy::Always`], but a container the user stopped also stays
    /// stopped when the project comes back up.
    UnlessStopped,
}

/// A restart policy that could not be parsed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown restart policy {input:?}; expected no, on-failure, on-failure:N, always or unless-stopped")]
    Unknown { input: String },
    #[error("restart policy {input:?}: {count:?} is not a retry count; expected a whole number such as on-failure:5")]
    BadCount { input: String, count: String },
    #[error("restart policy {input:?}: a retry count only goes with on-failure (such as on-failure:5)")]
    CountNotAllowed { input: String },
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(input: &str) -> Result<Policy, PolicyError> {
        let (name, count) = match input.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (input, None),
        };
        let policy = match name {
            "no" => Policy::No,
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => {
                let max = match count {
                    None => None,
                    Some(count) => {
                        let n: u32 = count
                            .parse()
                            .map_err(|_| PolicyError::BadCount { input: input.to_owned(), count: count.to_owned() })?;
                        // Docker reads a maximum of 0 as "no maximum".
                        (n > 0).then_some(n)
                    }
                };
                return Ok(Policy::OnFailure { max });
            }
            _ => return Err(PolicyError::Unknown { input: input.to_owned() }),
        };
        match count {
            None => Ok(policy),
            Some(_) => Err(PolicyError::CountNotAllowed { input: input.to_owned() }),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::No => f.write_str("no"),
            Policy::OnFailure { max: None } => f.write_str("on-failure"),
            Policy::OnFailure { max: Some(n) } => write!(f, "on-failure:{n}"),
            Policy::Always => f.write_str("always"),
            Policy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl Policy {
    /// Whether a container that was not running when the host or project went
    /// down should be started again when it comes back up: `always` yes,
    /// `unless-stopped` unless the user stopped it, the others no.
    pub fn resume_at_boot(self, stop_requested: bool) -> bool {
        match self {
            Policy::Always => true,
            Policy::UnlessStopped => !stop_requested,
            Policy::No | Policy::OnFailure { .. } => false,
        }
    }
}

/// How the container's main process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit code; `128 + signal` for a process killed by a signal.
    pub code: i32,
    /// Whether the kernel's OOM killer acted in the container's cgroup.
    pub oom_killed: bool,
}

/// What the shim knows about the runs so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Restarts already made (`State::restart_count`).
    pub restart_count: u32,
    /// The user asked the container to stop (`State::stop_requested`).
    pub stop_requested: bool,
    /// How long the run that just ended lasted.
    pub ran_for: Duration,
    /// The delay before the previous restart (`Duration::ZERO` if none): the
    /// `after` of the last [`Decision::Restart`].
    pub previous_delay: Duration,
}

/// What to do after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the container again once `after` has passed.
    Restart { after: Duration },
    /// Leave the container exited.
    Stay,
}

/// Decides whether the container restarts after `exit`, and after how long.
pub fn decide(policy: Policy, exit: ExitInfo, history: History) -> Decision {
    if history.stop_requested {
        return Decision::Stay;
    }
    let restart = match policy {
        Policy::No => false,
        Policy::Always | Policy::UnlessStopped => true,
        Policy::OnFailure { max } => exit.code != 0 && max.is_none_or(|max| history.restart_count < max),
    };
    if !restart {
        return Decision::Stay;
    }
    Decision::Restart { after: next_delay(history.previous_delay, history.ran_for) }
}

/// The backoff: 100 ms after a long run or at first, else twice the previous
/// delay, never more than a minute.
fn next_delay(previous: Duration, ran_for: Duration) -> Duration {
    if ran_for >= RESET_AFTER || previous.is_zero() { INITIAL_DELAY } else { previous.saturating_mul(2).min(MAX_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const OK: ExitInfo = ExitInfo { code: 0, oom_killed: false };
    const FAIL: ExitInfo = ExitInfo { code: 1, oom_killed: false };
    const OOM: ExitInfo = ExitInfo { code: 137, oom_killed: true };
    const OOM_ZERO: ExitInfo = ExitInfo { code: 0, oom_killed: true };

    fn quick(restart_count: u32, previous_ms: u64) -> History {
        History { restart_count, stop_requested: false, ran_for: MS(50), previous_delay: MS(previous_ms) }
    }

    #[test]
    fn parses_and_prints_policies() {
        let cases = [
            ("no", Policy::No, "no"),
            ("always", Policy::Always, "always"),
            ("unless-stopped", Policy::UnlessStopped, "unless-stopped"),
            ("on-failure", Policy::OnFailure { max: None }, "on-failure"),
            ("on-failure:0", Policy::OnFailure { max: None }, "on-failure"),
            ("on-failure:5", Policy::OnFailure { max: Some(5) }, "on-failure:5"),
        ];
        for (input, policy, shown) in cases {
            assert_eq!(input.parse::<Policy>(), Ok(policy), "{input}");
            assert_eq!(policy.to_string(), shown);
        }
    }

    #[test]
    fn rejects_bad_policies() {
        let cases = [
            ("sometimes", "unknown restart policy \"sometimes\""),
            ("", "unknown restart policy \"\""),
            ("on-failure:-1", "\"-1\" is not a retry count"),
            ("on-failure:x", "\"x\" is not a retry count"),
            ("on-failure:", "\"\" is not a retry count"),
            ("always:3", "a retry count only goes with on-failure"),
            ("no:1", "a retry count only goes with on-failure"),
        ];
        for (input, message) in cases {
            let err = input.parse::<Policy>().expect_err(input);
            assert!(err.to_string().contains(message), "{input}: {err}");
        }
    }

    #[test]
    fn decides_like_docker() {
        let on_failure_3 = Policy::OnFailure { max: Some(3) };
        let unlimited = Policy::OnFailure { max: None };
        let stopped = History { stop_requested: true, ..quick(0, 0) };
        let restart = Decision::Restart { after: INITIAL_DELAY };
        #[rustfmt::skip]
        let cases = [
            // policy, exit, history, decision
            (Policy::No, FAIL, quick(0, 0), Decision::Stay),
            (Policy::No, OK, quick(0, 0), Decision::Stay),
            (Policy::Always, OK, quick(0, 0), restart),
            (Policy::Always, FAIL, quick(0, 0), restart),
            (Policy::Always, FAIL, quick(1000, 0), restart),
            (Policy::UnlessStopped, OK, quick(0, 0), restart),
            (Policy::Always, FAIL, stopped, Decision::Stay),
            (Policy::UnlessStopped, FAIL, stopped, Decision::Stay),
            (unlimited, FAIL, stopped, Decision::Stay),
            (unlimited, OK, quick(0, 0), Decision::Stay),
            (unlimited, FAIL, quick(0, 0), restart),
            (unlimited, FAIL, quick(10_000, 0), restart),
            (unlimited, OOM, quick(0, 0), restart),
            (unlimited, OOM_ZERO, quick(0, 0), Decision::Stay),
            (unlimited, ExitInfo { code: -1, oom_killed: false }, quick(0, 0), restart),
            (on_failure_3, FAIL, quick(0, 0), restart),
            (on_failure_3, FAIL, quick(2, 0), restart),
            (on_failure_3, FAIL, quick(3, 0), Decision::Stay),
            (on_failure_3, FAIL, quick(4, 0), Decision::Stay),
            (on_failure_3, OK, quick(0, 0), Decision::Stay),
        ];
        for (policy, exit, history, expected) in cases {
            assert_eq!(decide(policy, exit, history), expected, "{policy} {exit:?} {history:?}");
        }
    }

    #[test]
    fn backs_off_exponentially_and_resets_after_a_long_run() {
        #[rustfmt::skip]
        let cases = [
            // previous delay (ms), ran for (ms), next delay (ms)
            (0, 0, 100),
            (0, 50, 100),
            (100, 50, 200),
            (200, 50, 400),
            (6_400, 50, 12_800),
            (25_600, 50, 51_200),
            (51_200, 50, 60_000),
            (60_000, 50, 60_000),
            (60_000, 9_999, 60_000),
            (60_000, 10_000, 100),
            (800, 3_600_000, 100),
        ];
        for (previous, ran_for, next) in cases {
            let history = History { ran_for: MS(ran_for), ..quick(7, previous) };
            assert_eq!(
                decide(Policy::Always, FAIL, history),
                Decision::Restart { after: MS(next) },
                "previous {previous} ms, ran {ran_for} ms"
            );
        }
    }

    #[test]
    fn a_crash_loop_reaches_the_cap() {
        let mut history = quick(0, 0);
        let mut delays = Vec::new();
        while let Decision::Restart { after } = decide(Policy::Always, FAIL, history) {
            delays.push(after.as_millis());
            history = History { restart_count: history.restart_count + 1, previous_delay: after, ..history };
            if delays.len() == 12 {
                break;
            }
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]);
    }

    #[test]
    fn resumes_at_boot() {
        let cases = [
            (Policy::Always, false, true),
            (Policy::Always, true, true),
            (Policy::UnlessStopped, false, true),
            (Policy::UnlessStopped, true, false),
            (Policy::No, false, false),
            (Policy::OnFailure { max: None }, false, false),
        ];
        for (policy, stopped, expected) in cases {
            assert_eq!(policy.resume_at_boot(stopped), expected, "{policy} stopped={stopped}");
        }
    }
}
