//! `berth run`: create a container from an image and start it.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use berth::manifest::values::{ByteSize, Duration};
use berth::runtime::create::RunOptions;
use berth::runtime::ports::PortMapping;
use berth::runtime::security::Capability;
use berth::runtime::spec::{BindMount, NetworkMode, Resources};
use berth::runtime::tmpfs::Tmpfs;

/// Run a command in a new container.
///
/// In the foreground (the default) berth supervises the container itself and
/// exits with its status; with -d a shim process owns it and berth prints its
/// id. -it gives the command a terminal.
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth run --rm -it busybox sh\n         berth run -d --name web -p 8080:80 busybox httpd -f -p 80\n         berth run --rm --security-opt seccomp=./profile.json busybox mkdir /x\n         berth run --rm --cap-drop ALL --cap-add NET_BIND_SERVICE busybox id\n         berth run --rm --network bridge debian apt-get update   # outbound access, as root\n         berth run --rm --read-only --tmpfs /cache:size=64m busybox touch /cache/x\n         berth run --rm --no-init busybox sh -c 'echo $$'   # prints 1: the command is PID 1\n         berth run --rm --userns=auto busybox id   # as root: container root is nobody on the host"
)]
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
    /// Publish a container port: [ADDR:]HOST:CONTAINER[/tcp|/udp]; ADDR is 127.0.0.1 unless given
    #[arg(short, long = "publish", value_name = "PORTS")]
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
    /// Where no cgroup can apply limits (without root): `apply` refuses to run, `ignore` runs without them and warns
    #[arg(long, env = "BERTH_LIMITS", value_name = "apply|ignore", default_value = "apply", value_parser = parse_limits)]
    pub limits: berth::runtime::create::LimitPolicy,
    /// User namespace: `host` (berth's own) or `auto` (as root: the container gets its own unprivileged id range, its root is nobody on the host) [default: the store's, `[run] userns` in STORE/config.toml, else host]
    #[arg(long, value_name = "host|auto", value_parser = parse_userns)]
    pub userns: Option<berth::runtime::create::UsernsMode>,
    /// Network: `none` (only loopback, the default; `isolated` is the same), `bridge` (as root: a bridge and subnet of the container's own, with outbound access) or `host`
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
    /// A health check, run with /bin/sh -c in the container (needs -d)
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between health checks
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// How long one health check may run before it is killed
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub health_timeout: Duration,
    /// Failures in a row before the container counts as unhealthy
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub health_retries: u32,
    /// Time after start during which failed checks do not count
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub health_start_period: Duration,
    /// Security options, as Docker's: seccomp=unconfined (no seccomp filter), seccomp=PROFILE.json (Docker's or OCI's JSON profile instead of the default, Docker's), no-new-privileges (setuid programs grant nothing)
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opt: Vec<String>,
    /// Add a capability to Docker's default set (NET_ADMIN or CAP_NET_ADMIN; ALL for every one)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<Capability>,
    /// Drop a capability from the set (ALL drops every one; --cap-add then adds back)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<Capability>,
    /// Give the container the host, as Docker does: every capability, no seccomp filter, the host's devices, nothing masked, /sys writable
    #[arg(long)]
    pub privileged: bool,
    /// Mount the root filesystem read-only; /tmp, /var/tmp and /run get a tmpfs unless a volume or --tmpfs is there
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs: PATH[:OPTIONS] (size=64m, mode=1777, exec, …); nosuid,nodev,noexec unless OPTIONS lift them
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<Tmpfs>,
    /// Run berth's init as PID 1, forwarding signals and reaping orphans (the default)
    #[arg(long, overrides_with = "no_init")]
    pub init: bool,
    /// Run the command itself as PID 1, as Docker does without --init (for systemd and other inits)
    #[arg(long, overrides_with = "init")]
    pub no_init: bool,
    /// Bind mount a host path: SRC:DEST[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DEST[:ro]")]
    pub volume: Vec<String>,
    /// The image: a name from `berth images`, or an id
    pub image: String,
    /// The command and its arguments [default: the image's]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse().map_err(|e: berth::manifest::values::ValueError| e.to_string())
}

fn parse_size(s: &str) -> Result<ByteSize, String> {
    s.parse().map_err(|e: berth::manifest::values::ValueError| e.to_string())
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    if args.rm && args.restart != "no" {
        bail!("--rm and --restart {} conflict: a container removed on exit cannot be restarted", args.restart);
    }
    if !args.detach && args.restart != "no" {
        bail!("--restart needs -d: restarts are applied by the container's shim, which only detached containers have");
    }
    let restart: berth::runtime::restart::Policy = args.restart.parse()?;
    if args.health_cmd.is_some() && !args.detach {
        bail!(
            "--health-cmd needs -d: health checks are run by the container's shim, which only detached containers have"
        );
    }
    if args.health_retries == 0 || args.health_interval.0.is_zero() || args.health_timeout.0.is_zero() {
        bail!("--health-retries, --health-interval and --health-timeout must be above 0");
    }
    let health = args.health_cmd.as_ref().map(|cmd| berth::runtime::health::HealthCheck {
        cmd: vec!["/bin/sh".to_owned(), "-c".to_owned(), cmd.clone()],
        interval: args.health_interval.0,
        timeout: args.health_timeout.0,
        retries: args.health_retries,
        start_period: args.health_start_period.0,
    });
    let bridge = args.network == "bridge";
    let network = match args.network.as_str() {
        "none" | "isolated" | "default" => NetworkMode::None,
        "bridge" => {
            if let berth::runtime::network::Outbound::LoopbackOnly(why) = berth::runtime::network::outbound() {
                bail!("--network bridge: no outbound access here: {why}; leave it out for loopback only")
            }
            NetworkMode::None // joined below, once the namespace is made
        }
        "host" => NetworkMode::Host,
        other => bail!(
            "--network {other:?}: expected none (a private network with only loopback), bridge (outbound access) or host"
        ),
    };
    let mut resources =
        Resources { memory_bytes: args.memory.map(|m| m.0 as i64), pids: args.pids_limit, ..Resources::default() };
    if let Some(cpus) = args.cpus {
        if !(cpus >= berth::runtime::cgroup::MIN_CPUS && cpus.is_finite()) {
            bail!("--cpus {cpus}: expected a number of CPUs of at least 0.01, as in 0.5");
        }
        resources.set_cpus(cpus);
    }
    let env = args
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some(_) => Ok(e.clone()),
            None => std::env::var(e)
                .map(|v| format!("{e}={v}"))
                .map_err(|_| anyhow!("-e {e}: no such variable in berth's environment; write {e}=VALUE")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let volumes = args.volume.iter().map(|v| parse_volume(v)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut security = berth::runtime::security::SecurityOptions::default();
    let cwd = std::env::current_dir()?;
    for opt in &args.security_opt {
        security.add(opt, &cwd)?;
    }
    security.cap_add = args.cap_add;
    security.cap_drop = args.cap_drop;
    security.privileged = args.privileged;
    let opts = RunOptions {
        image: args.image.clone(),
        name: args.name,
        command: args.command,
        entrypoint: args.entrypoint.map(|e| vec![e]),
        env,
        workdir: args.workdir,
        user: args.user,
        ports: args.publish,
        resources,
        network,
        hostname: args.hostname,
        aliases: Vec::new(),
        restart: restart.to_string(),
        auto_remove: args.rm,
        tty: args.tty,
        interactive: args.interactive,
        volumes,
        labels: Default::default(),
        health,
        limits: args.limits,
        userns: args.userns,
        security,
        read_only: args.read_only,
        tmpfs: args.tmpfs,
        no_init: args.no_init,
    };
    let store = berth::store::Store::open(&ctx.store_root()?)?;
    let container = {
        let _lock = store.lock_exclusive()?;
        if bridge {
            berth::runtime::netns::create_with_own_network(&store, opts.clone())?
        } else {
            berth::runtime::create::create(&store, &opts, &berth::runtime::network::resolv_conf(None))?
        }
    };
    if let Some(warning) = berth::runtime::create::limits_warning(&container, &opts.resources) {
        eprintln!("berth: warning: {warning}");
    }
    if args.detach {
        return match berth::runtime::shim::spawn(&container.paths.dir) {
            Ok(()) => {
                println!("{}", container.record.id);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("berth: {e}");
                Ok(exit_code(e.exit_code().unwrap_or(CANNOT_RUN)))
            }
        };
    }
    match berth::runtime::foreground::run(&container) {
        Ok(code) => Ok(exit_code(code)),
        // The container's init has already said why the command did not run.
        Err(e) if e.exit_code().is_some() => Ok(exit_code(e.exit_code().unwrap_or(CANNOT_RUN))),
        Err(e) => {
            eprintln!("berth: {e}");
            Ok(exit_code(CANNOT_RUN))
        }
    }
}

/// `--limits apply|ignore`.
pub fn parse_limits(s: &str) -> Result<berth::runtime::create::LimitPolicy, String> {
    use berth::runtime::create::LimitPolicy;
    match s {
        "apply" => Ok(LimitPolicy::Apply),
        "ignore" => Ok(LimitPolicy::Ignore),
        other => Err(format!(
            "{other:?}: expected apply (refuse to run where limits cannot apply) or ignore (run without them, with a warning)"
        )),
    }
}

/// `--userns host|auto` (empty: host, as podman takes it).
fn parse_userns(s: &str) -> Result<berth::runtime::create::UsernsMode, String> {
    if s.is_empty() { Ok(berth::runtime::create::UsernsMode::Host) } else { s.parse() }
}

/// Docker's exit status when the container could not be run at all.
const CANNOT_RUN: i32 = 125;

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}

fn parse_volume(v: &str) -> anyhow::Result<BindMount> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, readonly) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        _ => bail!("-v {v:?}: expected SRC:DEST[:ro]"),
    };
    if !dst.starts_with('/') {
        bail!("-v {v:?}: the destination {dst:?} must be an absolute path in the container");
    }
    let source = std::path::absolute(src)?;
    if !source.exists() {
        bail!("-v {v:?}: {} does not exist", source.display());
    }
    Ok(BindMount { source, destination: dst.into(), readonly })
}
