//! `berth run`: create a container from an image and start it.

use std::process::ExitCode;

use berth::manifest::values::{ByteSize, PortMapping};

/// Run a command in a new container.
///
/// In the foreground (the default) berth supervises the container itself and
/// exits with its status; with -d a shim process owns it and berth prints its
/// id. -it gives the command a terminal.
#[derive(clap::Args)]
#[command(after_help = "Example: berth run --rm -it busybox sh\n         berth run -d --name web -p 8080:80 busybox httpd -f -p 80")]
pub struct Args {
    /// Run in the background and print the container's id
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep standard input open
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// The container's name [default: made up, like steady_harbor]
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass berth's own value)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Publish a container port: [ADDR:]HOST:CONTAINER[/tcp]
    #[arg(short, long = "publish", value_name = "PORTS", value_parser = parse_port)]
    pub publish: Vec<PortMapping>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User to run as: NAME|UID[:GROUP|GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Memory limit, such as 256m or 1GiB
    #[arg(short, long, value_parser = parse_size)]
    pub memory: Option<ByteSize>,
    /// CPU limit, in CPUs (0.5 = half a CPU)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Maximum number of processes
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Network: `none` (only loopback, the default) or `host`
    #[arg(long, default_value = "none")]
    pub network: String,
    /// Host name inside the container [default: the short id]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Override the image's entrypoint
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Bind mount a host path: SRC:DEST[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DEST[:ro]")]
    pub volume: Vec<String>,
    /// The image: a name from `berth images`, or an id
    pub image: String,
    /// The command and its arguments [default: the image's]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_port(s: &str) -> Result<PortMapping, String> {
    s.parse().map_err(|e: berth::manifest::values::ValueError| e.to_string())
}

fn parse_size(s: &str) -> Result<ByteSize, String> {
    s.parse().map_err(|e: berth::manifest::values::ValueError| e.to_string())
}

pub fn run(_ctx: &super::Context, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`berth run` is being wired to the runtime")
}
