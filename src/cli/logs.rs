//! `berth logs`: a container's output.

use std::process::ExitCode;
use std::time::SystemTime;

use berth::runtime::logs::{LogQuery, Outputs, follow_logs, parse_time_arg, read_logs};
use berth::runtime::state::{self, Status};

/// Show a container's output, as it printed it.
#[derive(clap::Args)]
#[command(after_help = "Example: berth logs -f --tail 20 -t web")]
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
    container: String,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    let now = SystemTime::now();
    let query = LogQuery {
        since: args.since.as_deref().map(|s| parse_time_arg(s, now)).transpose()?,
        until: args.until.as_deref().map(|s| parse_time_arg(s, now)).transpose()?,
        tail: args.tail,
        timestamps: args.timestamps,
        ..LogQuery::default()
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut outputs = Outputs::split(&mut out, &mut err);
    let path = c.paths.log();
    let result = if args.follow {
        let dir = c.paths.dir.clone();
        let exited = move || match state::read_state(&dir) {
            Ok(st) => {
                let o = state::observed_status(&st);
                !matches!(o.status, Status::Running | Status::Restarting | Status::Created | Status::Paused)
            }
            Err(_) => !dir.exists(),
        };
        follow_logs(&path, &query, &mut outputs, &exited)
    } else {
        read_logs(&path, &query, &mut outputs)
    };
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // The reader went away (`berth logs web | head`): not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
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
