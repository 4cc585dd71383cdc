//! `berth logs`: a container's output; several containers' (or, in a
//! project with no name given, every env's), each line prefixed by the
//! container's name, as `docker compose logs` shows them.

use std::process::ExitCode;
use std::time::SystemTime;

use berth::runtime::container::Container;
use berth::runtime::logs::{LogError, LogQuery, Outputs, follow_logs, parse_time_arg, read_logs};
use berth::runtime::state::{self, Status};

use super::follow::Prefixed;

/// Show a container's output, as it printed it. Several containers (or, in
/// a project directory with none named, all its envs) are shown with each
/// line prefixed by the container's name.
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth logs -f --tail 20 -t web\n         berth logs -f          # every env of the project here"
)]
pub struct Args {
    /// Keep printing new output until the container exits
    #[arg(short, long)]
    follow: bool,
    /// Only output since this time (RFC 3339, or relative such as 10m)
    #[arg(long)]
    since: Option<String>,
    /// Only output until this time
    #[arg(long)]
    until: Option<String>,
    /// Only the last N lines
    #[arg(short = 'n', long)]
    tail: Option<usize>,
    /// Show each line's time
    #[arg(short, long)]
    timestamps: bool,
    /// Containers (names or ids; in a project, env names) [default: the project's envs]
    containers: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let containers = match args.containers.as_slice() {
        [] => super::containers::project_containers(&store)?,
        names => names.iter().map(|n| super::containers::find(&store, n)).collect::<anyhow::Result<Vec<_>>>()?,
    };
    let now = SystemTime::now();
    let query = LogQuery {
        since: args.since.as_deref().map(|s| parse_time_arg(s, now)).transpose()?,
        until: args.until.as_deref().map(|s| parse_time_arg(s, now)).transpose()?,
        tail: args.tail,
        timestamps: args.timestamps,
        ..LogQuery::default()
    };
    let result = match containers.as_slice() {
        [one] if !args.containers.is_empty() => {
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            show(one, &query, args.follow, &mut Outputs::split(&mut out, &mut err))
        }
        many => {
            let width = many.iter().map(|c| c.record.name.len()).max().unwrap_or(0);
            let each = |c: &Container| {
                let mut out = Prefixed::new(&c.record.name, width, std::io::stdout());
                let mut err = Prefixed::new(&c.record.name, width, std::io::stderr());
                show(c, &query, args.follow, &mut Outputs::split(&mut out, &mut err))
            };
            if args.follow {
                // One follower per container, all at once.
                std::thread::scope(|s| {
                    let threads: Vec<_> = many.iter().map(|c| s.spawn(move || each(c))).collect();
                    threads.into_iter().try_for_each(|t| t.join().expect("a log follower does not panic"))
                })
            } else {
                many.iter().try_for_each(each)
            }
        }
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reader went away (`berth logs web | head`): not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// Writes `c`'s log as `query` asks; with `follow`, until it exits.
fn show(c: &Container, query: &LogQuery, follow: bool, outputs: &mut Outputs<'_>) -> Result<(), LogError> {
    let path = c.paths.log();
    if !follow {
        return read_logs(&path, query, outputs).map(drop);
    }
    let dir = c.paths.dir.clone();
    let exited = move || match state::read_state(&dir) {
        Ok(st) => {
            let o = state::observed_status(&st);
            !matches!(o.status, Status::Running | Status::Restarting | Status::Created | Status::Paused)
        }
        Err(_) => !dir.exists(),
    };
    follow_logs(&path, query, outputs, &exited).map(drop)
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return true;
        }
        cur = err.source();
    }
    false
}
