//! `berth tag`, `berth rmi` and `berth history`: naming, unnaming and
//! reading the story of images.

use std::process::ExitCode;

use anyhow::bail;
use oci_spec::image::{Descriptor, MediaType};

use super::output::{ago, table};

/// Give an image another name.
#[derive(clap::Args)]
#[command(after_help = "Example: berth tag shop/api:latest registry.local:5000/shop/api:1.0")]
pub struct TagArgs {
    /// An image name or id
    source: String,
    /// The new name, NAME[:TAG]
    target: String,
}

pub fn tag(ctx: &super::Context, args: TagArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let _lock = store.lock_exclusive()?;
    let image = store.resolve_image(&args.source)?;
    let size = store.read_blob(&image.manifest_digest)?.len() as u64;
    let mut descriptor = Descriptor::new(MediaType::ImageManifest, size, &image.manifest_digest);
    descriptor.set_annotations(None);
    store.set_tag(&args.target, descriptor)?;
    Ok(ExitCode::SUCCESS)
}

/// Remove image names (the layers stay until `berth gc`).
#[derive(clap::Args)]
#[command(after_help = "Example: berth rmi shop/api:old")]
pub struct RmiArgs {
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn rmi(ctx: &super::Context, args: RmiArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let _lock = store.lock_exclusive()?;
    let containers = berth::runtime::container::list(&store.containers_dir())?;
    let mut failed = false;
    for name in &args.images {
        let image = match store.resolve_image(name) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
                continue;
            }
        };
        if let Some(c) = containers.iter().find(|c| c.record.image_digest == image.manifest_digest) {
            eprintln!(
                "berth: image {name} is used by container {} ({}); remove it first with `berth rm`",
                c.record.name,
                c.record.id.short()
            );
            failed = true;
            continue;
        }
        if store.remove_tag(&image.name)? {
            println!("Untagged: {}", image.name);
        } else {
            eprintln!("berth: {name} is not a tag; give the image's name");
            failed = true;
        }
    }
    if failed { Ok(ExitCode::FAILURE) } else { Ok(ExitCode::SUCCESS) }
}

/// Show the steps that made an image, newest first, like `docker history`.
#[derive(clap::Args)]
#[command(after_help = "Example: berth history shop/api")]
pub struct HistoryArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
    image: String,
}

pub fn history(ctx: &super::Context, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let image = {
        let _shared = store.lock_shared()?;
        store.resolve_image(&args.image)?
    };
    let history = image.config.history().clone().unwrap_or_default();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Layers go with the history entries that are not empty, in order.
    let mut layers = image.layers.iter();
    let mut rows = Vec::new();
    for h in &history {
        let size = if h.empty_layer().unwrap_or(false) { 0 } else { layers.next().map_or(0, |l| l.size) };
        let by = super::output::shorten(&h.created_by().clone().unwrap_or_default(), 60);
        rows.push(vec![h.created().clone().map_or("-".to_owned(), |c| ago(&c)), by, human(size)]);
    }
    if layers.next().is_some() {
        bail!("image {}: its history lists fewer steps than it has layers", image.name);
    }
    rows.reverse();
    println!("{}", table(&["CREATED", "CREATED BY", "SIZE"], &rows));
    Ok(ExitCode::SUCCESS)
}

fn human(bytes: u64) -> String {
    if bytes == 0 { "0B".to_owned() } else { berth::manifest::values::ByteSize(bytes).to_string() }
}
