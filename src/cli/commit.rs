//! `berth commit`, `berth snapshot` and `berth export`: a container's
//! changes as a new image, an env's container as a new image, and a
//! container's filesystem as a tar.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use berth::build::commit::{CommitOptions, Committed, commit, snapshot_tag};
use berth::oci::Compression;
use berth::runtime::container::{self, Container};
use berth::runtime::export::{ExportOptions, export, export_to_file};
use berth::store::Store;

/// Make an image from a container's changes: its image plus one layer of
/// what it added, changed and deleted. A running container is frozen while
/// its files are read. Prints the new image's ID.
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth commit -m 'configured nginx' -c 'ENV MODE=prod' -c 'CMD [\"nginx\"]' web app:v2"
)]
pub struct CommitArgs {
    /// The container (name or id; in a project, an env name)
    container: String,
    /// The name to tag the image with [default: untagged; tag: latest]
    #[arg(value_name = "NAME[:TAG]")]
    name: Option<String>,
    #[command(flatten)]
    common: Common,
    /// Author of the image and its new layer
    #[arg(short, long)]
    author: Option<String>,
}

/// Freeze an env's container into an image: its image plus one layer of
/// what it changed, tagged PROJECT/ENV:snapshot-YYYYMMDD-HHMMSS (UTC) unless
/// -t names another tag. The env is one of berth.toml's; its container must
/// exist (`berth up ENV`). Prints the tag.
#[derive(clap::Args)]
#[command(after_help = "Example: berth snapshot api -m 'before the migration' --compression zstd")]
pub struct SnapshotArgs {
    /// The env, as berth.toml names it
    env: String,
    /// The tag [default: PROJECT/ENV:snapshot-YYYYMMDD-HHMMSS]
    #[arg(short, long, value_name = "NAME[:TAG]")]
    tag: Option<String>,
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// What commit and snapshot both take.
#[derive(clap::Args)]
struct Common {
    /// The history entry's message
    #[arg(short, long, value_name = "MSG")]
    message: Option<String>,
    /// Apply a Dockerfile instruction to the image config: CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Freeze a running container while its files are read
    #[arg(short, long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pause: bool,
    /// Layer compression: gzip or zstd
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip", value_parser = parse_compression)]
    compression: Compression,
}

pub(super) fn parse_compression(s: &str) -> Result<Compression, String> {
    match s.parse()? {
        Compression::None => Err("a layer blob is compressed: use gzip or zstd".to_owned()),
        c => Ok(c),
    }
}

impl Common {
    fn options(self, tag: Option<String>, created_by: String, author: Option<String>) -> CommitOptions {
        CommitOptions {
            tag,
            message: self.message,
            author,
            created_by: Some(created_by),
            changes: self.changes,
            compression: self.compression,
            pause: self.pause,
        }
    }
}

pub fn commit_run(ctx: &super::Context, args: CommitArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    let by = format!("berth commit {}", c.record.name);
    let done = commit_locked(&store, &c, args.common.options(args.name, by, args.author))?;
    println!("{}", done.manifest);
    Ok(ExitCode::SUCCESS)
}

pub fn snapshot_run(ctx: &super::Context, args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    let manifest = super::plan::manifest_with_envs(args.file, std::slice::from_ref(&args.env))?;
    let store = super::containers::store(ctx)?;
    let name = format!("{}-{}", manifest.project, args.env);
    let c = {
        let _shared = store.lock_shared()?;
        container::find(&store.containers_dir(), &name).map_err(|e| match e {
            container::ContainerError::NotFound(_) => anyhow::anyhow!(
                "env {:?} of project {:?} has no container ({name}); `berth up {}` makes one",
                args.env,
                manifest.project,
                args.env
            ),
            other => other.into(),
        })?
    };
    let tag = args.tag.unwrap_or_else(|| snapshot_tag(&manifest.project, &args.env, SystemTime::now()));
    let by = format!("berth snapshot {}/{}", manifest.project, args.env);
    let done = commit_locked(&store, &c, args.common.options(Some(tag), by, None))?;
    println!("{}", done.tag.as_deref().unwrap_or_default());
    eprintln!("snapshot of env {} (container {}): image {}", args.env, c.record.name, done.manifest);
    Ok(ExitCode::SUCCESS)
}

fn commit_locked(store: &Store, c: &Container, opts: CommitOptions) -> anyhow::Result<Committed> {
    let _exclusive = store.lock_exclusive()?;
    commit(store, c, &opts).with_context(|| format!("cannot commit container {}", c.record.name))
}

/// Write a container's whole filesystem (its image's layers with its
/// changes on top, without mounted volumes, /proc, /sys or /dev contents)
/// as a flat tar, to standard output or a file. `berth import` and `docker
/// import` read it back.
#[derive(clap::Args)]
#[command(after_help = "Example: berth export web -o web.tar   (or: berth export web | gzip > web.tar.gz)")]
pub struct ExportArgs {
    /// The container (name or id; in a project, an env name)
    container: String,
    /// Write the tar to FILE (replaced whole when complete) instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Freeze a running container while its files are read
    #[arg(short, long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pause: bool,
}

pub fn export_run(ctx: &super::Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    if args.output.is_none() && stdout.is_terminal() {
        bail!("refusing to write a tar to a terminal; give -o FILE or redirect standard output");
    }
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    let _shared = store.lock_shared()?;
    let opts = ExportOptions { pause: args.pause };
    match &args.output {
        Some(file) => {
            export_to_file(&c, file, opts)?;
        }
        None => {
            let out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let (mut out, _) = export(&c, out, opts)?;
            out.flush().context("cannot write the tar to standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
