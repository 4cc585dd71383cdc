//! `berth build`: build the project's images without starting containers,
//! or build a Dockerfile into a named image as `docker build` does.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::build::BuildOptions;
use berth::oci::Compression;

/// Build the project's images (all envs, or those named) without starting
/// containers; or, as `docker build`, a Dockerfile into a named image. Nodes
/// the store has are not rebuilt.
#[derive(clap::Args)]
#[command(after_help = "\
Two forms:
  berth build [-f berth.toml] [ENV...]       the project's envs (berth.toml)
  berth build -t NAME:TAG [-f Dockerfile] [--build-arg K=V]... [--target STAGE] CONTEXT
                                             a Dockerfile, as docker build

The Dockerfile form is taken when -t, --build-arg or --target is given, or
when the one argument is a directory holding the Dockerfile (-f, else
CONTEXT/Dockerfile); otherwise the arguments are env names.

Example: berth build -f manifests/demo/berth.toml api
         berth build -t shop/api:1 --build-arg VERSION=2 --target prod .
         berth run --rm shop/api:1")]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent
    /// directory]; with a CONTEXT, the Dockerfile [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Build the Dockerfile in CONTEXT and name the image NAME[:TAG]
    #[arg(short = 't', long = "tag", value_name = "NAME:TAG")]
    tag: Option<String>,
    /// A Dockerfile build arg (repeatable); NAME alone takes the value from the environment
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
    /// The Dockerfile stage to build [default: the last]
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
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
    /// Envs to build [default: all]; or the one CONTEXT directory of a Dockerfile build
    #[arg(value_name = "ENV|CONTEXT")]
    envs: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    if dockerfile_form(&args) {
        return dockerfile(ctx, args);
    }
    build(ctx, args, false)
}

/// Whether `args` ask for a Dockerfile build (see the help text).
fn dockerfile_form(args: &Args) -> bool {
    if args.tag.is_some() || !args.build_args.is_empty() || args.target.is_some() {
        return true;
    }
    let [one] = args.envs.as_slice() else { return false };
    let dir = std::path::Path::new(one);
    dir.is_dir() && args.file.as_ref().map_or_else(|| dir.join("Dockerfile").is_file(), |f| f.is_file())
}

fn dockerfile(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let [context] = args.envs.as_slice() else {
        anyhow::bail!(
            "a Dockerfile build takes one CONTEXT directory, got {}: berth build -t NAME:TAG [-f Dockerfile] CONTEXT",
            if args.envs.is_empty() { "none".to_owned() } else { args.envs.join(" ") }
        );
    };
    let mut build_args = std::collections::BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_owned(), v.to_owned()),
            // `--build-arg NAME` takes NAME from the environment, when set.
            None => match std::env::var(a) {
                Ok(v) => build_args.insert(a.clone(), v),
                Err(_) => None,
            },
        };
    }
    if args.locked {
        anyhow::bail!("--locked pins berth.toml's packages; a Dockerfile build has no berth.lock");
    }
    let req = berth::build::dockerfile::DockerRequest {
        context: PathBuf::from(context),
        dockerfile: args.file,
        tag: args.tag,
        build_args,
        target: args.target,
        no_cache: args.no_cache,
        pins: Default::default(),
        epoch: berth::oci::source_date_epoch()?,
        compression: args.compression,
    };
    let quiet = args.quiet;
    let store = ctx.store_root()?;
    let built =
        super::progress::showing(quiet, |report| berth::build::dockerfile::build_dockerfile(&store, &req, report))?;
    if !quiet {
        for name in &built.unused_build_args {
            eprintln!("warning: build arg {name} was not consumed: no stage built declares ARG {name}");
        }
        if built.built == 0 {
            eprintln!("nothing to build: all {} steps are cached", built.cached);
        } else {
            eprintln!("built {} steps, {} cached", built.built, built.cached);
        }
    }
    match &built.tag {
        Some(tag) => println!("{tag}\t{}", built.digest),
        None => println!("{}", built.digest),
    }
    Ok(ExitCode::SUCCESS)
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
        tag: None,
        build_args: Vec::new(),
        target: None,
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
    let store = ctx.store_root()?;
    let (outcome, lock_changed) =
        super::progress::showing(quiet, |report| berth::build::build_project(&file, &store, &opts, report))?;
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
