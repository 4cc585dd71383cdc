//! `berth ps`: list containers. Inside a project (a berth.toml here or
//! above, or `-f FILE`) it shows the project's envs: state, health, ports,
//! image and uptime; `--global` (or outside any project) lists every
//! container in the store, as `docker ps` does.

use std::process::ExitCode;

use berth::runtime::container;
use berth::runtime::control;
use berth::runtime::state::{self, Status};
use serde_json::json;

use super::output::{ago, shorten, table};

/// List containers: in a project, its envs (state, health, ports, image,
/// uptime); elsewhere or with --global, every container (running ones; -a
/// for all).
#[derive(clap::Args)]
#[command(
    after_help = "Example: berth ps                  # the envs of the project here\n         berth ps --global -a --json"
)]
pub struct Args {
    /// The project's manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Every container in the store, not only the project's
    #[arg(short, long, conflicts_with = "file")]
    global: bool,
    /// Show all containers, not only running ones
    #[arg(short, long)]
    all: bool,
    /// Only print ids
    #[arg(short, long)]
    quiet: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let manifest = match (&args.file, args.global) {
        (_, true) => None,
        (Some(f), false) => Some(f.clone()),
        (None, false) => std::env::current_dir().ok().and_then(|d| berth::manifest::find(&d)),
    };
    match manifest {
        Some(file) => project(ctx, &file, &args),
        None => global(ctx, &args),
    }
}

/// The project view: one row per env that runs, created or not.
fn project(ctx: &super::Context, file: &std::path::Path, args: &Args) -> anyhow::Result<ExitCode> {
    let manifest = berth::manifest::load(file)?;
    let states = match berth::store::Store::open_existing(&ctx.store_root()?)? {
        Some(store) => {
            let _shared = store.lock_shared()?;
            berth::plan::actual::project_state(&store, &manifest.project, false)?
        }
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&states)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.quiet {
        for s in &states {
            println!("{}", s.container.record.id.short());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for env in manifest.envs.keys() {
        let Some(s) = states.iter().find(|s| &s.env == env) else {
            let runs = manifest.envs[env].cmd.is_some() || manifest.envs[env].entrypoint.is_some();
            if runs {
                rows.push(vec![
                    env.clone(),
                    "not created".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            continue;
        };
        rows.push(env_row(s));
    }
    // Containers of envs no longer declared: `berth up` removes them.
    for s in states.iter().filter(|s| !manifest.envs.contains_key(&s.env)) {
        let mut row = env_row(s);
        row[1] += " (orphan)";
        rows.push(row);
    }
    println!("{}", table(&["ENV", "STATE", "HEALTH", "PORTS", "IMAGE", "UPTIME"], &rows));
    Ok(ExitCode::SUCCESS)
}

fn env_row(s: &berth::plan::actual::EnvState) -> Vec<String> {
    let state = match &s.detail {
        Some(d) if !s.running() => format!("{} — {d}", s.status.as_str()),
        _ => s.status.as_str().to_owned(),
    };
    let health = s.health.as_ref().map_or(String::new(), |h| h.status.as_str().to_owned());
    let uptime = match (&s.started_at, s.running()) {
        (Some(t), true) => ago(t).trim_end_matches(" ago").to_owned(),
        _ => String::new(),
    };
    vec![
        s.env.clone(),
        state,
        health,
        s.ports.iter().map(|p| p.listing()).collect::<Vec<_>>().join(", "),
        format!("{} ({})", s.image, &s.image_digest.hex()[..12]),
        uptime,
    ]
}

/// Every container in the store, as `docker ps` lists them.
fn global(ctx: &super::Context, args: &Args) -> anyhow::Result<ExitCode> {
    let all = match berth::store::Store::open_existing(&ctx.store_root()?)? {
        Some(store) => {
            let _shared = store.lock_shared()?;
            container::list(&store.containers_dir())?
        }
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    for c in &all {
        let st = control::current_state(c)?;
        let observed = st.as_ref().map(state::observed_status);
        let status = observed.as_ref().map_or(Status::Created, |o| o.status);
        let up = matches!(status, Status::Running | Status::Restarting | Status::Paused);
        let health = if up && c.record.health.is_some() { berth::runtime::health::read(&c.paths.dir) } else { None };
        if !args.all && !up {
            continue;
        }
        let code = st.as_ref().and_then(|s| s.exit_code);
        let shown = match (status, &st) {
            (Status::Running, Some(s)) => format!(
                "Up {}{}",
                s.started_at
                    .as_ref()
                    .map_or(String::new(), |t| ago(&t.to_string()).trim_end_matches(" ago").to_owned()),
                health.as_ref().map_or(String::new(), |h| format!(" ({})", h.status.as_str()))
            ),
            (Status::Exited, Some(s)) => {
                let when = s.finished_at.as_ref().map(|t| ago(&t.to_string())).unwrap_or_default();
                let oom = if s.oom_killed { " (OOM killed)" } else { "" };
                match code {
                    Some(code) => format!("Exited ({code}){oom} {when}"),
                    None => "Exited (unknown)".to_owned(),
                }
            }
            (Status::Restarting, _) => format!("Restarting ({})", code.unwrap_or(0)),
            (other, _) => capitalise(other.as_str()),
        };
        let stale = observed.as_ref().and_then(|o| o.stale.as_ref()).map(ToString::to_string);
        rows.push(vec![
            c.record.id.short().to_owned(),
            c.record.image.clone(),
            format!("\"{}\"", shorten(&c.record.command.join(" "), 20)),
            ago(&c.record.created),
            shown.trim_end().to_owned(),
            c.record.ports.iter().map(|p| p.listing()).collect::<Vec<_>>().join(", "),
            c.record.name.clone(),
        ]);
        docs.push(json!({
            "id": c.record.id, "name": c.record.name, "image": c.record.image, "image_digest": c.record.image_digest,
            "command": c.record.command, "created": c.record.created, "status": status.as_str(),
            "exit_code": code, "oom_killed": st.as_ref().is_some_and(|s| s.oom_killed),
            "pid": if up { st.as_ref().and_then(|s| s.pid) } else { None },
            "restart_count": st.as_ref().map_or(0, |s| s.restart_count),
            "ports": c.record.ports, "stale": stale, "labels": c.record.labels, "health": health,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
    } else if args.quiet {
        for r in &rows {
            println!("{}", r[0]);
        }
    } else {
        println!("{}", table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
