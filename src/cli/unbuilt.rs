//! Verbs that are named in `berth --help` but not built yet. They say so
//! plainly and exit 2; they never pretend to succeed.

use std::ffi::OsString;
use std::process::ExitCode;

/// Whatever the verb will take; ignored until it is built.
#[derive(clap::Args)]
#[command(disable_help_flag = false)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<OsString>,
}

pub fn run(verb: &str, issue: u32, _args: Args) -> anyhow::Result<ExitCode> {
    eprintln!(
        "berth: `berth {verb}` is not built yet (planned in issue #{issue}); nothing was done.\n\
         berth: `berth plan` shows what berth would build for a berth.toml today."
    );
    Ok(ExitCode::from(2))
}
