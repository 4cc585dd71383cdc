//! `berth save`, `berth load` and `berth inspect FILE.tar`: image archives,
//! as `docker save`/`docker load` and `podman save`/`podman load`.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use berth::oci::archive::{ArchiveContents, ArchiveFormat, read_archive};
use berth::store::{SaveRequest, Store};
use serde_json::json;

/// Write images to a tar archive: an OCI image layout (the default, which
/// podman, skopeo, umoci and Docker 25+ read) or Docker's `docker save` form.
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth save busybox:latest app:1 -o images.tar\n         berth save app | ssh host berth load"
)]
pub struct SaveArgs {
    /// Images to save: names, digests or IDs
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,

    /// The archive to write [default: standard output, if not a terminal]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// The archive's form: oci-archive or docker-archive
    #[arg(long, default_value = "oci-archive", value_name = "FORMAT")]
    format: ArchiveFormat,
}

/// Read images from a tar archive written by `berth save`, `docker save` or
/// `podman save` (OCI or Docker form; plain, gzip or zstd).
#[derive(clap::Args)]
#[command(after_help = "Example: berth load -i images.tar\n         gunzip -c images.tar.gz | berth load")]
pub struct LoadArgs {
    /// The archive to read, or - for standard input [default: standard input, if not a terminal]
    #[arg(short, long, value_name = "FILE|-")]
    input: Option<PathBuf>,

    /// Print only the loaded images' IDs
    #[arg(short, long)]
    quiet: bool,
}

pub fn save(ctx: &super::Context, args: SaveArgs) -> anyhow::Result<ExitCode> {
    if args.output.is_none() && io::stdout().is_terminal() {
        bail!("refusing to write an archive to a terminal; give -o FILE or redirect standard output");
    }
    let store = super::containers::store(ctx)?;
    let _shared = store.lock_shared()?;
    let requests: Vec<SaveRequest> = args.images.iter().map(SaveRequest::new).collect();
    match &args.output {
        Some(path) => store.save_archive_file(&requests, args.format, path)?,
        None => store.save_archive(&requests, args.format, io::stdout().lock(), Path::new("standard output"))?,
    };
    Ok(ExitCode::SUCCESS)
}

pub fn load(ctx: &super::Context, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let from_stdin = args.input.as_ref().is_none_or(|p| p.as_os_str() == "-");
    if from_stdin && args.input.is_none() && io::stdin().is_terminal() {
        bail!("no archive to load: give -i FILE, or pipe one into standard input");
    }
    let (input, name): (Box<dyn Read>, String) = match &args.input {
        Some(path) if !from_stdin => {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            (Box::new(BufReader::with_capacity(256 << 10, file)), path.display().to_string())
        }
        _ => (Box::new(io::stdin().lock()), "standard input".to_owned()),
    };
    let store = Store::open(&ctx.store_root()?)?;
    let _exclusive = store.lock_exclusive()?;
    let loaded = store.load_archive(input, &name)?;
    for image in &loaded.images {
        if args.quiet {
            println!("{}", image.manifest);
        } else if image.tags.is_empty() {
            println!("Loaded image ID: {}", image.manifest);
        } else {
            for tag in &image.tags {
                println!("Loaded image: {tag}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `berth inspect` should read `name` as an archive: an existing
/// file named like a path or a tar.
pub fn looks_like_archive(name: &str) -> bool {
    let path = Path::new(name);
    let named_like_one =
        name.contains('/') || [".tar", ".tgz", ".tar.gz", ".tar.zst"].iter().any(|x| name.ends_with(x));
    named_like_one && path.is_file()
}

/// What `berth inspect FILE.tar` prints for one archive: its images as
/// JSON, read without touching the store.
pub fn inspect(path: &Path) -> anyhow::Result<serde_json::Value> {
    let contents = read_archive(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(describe(path, &contents))
}

fn describe(path: &Path, contents: &ArchiveContents<()>) -> serde_json::Value {
    let images: Vec<serde_json::Value> = contents
        .images
        .iter()
        .map(|image| {
            let layers: Vec<serde_json::Value> = image
                .layers
                .iter()
                .map(|l| json!({ "Digest": l.digest, "DiffID": l.diff_id, "Size": l.size, "MediaType": l.media_type }))
                .collect();
            let size: u64 = image.layers.iter().map(|l| l.size).sum::<u64>() + image.config_bytes.len() as u64;
            // What `berth freeze` recorded: the env's config, for `up --from`.
            let env: Option<serde_json::Value> =
                image.annotation(berth::plan::freeze::SPEC_ANNOTATION).and_then(|spec| serde_json::from_str(spec).ok());
            json!({
                "Id": image.manifest_digest,
                "Names": image.names,
                "BerthEnv": env,
                "Annotations": image.annotations,
                "Index": image.index,
                "ManifestMediaType": image.manifest_media_type,
                "ConfigDigest": image.config_digest,
                "Size": size,
                "Layers": layers,
                "Manifest": image.manifest,
                "Config": image.config,
            })
        })
        .collect();
    json!({ "Archive": path, "Format": contents.format.name(), "Images": images })
}
