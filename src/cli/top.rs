//! `berth top`: the processes of a container.

use std::process::ExitCode;

use berth::runtime::cgroup::{self, Cgroup, CgroupPath};

use super::output::table;

/// Show the processes running in a container.
#[derive(clap::Args)]
#[command(after_help = "Example: berth top web")]
pub struct Args {
    container: String,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    if !berth::runtime::control::is_running(&c)? {
        anyhow::bail!("container {} is not running", c.record.name);
    }
    let group = Cgroup::open(&cgroup::detect()?, &CgroupPath::new(&c.record.cgroup)?)?;
    let mut pids = group.procs()?;
    pids.sort();
    let rows: Vec<Vec<String>> = pids.iter().filter_map(|pid| berth::runtime::top::process_row(*pid)).collect();
    println!("{}", table(&["UID", "PID", "PPID", "TIME", "CMD"], &rows));
    Ok(ExitCode::SUCCESS)
}
