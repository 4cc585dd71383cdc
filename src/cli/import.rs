//! `berth import`: make an image from a filesystem tar, as `docker import`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use berth::oci::ImageConfigInput;
use berth::store::Store;

/// Make an image from a filesystem tar (plain or gzip), such as one written
/// by `berth export` or `docker export`.
#[derive(clap::Args)]
#[command(after_help = "Example: berth import rootfs.tar app:1")]
pub struct Args {
    /// The tar file, or - to read it from standard input
    #[arg(value_name = "FILE|-")]
    file: PathBuf,

    /// The name to tag the image with [default tag: latest]
    #[arg(value_name = "NAME[:TAG]")]
    name: Option<String>,

    /// Apply a Dockerfile instruction to the image config: CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,

    /// The history entry for the layer [default: berth import FILE]
    #[arg(short, long, value_name = "MSG")]
    message: Option<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ImageConfigInput::default();
    for change in &args.changes {
        config.apply_change(change)?;
    }
    let from_stdin = args.file.as_os_str() == "-";
    let tar: Box<dyn Read> = if from_stdin {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
        Box::new(BufReader::with_capacity(256 << 10, file))
    };
    let source = if from_stdin { "standard input".to_owned() } else { args.file.display().to_string() };
    let comment = args.message.unwrap_or_else(|| format!("berth import {}", args.file.display()));

    let store = Store::open(&ctx.store_root()?)?;
    let _exclusive = store.lock_exclusive()?;
    let imported = store
        .import_rootfs(tar, args.name.as_deref(), config, &comment)
        .with_context(|| format!("cannot import {source}"))?;
    println!("{}", imported.manifest);
    Ok(ExitCode::SUCCESS)
}
