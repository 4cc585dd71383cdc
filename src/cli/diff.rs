//! `berth diff`: files a container added, changed or deleted.

use std::process::ExitCode;

/// Show files a container changed: A added, C changed, D deleted.
#[derive(clap::Args)]
#[command(after_help = "Example: berth diff web")]
pub struct Args {
    /// Print JSON
    #[arg(long)]
    json: bool,
    container: String,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    // Mount points berth bind-mounts over are not the container's changes.
    let hide: Vec<std::path::PathBuf> = oci_spec::runtime::Spec::load(c.paths.spec())
        .ok()
        .and_then(|s| s.mounts().clone())
        .unwrap_or_default()
        .iter()
        .filter(|m| m.typ().as_deref() == Some("bind"))
        .map(|m| m.destination().clone())
        .collect();
    let changes = berth::runtime::diff::changes(&c.paths.upper(), &c.record.lowers, &hide)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        for ch in changes {
            println!("{} {}", ch.kind.letter(), ch.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
