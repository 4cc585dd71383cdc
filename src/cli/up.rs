//! `berth up` and `berth down`: make the machine match berth.toml, or take
//! the project away.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use berth::build::Event;
use berth::plan::up::{Action, UpOptions};
use std::collections::BTreeMap;

/// Build what is missing and start the project's envs to match berth.toml
/// (in depends_on order, sharing one network namespace, waiting for the
/// health of envs others depend on). Without -d, follow their output,
/// prefixed by name, until Ctrl-C, which stops them. With --watch, stay and
/// apply every change to berth.toml, berth.lock or a copied file until
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
    };
    let progress = super::progress::Progress::new(std::io::stderr().is_terminal());
    let report = |e: Event| {
        if !matches!(e, Event::Cached { .. }) {
            progress.event(e)
        }
    };
    let root = ctx.store_root()?;
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

/// `up --watch`: reconcile on every change until SIGINT or SIGTERM.
fn watch(
    file: &std::path::Path,
    root: &std::path::Path,
    opts: &UpOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use berth::plan::watch::WatchEvent;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
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
    berth::plan::watch::watch(file, root, opts, progress, &mut report, &stop)?;
    eprintln!("stopped watching; the envs keep running (`berth down` stops them)");
    Ok(ExitCode::SUCCESS)
}

/// `up` in the foreground, like `docker compose up`: every env's new output
/// prefixed by its name, until the envs exit or Ctrl-C, which stops them.
fn follow_until_interrupted(root: &std::path::Path, project: &str) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use berth::runtime::logs::{LogQuery, Outputs, follow_logs};
    let store = berth::store::Store::open(root)?;
    let containers = {
        let _shared = store.lock_shared()?;
        berth::plan::up::project_containers(&store, project)?
    };
    let width = containers.iter().map(|c| c.record.name.len()).max().unwrap_or(0);
    let interrupted = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let handle = signals.handle();
    let flag = interrupted.clone();
    let waiter = std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    let since = Some(std::time::SystemTime::now() - std::time::Duration::from_secs(5));
    let followers: Vec<_> = containers
        .iter()
        .cloned()
        .map(|c| {
            let flag = interrupted.clone();
            std::thread::spawn(move || {
                let prefix = format!("{:<width$} | ", c.record.name);
                let mut out = Prefixed { prefix: prefix.clone(), at_line_start: true, inner: std::io::stdout() };
                let mut err = Prefixed { prefix, at_line_start: true, inner: std::io::stderr() };
                let mut outputs = Outputs::split(&mut out, &mut err);
                let query = LogQuery { since, ..LogQuery::default() };
                let dir = c.paths.dir.clone();
                let done = move || {
                    flag.load(Ordering::SeqCst)
                        || berth::runtime::state::read_state(&dir).is_ok_and(|s| {
                            berth::runtime::state::observed_status(&s).status != berth::runtime::state::Status::Running
                        })
                };
                let _ = follow_logs(&c.paths.log(), &query, &mut outputs, &done);
            })
        })
        .collect();
    for f in followers {
        let _ = f.join();
    }
    handle.close();
    let _ = waiter.join();
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("stopping {} envs…", containers.len());
        for c in &containers {
            let _ = berth::runtime::control::stop(c, std::time::Duration::from_secs(10));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A writer that starts every line with a prefix.
struct Prefixed<W: std::io::Write> {
    prefix: String,
    at_line_start: bool,
    inner: W,
}

impl<W: std::io::Write> std::io::Write for Prefixed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + self.prefix.len());
        for &b in buf {
            if self.at_line_start {
                out.extend_from_slice(self.prefix.as_bytes());
            }
            out.push(b);
            self.at_line_start = b == b'\n';
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Stop and remove the project's containers (and with -v its named volumes).
#[derive(clap::Args)]
#[command(after_help = "Example: berth down -v -f manifests/demo/berth.toml")]
pub struct DownArgs {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Also remove the project's named volumes
    #[arg(short, long)]
    volumes: bool,
}

pub fn down(ctx: &super::Context, args: DownArgs) -> anyhow::Result<ExitCode> {
    let file = super::plan::manifest_path(args.file)?;
    let manifest = berth::manifest::load(&file)?;
    for name in berth::plan::up::down(&ctx.store_root()?, &manifest.project, args.volumes)? {
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
