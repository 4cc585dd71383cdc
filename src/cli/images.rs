//! `berth images`: list the images in the store.

use std::process::ExitCode;

use berth::store::Store;

use super::output::table;

/// List images in the store.
#[derive(clap::Args)]
#[command(after_help = "Example: berth images --json")]
pub struct Args {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let images = match Store::open_existing(&ctx.store_root()?)? {
        Some(store) => {
            let _shared = store.lock_shared()?;
            store.images()?
        }
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&images)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            let id = i.manifest.hex()[..12].to_owned();
            vec![
                i.repository.clone(),
                i.tag.clone(),
                id,
                i.created.as_deref().map_or_else(|| "-".to_owned(), super::output::ago),
                berth::manifest::values::ByteSize(i.size.max(1)).to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows));
    Ok(ExitCode::SUCCESS)
}
