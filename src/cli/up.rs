//! `berth up` and `berth down`: make the machine match berth.toml, or take
//! the project away.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth::build::Event;
use berth::plan::up::{Action, UpOptions};

use super::follow::Followers;

/// Build what is missing and start the project's envs to match berth.toml
/// (in depends_on order, sharing one network namespace, waiting for the
/// health of envs others depend on). Without -d, follow their output,
/// prefixed by name, until Ctrl-C, which stops them. With --watch, also
/// apply every change to berth.toml, berth.lock or a copied file, until
/// Ctrl-C, which ends the watch and leaves the envs running.
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth up -d -f manifests/demo/berth.toml\n         berth up --watch        # in a project directory\n         berth up --from qa-handoff.tar"
)]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Return once everything runs
    #[arg(short, long, conflicts_with = "watch")]
    detach: bool,
    /// Install exactly the package versions in berth.lock
    #[arg(long)]
    locked: bool,
    /// Recreate containers whose files changed inside them (`berth plan` shows the drift)
    #[arg(long)]
    reset_drift: bool,
    /// Compression of the layers built now: gzip or zstd
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip", value_parser = super::commit::parse_compression)]
    compression: berth::oci::Compression,
    /// Where no cgroup can apply limits (without root): `apply` refuses to run, `ignore` runs without them and warns
    #[arg(long, env = "BERTH_LIMITS", value_name = "apply|ignore", default_value = "apply", value_parser = super::run::parse_limits)]
    limits: berth::runtime::create::LimitPolicy,
    /// Keep the machine matching berth.toml as files change, until Ctrl-C
    #[arg(long)]
    watch: bool,
    /// Bring up the envs of an archive written by `berth freeze`, with no manifest (implies -d)
    #[arg(long, value_name = "FILE.tar", conflicts_with_all = ["file", "watch", "locked", "reset_drift", "compression", "envs"])]
    from: Option<PathBuf>,
    /// Envs to bring up (with what they depend on) [default: all]
    envs: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(archive) = &args.from {
        for project in berth::plan::freeze::up_from(&ctx.store_root()?, archive)? {
            eprintln!("project {} from {}:", project.project, archive.display());
            for bind in &project.skipped_binds {
                eprintln!("berth: warning: bind mount {bind} left out: its source does not exist on this machine");
            }
            print_actions(&project.actions);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let file = super::plan::manifest_path(args.file)?;
    let opts = UpOptions {
        build: super::build::options(args.envs, args.locked, false, false, args.compression)?,
        reset_drift: args.reset_drift,
        limits: args.limits,
    };
    let progress = super::progress::Progress::new(std::io::stderr().is_terminal());
    let report = |e: Event| {
        if !matches!(e, Event::Cached { .. }) {
            progress.event(e)
        }
    };
    let root = ctx.store_root()?;
    if args.limits == berth::runtime::create::LimitPolicy::Ignore
        && let Some(why) = berth::runtime::cgroup::unavailable()
    {
        eprintln!("berth: warning: limits in {} are not applied (--limits=ignore): {why}", file.display());
    }
    if args.watch {
        return watch(&file, &root, &opts, &report);
    }
    let actions = berth::plan::up::up(&file, &root, &opts, &report)?;
    print_actions(&actions);
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let manifest = berth::manifest::load(&file)?;
    follow_until_interrupted(&root, &manifest.project)
}

fn print_actions(actions: &BTreeMap<String, Action>) {
    let mut changed = 0;
    for (env, action) in actions {
        let what = match action {
            Action::Unchanged | Action::ImageOnly => continue,
            Action::Started => "started".to_owned(),
            Action::Created => "created and started".to_owned(),
            Action::Recreated(why) => format!("recreated ({why})"),
            Action::Removed => "removed (no longer declared)".to_owned(),
        };
        changed += 1;
        eprintln!("{env}: {what}");
    }
    if changed == 0 {
        eprintln!("nothing to do: every env is up to date and running");
    }
}

/// `up --watch`: reconcile on every change, and show the envs' output as
/// the foreground `up` does, until SIGINT or SIGTERM.
fn watch(file: &Path, root: &Path, opts: &UpOptions, progress: &(dyn Fn(Event) + Sync)) -> anyhow::Result<ExitCode> {
    use berth::plan::watch::WatchEvent;
    let stop = interrupt_flag()?;
    let mut report = |event: WatchEvent| match event {
        WatchEvent::Watching { dir } => {
            eprintln!(
                "watching {} for changes to berth.toml, berth.lock and copied files (Ctrl-C to stop)",
                dir.display()
            )
        }
        WatchEvent::Changed { paths } => {
            let names: Vec<String> = paths.iter().take(3).map(|p| p.display().to_string()).collect();
            let more = if paths.len() > 3 { format!(" and {} more", paths.len() - 3) } else { String::new() };
            eprintln!("changed: {}{more}", names.join(", "));
        }
        WatchEvent::Reconciled { actions } => print_actions(actions),
        WatchEvent::Failed { error } => {
            super::output::error(&anyhow::anyhow!("{error}"));
            eprintln!("berth: the running envs are left as they were; watching on");
        }
    };
    let project = berth::manifest::load(file).ok().map(|m| m.project);
    let followers = project.map(|p| Followers::new(root, &p, stop.clone())).transpose()?;
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| berth::plan::watch::watch(file, root, opts, progress, &mut report, &stop));
        if let Some(mut followers) = followers {
            while !watcher.is_finished() {
                let _ = followers.refresh();
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            followers.join();
        }
        watcher.join().expect("the watch thread does not panic")
    })?;
    eprintln!("stopped watching; the envs keep running (`berth down` stops them)");
    Ok(ExitCode::SUCCESS)
}

/// `up` in the foreground, like `docker compose up`: every env's new output
/// prefixed by its name, until the envs exit or Ctrl-C, which stops them.
fn follow_until_interrupted(root: &Path, project: &str) -> anyhow::Result<ExitCode> {
    let stop = interrupt_flag()?;
    let mut followers = Followers::new(root, project, stop.clone())?;
    let count = followers.refresh()?;
    followers.join();
    if stop.load(Ordering::SeqCst) {
        eprintln!("stopping {count} envs… (Ctrl-C again to leave them as they are)");
        let store = berth::store::Store::open(root)?;
        let containers = {
            let _shared = store.lock_shared()?;
            berth::plan::actual::project_containers(&store, project)?
        };
        for c in &containers {
            let _ = berth::runtime::control::stop(c, std::time::Duration::from_secs(10));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag set by the first SIGINT or SIGTERM; a second one ends berth at
/// once (exit 130), for a user who will not wait for a build to finish.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}

/// Stop and remove a project's containers and its network namespace (and
/// with -v its named volumes). The project is berth.toml's, or the one
/// named by -p, or those of a `berth freeze` archive (--from, as `berth up
/// --from` brought them up); the last two need no manifest.
#[derive(clap::Args)]
#[command(after_help = "\
Example: berth down -v -f manifests/demo/berth.toml
         berth down -p shop                  # by name, no manifest needed
         berth down --from qa-handoff.tar    # what `berth up --from qa-handoff.tar` brought up")]
pub struct DownArgs {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with_all = ["project", "from"])]
    file: Option<PathBuf>,
    /// The project to take down, by name, with no manifest (as `docker compose -p`)
    #[arg(short = 'p', long = "project", value_name = "PROJECT", conflicts_with = "from")]
    project: Option<String>,
    /// Take down the projects of an archive written by `berth freeze`, with no manifest
    #[arg(long, value_name = "FILE.tar")]
    from: Option<PathBuf>,
    /// Also remove the project's named volumes
    #[arg(short, long)]
    volumes: bool,
}

pub fn down(ctx: &super::Context, args: DownArgs) -> anyhow::Result<ExitCode> {
    use berth::plan::up::IfUnknown;
    let root = ctx.store_root()?;
    let removed = if let Some(archive) = &args.from {
        berth::plan::freeze::down_from(&root, archive, args.volumes)?
    } else if let Some(project) = args.project {
        berth::plan::up::down(&root, &[project], args.volumes, IfUnknown::Fail)?
    } else {
        let manifest = berth::manifest::load(&super::plan::manifest_path(args.file)?)?;
        berth::plan::up::down(&root, &[manifest.project], args.volumes, IfUnknown::Nothing)?
    };
    for name in removed.iter().flat_map(|(_, names)| names) {
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
