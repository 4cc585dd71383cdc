//! `berth stop`, `start`, `restart`, `kill` and `rm`: Docker's lifecycle
//! verbs, each taking one or more container names or ids.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use berth::runtime::control;
use nix::sys::signal::Signal;

use super::containers::for_each;

/// Stop running containers: SIGTERM, then SIGKILL after a grace period.
#[derive(clap::Args)]
#[command(after_help = "Example: berth stop -t 2 web")]
pub struct StopArgs {
    /// Seconds to wait before killing
    #[arg(short, long, default_value_t = 10)]
    time: u64,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(ctx: &super::Context, args: StopArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    for_each(&store, &args.containers, |c| {
        control::stop(c, Duration::from_secs(args.time))?;
        Ok(())
    })
}

/// Start stopped containers.
#[derive(clap::Args)]
#[command(after_help = "Example: berth start web")]
pub struct StartArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn start(ctx: &super::Context, args: StartArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    for_each(&store, &args.containers, |c| Ok(control::start(c)?))
}

/// Restart containers (stop, then start).
#[derive(clap::Args)]
#[command(after_help = "Example: berth restart -t 1 web")]
pub struct RestartArgs {
    /// Seconds to wait before killing
    #[arg(short, long, default_value_t = 10)]
    time: u64,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn restart(ctx: &super::Context, args: RestartArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    for_each(&store, &args.containers, |c| {
        control::stop(c, Duration::from_secs(args.time))?;
        Ok(control::start(c)?)
    })
}

/// Send a signal to containers (SIGKILL unless -s says otherwise).
#[derive(clap::Args)]
#[command(after_help = "Example: berth kill -s HUP web")]
pub struct KillArgs {
    /// Signal name (KILL, SIGTERM, HUP…) or number
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn kill(ctx: &super::Context, args: KillArgs) -> anyhow::Result<ExitCode> {
    let signal = parse_signal(&args.signal)?;
    let store = super::containers::store(ctx)?;
    for_each(&store, &args.containers, |c| Ok(control::kill(c, signal)?))
}

fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("-s {s}: no such signal number"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>()
        .map_err(|_| anyhow!("-s {s}: no such signal; use a name such as TERM, HUP or KILL, or a number"))
}

/// Remove containers.
#[derive(clap::Args)]
#[command(after_help = "Example: berth rm -f web")]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(ctx: &super::Context, args: RmArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    for_each(&store, &args.containers, |c| {
        let lock = store.lock_exclusive()?;
        control::remove_for_good(&store, &lock, c, args.force)?;
        Ok(())
    })
}
