//! `berth build`: build the project's images without starting containers.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use berth::build::{BuildOptions, Event};
use berth::oci::Compression;

/// Build the project's images (all envs, or those named) without starting
/// containers. Nodes the store has are not rebuilt.
#[derive(clap::Args)]
#[command(after_help = "Example: berth build -f manifests/demo/berth.toml api")]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Install exactly the package versions in berth.lock
    #[arg(long)]
    locked: bool,
    /// Build every step, even those in the cache
    #[arg(long)]
    no_cache: bool,
    /// Print only the images built
    #[arg(short, long)]
    quiet: bool,
    /// Compression of the layers built now: gzip (the widest compatibility) or zstd
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip", value_parser = super::commit::parse_compression)]
    compression: Compression,
    /// Envs to build [default: all]
    envs: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    build(ctx, args, false)
}

/// What a build is asked for, with the epoch from `SOURCE_DATE_EPOCH` and
/// one job per core.
pub(super) fn options(
    envs: Vec<String>,
    locked: bool,
    no_cache: bool,
    refresh_packages: bool,
    compression: Compression,
) -> anyhow::Result<BuildOptions> {
    Ok(BuildOptions {
        envs,
        locked,
        no_cache,
        refresh_packages,
        epoch: berth::oci::source_date_epoch()?,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        compression,
    })
}

/// Resolve packages and base digests into berth.lock: installs each env's
/// packages afresh in a build container to learn today's versions.
#[derive(clap::Args)]
#[command(after_help = "Example: berth lock -f manifests/demo/berth.toml")]
pub struct LockArgs {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print only the images built
    #[arg(short, long)]
    quiet: bool,
}

pub fn lock(ctx: &super::Context, args: LockArgs) -> anyhow::Result<ExitCode> {
    let build_args = Args {
        file: args.file,
        locked: false,
        no_cache: false,
        quiet: args.quiet,
        compression: Compression::Gzip,
        envs: Vec::new(),
    };
    build(ctx, build_args, true)
}

fn build(ctx: &super::Context, args: Args, refresh: bool) -> anyhow::Result<ExitCode> {
    let file = super::plan::manifest_path(args.file)?;
    let opts = options(args.envs, args.locked, args.no_cache, refresh, args.compression)?;
    let quiet = args.quiet;
    let progress = super::progress::Progress::new(std::io::stderr().is_terminal());
    let report = |e: Event| {
        if !quiet {
            progress.event(e);
        }
    };
    let ticker = (!quiet).then(|| progress.tick());
    let built = berth::build::build_project(&file, &ctx.store_root()?, &opts, &report);
    drop(ticker);
    progress.redraw();
    let (outcome, lock_changed) = built?;
    if !quiet {
        if outcome.built == 0 {
            eprintln!("nothing to build: all {} steps are cached", outcome.cached);
        } else {
            eprintln!("built {} steps, {} cached", outcome.built, outcome.cached);
        }
        if lock_changed {
            eprintln!("berth.lock updated with the installed versions");
        }
    }
    for (env, img) in &outcome.images {
        println!("{env}\t{}\t{}", img.tag, img.digest);
    }
    Ok(ExitCode::SUCCESS)
}
