//! `berth init`: write a starter manifest, or one converted from a
//! Compose file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use berth::manifest;

/// Write a commented starter berth.toml in a project directory, or convert
/// a Compose file into one (--from).
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth init --project shop && berth plan\n         berth init --from compose.yaml && berth up -d"
)]
pub struct Args {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Project name [default: the directory's name]
    #[arg(long)]
    project: Option<String>,
    /// Overwrite an existing berth.toml
    #[arg(long)]
    force: bool,
    /// Convert this Compose file (compose.yaml, docker-compose.yml) instead
    /// of writing the starter; what berth cannot carry over is left as
    /// "# compose:" comments
    #[arg(long, value_name = "COMPOSE_FILE")]
    from: Option<PathBuf>,
}

pub fn run(_ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let path = args.dir.join(manifest::FILE_NAME);
    if path.exists() && !args.force {
        bail!("{} already exists; edit it, or pass --force to replace it with the starter", path.display());
    }
    let dir = std::path::absolute(&args.dir).with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    if let Some(from) = &args.from {
        let c = berth::compose::convert(from, &dir, args.project.as_deref())?;
        std::fs::write(&path, &c.text).with_context(|| format!("cannot write {}", path.display()))?;
        for var in &c.unset {
            eprintln!("berth: warning: {} uses ${{{var}}}, which is not set; it became \"\"", from.display());
        }
        println!(
            "wrote {} (project \"{}\", {} envs, {} notes marked \"# compose:\"); run `berth plan` to see what it would build",
            path.display(),
            c.project,
            c.envs,
            c.notes
        );
        return Ok(ExitCode::SUCCESS);
    }
    let project = match args.project {
        Some(p) => p,
        None => manifest::default_project(&dir),
    };
    let text = manifest::starter(&project);
    // The starter must itself be a valid manifest.
    manifest::parse(&text, &path, &dir).context("the starter manifest does not check (a berth bug)")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {} (project \"{project}\"); run `berth plan` to see what it would build", path.display());
    Ok(ExitCode::SUCCESS)
}
