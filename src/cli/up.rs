//! `berth up` and `berth down`: make the machine match berth.toml, or take
//! the project away.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use berth::build::{BuildOptions, Event};
use berth::plan::up::Action;

/// Build what is missing and start the project's envs to match berth.toml
/// (in depends_on order, sharing one network namespace, waiting for the
/// health of envs others depend on). Without -d, follow their output,
/// prefixed by name, until Ctrl-C, which stops them.
#[derive(clap::Args)]
#[command(after_help = "Example: berth up -d -f manifests/demo/berth.toml")]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Return once everything runs
    #[arg(short, long)]
    detach: bool,
    /// Install exactly the package versions in berth.lock
    #[arg(long)]
    locked: bool,
    /// Keep the machine matching berth.toml as files change (not built yet)
    #[arg(long)]
    watch: bool,
    /// Envs to bring up (with what they depend on) [default: all]
    envs: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    if args.watch {
        eprintln!(
            "berth: `berth up --watch` is not built yet (issue #5); nothing was done. `berth up` without it works."
        );
        return Ok(ExitCode::from(2));
    }
    let file = super::plan::manifest_path(args.file)?;
    let opts = BuildOptions {
        envs: args.envs,
        locked: args.locked,
        no_cache: false,
        refresh_packages: false,
        epoch: berth::oci::source_date_epoch()?,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let progress = super::progress::Progress::new(std::io::stderr().is_terminal());
    let report = |e: Event| {
        if !matches!(e, Event::Cached { .. }) {
            progress.event(e)
        }
    };
    let root = ctx.store_root()?;
    let actions = berth::plan::up::up(&file, &root, &opts, &report)?;
    let changed = actions.values().filter(|a| !matches!(a, Action::Unchanged | Action::ImageOnly)).count();
    for (env, action) in &actions {
        let what = match action {
            Action::Unchanged | Action::ImageOnly => continue,
            Action::Started => "started",
            Action::Created => "created and started",
            Action::Recreated => "recreated (its image or config changed)",
            Action::Removed => "removed (no longer declared)",
        };
        eprintln!("{env}: {what}");
    }
    if changed == 0 {
        eprintln!("nothing to do: every env is up to date and running");
    }
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let manifest = berth::manifest::load(&file)?;
    follow_until_interrupted(&root, &manifest.project)
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
