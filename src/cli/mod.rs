//! Command-line interface: clap argument structs, one small file per verb,
//! output formatting and exit codes. Verbs call into the `berth` library and
//! print what it returns; they decide nothing themselves.
//!
//! Exit codes: 0 success, 1 error, 2 bad usage or (with `plan --exit-code`)
//! changes pending.

mod archive;
mod attach;
mod build;
mod commit;
mod containers;
mod diff;
mod exec;
mod follow;
mod freeze;
mod gc;
mod images;
mod import;
mod init;
mod inspect;
mod lifecycle;
mod logs;
mod output;
mod plan;
mod progress;
mod ps;
mod registry;
mod run;
mod stats;
mod tags;
mod top;
mod transfer;
mod up;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// berth: declarative, reproducible environments in real Linux containers.
///
/// Write your environments into berth.toml; `berth plan` shows what
/// `berth up` would build and run. Images are plain OCI.
#[derive(Parser)]
#[command(name = "berth", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The store's directory [default: /var/lib/berth as root, else $XDG_DATA_HOME/berth]
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // Declarative, per project.
    /// Write a commented starter berth.toml in the current directory
    Init(init::Args),
    /// Show what `berth up` would build and run, without changing anything
    Plan(plan::Args),
    /// Build and start the project's envs to match berth.toml
    Up(up::Args),
    /// Stop and remove a project's containers and network (by manifest, -p NAME or --from FILE.tar)
    Down(up::DownArgs),
    /// List containers and their state (-a for stopped ones too)
    Ps(ps::Args),
    /// Show a container's output (in a project, an env's)
    Logs(logs::Args),
    /// Run a command in a running container (in a project, an env)
    Exec(exec::Args),
    /// Show the files a container (or env) added, changed or deleted
    Diff(diff::Args),
    /// Freeze an env's container into an image (PROJECT/ENV:snapshot-…)
    Snapshot(commit::SnapshotArgs),
    /// Snapshot an env and save it with its config, for `berth up --from`
    Freeze(freeze::Args),
    /// Resolve packages and base digests into berth.lock
    Lock(build::LockArgs),
    /// Build the project's images without starting containers
    Build(build::Args),

    // Imperative, Docker's verbs.
    /// Run a command in a new container
    Run(Box<run::Args>),
    /// Start stopped containers
    Start(lifecycle::StartArgs),
    /// Stop running containers
    Stop(lifecycle::StopArgs),
    /// Restart containers
    Restart(lifecycle::RestartArgs),
    /// Remove containers
    Rm(lifecycle::RmArgs),
    /// Send a signal to running containers
    Kill(lifecycle::KillArgs),
    /// Show the processes running in a container
    Top(top::Args),
    /// Show containers' CPU, memory and task usage (live; --no-stream for one reading)
    Stats(stats::Args),
    /// Attach to a running container's input and output
    Attach(attach::Args),
    /// List images in the store
    Images(images::Args),
    /// Give an image another name
    Tag(tags::TagArgs),
    /// Remove images
    Rmi(tags::RmiArgs),
    /// Show the layers of an image and the steps that made them
    History(tags::HistoryArgs),
    /// Show details of an image, container or image archive
    Inspect(inspect::Args),
    /// Make an image from a container's changes
    Commit(commit::CommitArgs),
    /// Write a container's filesystem as a tar
    Export(commit::ExportArgs),
    /// Make an image from a filesystem tar
    Import(import::Args),
    /// Write images to an OCI or Docker archive
    Save(archive::SaveArgs),
    /// Read images from an OCI or Docker archive
    Load(archive::LoadArgs),
    /// Fetch an image from a registry
    Pull(registry::PullArgs),
    /// Send an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry (credentials saved for pull and push)
    Login(registry::LoginArgs),
    /// Log out of a registry (forget its saved credentials)
    Logout(registry::LogoutArgs),
    /// Search a registry for repositories by name
    Search(registry::SearchArgs),
    /// Remove unused blobs, layers and cache entries from the store
    Gc(gc::GcArgs),
    /// Store-wide commands: `berth system df` shows what uses space
    System(gc::SystemArgs),
    /// Check the store's blobs, layers, tags and cache (--repair fixes what it can)
    Fsck(gc::FsckArgs),
    /// Show berth's version
    Version(version::Args),
}

/// Parses the command line, runs the verb and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_on_closed_output();
    match std::panic::catch_unwind(move || run(cli)) {
        Ok(code) => code,
        // Standard output was closed under us (`berth images | head`): the
        // verb has unwound (its guards ran); exit as a shell reports SIGPIPE.
        Err(payload) if is_broken_pipe(payload.as_ref()) => ExitCode::from(141),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Printing to a closed pipe panics in Rust (SIGPIPE is ignored); that is
/// no bug to report, so the panic message is left out for it.
fn quiet_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default(info);
        }
    }));
}

fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    text.starts_with("failed printing to std") && text.contains("Broken pipe")
}

fn run(cli: Cli) -> ExitCode {
    let mut ctx = Context { root: cli.root };
    if cli.command.needs_userns() && berth::sys::euid() != 0 {
        // Rootless: the store is decided by who the user is, before this
        // process becomes root of the store's user namespace.
        ctx.root = ctx.store_root().ok();
        if let Some(root) = &ctx.root
            && let Err(e) = berth::runtime::userns::enter(root)
        {
            output::error(&anyhow::Error::from(e));
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Images(a) => images::run(&ctx, a),
        Command::Version(a) => version::run(&ctx, a),
        Command::Up(a) => up::run(&ctx, a),
        Command::Down(a) => up::down(&ctx, a),
        Command::Ps(a) => ps::run(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::Exec(a) => exec::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Snapshot(a) => commit::snapshot_run(&ctx, a),
        Command::Freeze(a) => freeze::run(&ctx, a),
        Command::Lock(a) => build::lock(&ctx, a),
        Command::Build(a) => build::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, *a),
        Command::Start(a) => lifecycle::start(&ctx, a),
        Command::Stop(a) => lifecycle::stop(&ctx, a),
        Command::Restart(a) => lifecycle::restart(&ctx, a),
        Command::Rm(a) => lifecycle::rm(&ctx, a),
        Command::Kill(a) => lifecycle::kill(&ctx, a),
        Command::Top(a) => top::run(&ctx, a),
        Command::Stats(a) => stats::run(&ctx, a),
        Command::Attach(a) => attach::run(&ctx, a),
        Command::Tag(a) => tags::tag(&ctx, a),
        Command::Rmi(a) => tags::rmi(&ctx, a),
        Command::History(a) => tags::history(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Commit(a) => commit::commit_run(&ctx, a),
        Command::Export(a) => commit::export_run(&ctx, a),
        Command::Import(a) => import::run(&ctx, a),
        Command::Save(a) => archive::save(&ctx, a),
        Command::Load(a) => archive::load(&ctx, a),
        Command::Pull(a) => registry::pull(&ctx, a),
        Command::Push(a) => registry::push(&ctx, a),
        Command::Login(a) => registry::login(&ctx, a),
        Command::Logout(a) => registry::logout(&ctx, a),
        Command::Search(a) => registry::search(&ctx, a),
        Command::Gc(a) => gc::gc(&ctx, a),
        Command::System(a) => gc::system(&ctx, a),
        Command::Fsck(a) => gc::fsck(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Whether the verb, run by an ordinary user, works inside the store's
    /// user namespace (`runtime::userns`): everything but what only reads
    /// the user's own files.
    fn needs_userns(&self) -> bool {
        !matches!(
            self,
            Command::Init(_)
                | Command::Plan(_)
                | Command::Ps(_)
                | Command::Logs(_)
                | Command::Images(_)
                | Command::History(_)
                | Command::Inspect(_)
                | Command::Login(_)
                | Command::Logout(_)
                | Command::Search(_)
                | Command::Version(_)
        )
    }
}

/// What every verb may need from the global options.
pub struct Context {
    root: Option<PathBuf>,
}

impl Context {
    /// The store directory: `--root`/`BERTH_ROOT`, else the default for this user.
    pub fn store_root(&self) -> anyhow::Result<PathBuf> {
        if let Some(root) = &self.root {
            return Ok(root.clone());
        }
        let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Ok(berth::store::default_root(berth::sys::euid(), xdg.as_deref(), home.as_deref())?)
    }
}
