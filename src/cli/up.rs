//! `berth up` and `berth down`: make the machine match berth.toml, or take
//! the project away.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use berth::build::{BuildOptions, Event};
use berth::plan::up::Action;

/// Build what is missing and start the project's envs to match berth.toml
/// (in depends_on order, sharing one network namespace). Only -d (detached)
/// is built so far.
#[derive(clap::Args)]
#[command(after_help = "Example: berth up -d -f manifests/demo/berth.toml")]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Return once everything runs
    #[arg(short, long)]
    detach: bool,
    /// Install exactly the package versions in berth.lock
    #[arg(long)]
    locked: bool,
    /// Envs to bring up (with what they depend on) [default: all]
    envs: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    if !args.detach {
        eprintln!(
            "berth: `berth up` in the foreground (following every env's log) is not built yet; nothing was done.\n\
             berth: `berth up -d` brings the project up detached; `berth logs NAME` shows an env's output."
        );
        return Ok(ExitCode::from(2));
    }
    let file = super::plan::manifest_path(args.file)?;
    let opts = BuildOptions {
        envs: args.envs,
        locked: args.locked,
        no_cache: false,
        refresh_packages: false,
        epoch: berth::oci::source_date_epoch()?,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let progress = super::progress::Progress::new(std::io::stderr().is_terminal());
    let report = |e: Event| {
        if !matches!(e, Event::Cached { .. }) {
            progress.event(e)
        }
    };
    let root = ctx.store_root()?;
    let actions = berth::plan::up::up(&file, &root, &opts, &report)?;
    let changed = actions.values().filter(|a| !matches!(a, Action::Unchanged | Action::ImageOnly)).count();
    for (env, action) in &actions {
        let what = match action {
            Action::Unchanged | Action::ImageOnly => continue,
            Action::Started => "started",
            Action::Created => "created and started",
            Action::Recreated => "recreated (its image or config changed)",
            Action::Removed => "removed (no longer declared)",
        };
        eprintln!("{env}: {what}");
    }
    if changed == 0 {
        eprintln!("nothing to do: every env is up to date and running");
    }
    Ok(ExitCode::SUCCESS)
}

/// Stop and remove the project's containers (and with -v its named volumes).
#[derive(clap::Args)]
#[command(after_help = "Example: berth down -v -f manifests/demo/berth.toml")]
pub struct DownArgs {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Also remove the project's named volumes
    #[arg(short, long)]
    volumes: bool,
}

pub fn down(ctx: &super::Context, args: DownArgs) -> anyhow::Result<ExitCode> {
    let file = super::plan::manifest_path(args.file)?;
    let manifest = berth::manifest::load(&file)?;
    for name in berth::plan::up::down(&ctx.store_root()?, &manifest.project, args.volumes)? {
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
