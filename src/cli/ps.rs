//! `berth ps`: list containers.

use std::process::ExitCode;

use berth::runtime::container;
use berth::runtime::control;
use berth::runtime::state::{self, Status};
use serde_json::json;

use super::output::{ago, shorten, table};

/// List containers (running ones; -a for all).
#[derive(clap::Args)]
#[command(after_help = "Example: berth ps -a --json")]
pub struct Args {
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
        if !args.all && !up {
            continue;
        }
        let code = st.as_ref().and_then(|s| s.exit_code);
        let shown = match (status, &st) {
            (Status::Running, Some(s)) => format!(
                "Up {}",
                s.started_at
                    .as_ref()
                    .map_or(String::new(), |t| ago(&t.to_string()).trim_end_matches(" ago").to_owned())
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
            c.record.ports.iter().map(|p| docker_port(p)).collect::<Vec<_>>().join(", "),
            c.record.name.clone(),
        ]);
        docs.push(json!({
            "id": c.record.id, "name": c.record.name, "image": c.record.image, "image_digest": c.record.image_digest,
            "command": c.record.command, "created": c.record.created, "status": status.as_str(),
            "exit_code": code, "oom_killed": st.as_ref().is_some_and(|s| s.oom_killed),
            "pid": if up { st.as_ref().and_then(|s| s.pid) } else { None },
            "restart_count": st.as_ref().map_or(0, |s| s.restart_count),
            "ports": c.record.ports, "stale": stale, "labels": c.record.labels,
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

/// `127.0.0.1:8080:80/tcp` as Docker shows it: `127.0.0.1:8080->80/tcp`.
fn docker_port(p: &str) -> String {
    let (ports, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    match ports.rsplit_once(':') {
        Some((host, container)) => format!("{host}->{container}/{proto}"),
        None => p.to_owned(),
    }
}
