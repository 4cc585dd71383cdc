//! `berth freeze`: snapshot envs and save them with their config, for
//! `berth up --from` on another machine.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::oci::Compression;
use berth::plan::freeze::{FreezeOptions, freeze};

/// Snapshot envs and save them, with their config (command, env vars,
/// ports, limits, volumes, health, dependencies), as one OCI archive that
/// `berth up --from FILE` brings up on another machine without the
/// manifest. `berth inspect FILE` shows what is inside; podman, skopeo and
/// Docker read it as plain images.
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth freeze api worker -o qa-handoff.tar\n         berth up --from qa-handoff.tar   # on the QA machine"
)]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The archive to write (replaced whole when complete)
    #[arg(short, long, value_name = "FILE.tar")]
    output: PathBuf,
    /// The snapshots' history message
    #[arg(short, long, value_name = "MSG")]
    message: Option<String>,
    /// Layer compression: gzip (the widest compatibility) or zstd
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip", value_parser = super::commit::parse_compression)]
    compression: Compression,
    /// The envs to freeze (they must be running or stopped containers of `berth up`)
    #[arg(required = true)]
    envs: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let manifest = super::plan::manifest_with_envs(args.file, &args.envs)?;
    let store = super::containers::store(ctx)?;
    let opts = FreezeOptions { message: args.message, compression: args.compression };
    for env in freeze(&store, &manifest.project, &args.envs, &args.output, &opts)? {
        eprintln!("{}: frozen as {} ({})", env.env, env.tag, env.manifest);
    }
    println!("{}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
