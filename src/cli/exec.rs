//! `berth exec`: run a command in a running container.

use std::process::ExitCode;

use berth::runtime::exec::{ExecError, ExecOptions, exec};

/// Run a command in a running container; exits with its status.
#[derive(clap::Args)]
#[command(after_help = "Example: berth exec -it web sh")]
pub struct Args {
    /// Keep standard input open
    #[arg(short, long)]
    interactive: bool,
    /// Give the command a terminal
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// User to run as: NAME|UID[:GROUP|GID]
    #[arg(short, long)]
    user: Option<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    let opts = ExecOptions {
        args: args.command,
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        tty: args.tty,
        interactive: args.interactive,
        quiet: false,
        timeout: None,
    };
    let code = match exec(&c, &opts) {
        Ok(code) => code,
        // Said, but the exit status stays the command's.
        Err(e @ ExecError::PidsLimit { code, .. }) => {
            super::output::error(&e.into());
            code
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
