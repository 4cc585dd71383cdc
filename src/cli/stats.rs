//! `berth stats`: live CPU, memory and task usage of containers, in
//! Docker's columns.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use berth::runtime::container;
use berth::runtime::stats::{self, Monitor, Reading};

use super::output::table;

/// Time between two readings (Docker's is about a second, too).
const INTERVAL: Duration = Duration::from_secs(1);

/// Show containers' CPU, memory and task usage, refreshed every second
///
/// CPU % is the CPU time used in the last second over that second (200% is
/// two CPUs busy). MEM USAGE leaves the inactive page cache out, as Docker
/// does; LIMIT is the memory limit, or the host's memory without one.
#[derive(clap::Args)]
#[command(after_help = "Example: berth stats --no-stream web db")]
pub struct Args {
    /// Containers to show [default: every running container]
    containers: Vec<String>,
    /// Show stopped containers too (without names)
    #[arg(short, long)]
    all: bool,
    /// Print one reading (taken over one second) and exit
    #[arg(long)]
    no_stream: bool,
    /// One JSON array per reading, one line each
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let containers = if args.containers.is_empty() {
        let _shared = store.lock_shared()?;
        let all = container::list(&store.containers_dir())?;
        if args.all { all } else { stats::running(all)? }
    } else {
        args.containers.iter().map(|name| super::containers::find(&store, name)).collect::<anyhow::Result<_>>()?
    };
    let mut monitor = Monitor::new(&containers, INTERVAL)?;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let readings = monitor.read()?;
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&readings)?)?;
        } else {
            if terminal && !args.no_stream {
                // Clear the screen and redraw at the top, as `docker stats` does.
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(out, "{}", render(&readings))?;
            if !terminal && !args.no_stream {
                // Readings one after another in a file or pipe: a blank line between.
                writeln!(out)?;
            }
        }
        out.flush()?;
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn render(readings: &[Reading]) -> String {
    let rows: Vec<Vec<String>> = readings
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.name.clone(),
                format!("{:.2}%", r.cpu_percent),
                format!("{} / {}", binary_size(r.memory_usage), binary_size(r.memory_limit)),
                format!("{:.2}%", r.memory_percent),
                r.pids.to_string(),
            ]
        })
        .collect();
    table(&["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"], &rows)
}

/// `bytes` in binary units with four significant digits, as Docker prints
/// memory: `0B`, `512KiB`, `1.953MiB`, `23.51GiB`.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = match value {
        v if v < 10.0 => 3,
        v if v < 100.0 => 2,
        v if v < 1000.0 => 1,
        _ => 0,
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::binary_size;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(512 << 10), "512KiB");
        assert_eq!(binary_size(2_048_000), "1.953MiB");
        assert_eq!(binary_size(32 << 20), "32MiB");
        assert_eq!(binary_size(25_240_000_000), "23.51GiB");
    }
}
