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
    let changes = berth::runtime::diff::container_changes(&c)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        for ch in changes {
            println!("{} {}", ch.kind.letter(), ch.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
