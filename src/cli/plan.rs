//! `berth plan`: print what `berth up` would do, changing nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use berth::plan::containers::ContainerAction;
use berth::plan::{NodeAction, NodePlan, Plan};

use super::output::{Paint, shorten};

/// Show what `berth up` would build and run, without changing anything.
///
/// Prints the layer graph of every env: each node's step, cache key and
/// whether the store already has it (`=`) or it must be built (`+`).
#[derive(clap::Args)]
#[command(after_help = "Example: berth plan -f manifests/demo/berth.toml --json")]
pub struct Args {
    /// The manifest [default: berth.toml here or in the nearest parent directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print the plan as JSON
    #[arg(long)]
    json: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error
    #[arg(long)]
    exit_code: bool,
    /// Plan to recreate containers whose files drifted (as `up --reset-drift`)
    #[arg(long)]
    reset_drift: bool,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let file = manifest_path(args.file)?;
    let (manifest, plan) = berth::plan::plan_project(&file, &ctx.store_root()?, args.reset_drift)?;
    if args.json {
        let mut value = serde_json::to_value(&plan)?;
        value["manifest"] = serde_json::json!(manifest.file);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", render(&plan, &manifest.file.display().to_string(), &Paint::stdout()));
    }
    Ok(if args.exit_code && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// The manifest (as [`manifest_path`] finds it), loaded, with every one of
/// `envs` declared in it.
pub fn manifest_with_envs(given: Option<PathBuf>, envs: &[String]) -> anyhow::Result<berth::manifest::Manifest> {
    let file = manifest_path(given)?;
    let manifest = berth::manifest::load(&file)?;
    if let Some(unknown) = envs.iter().find(|e| !manifest.envs.contains_key(*e)) {
        let declared: Vec<&str> = manifest.envs.keys().map(String::as_str).collect();
        anyhow::bail!("{}: declares no env {unknown:?}; its envs are: {}", file.display(), declared.join(", "));
    }
    Ok(manifest)
}

/// The manifest to use: `-f FILE`, or `berth.toml` here or in the nearest
/// parent directory.
pub fn manifest_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(f) = given {
        return Ok(f);
    }
    let here = std::env::current_dir().context("cannot read the current directory")?;
    berth::manifest::find(&here).ok_or_else(|| {
        anyhow!(
            "no berth.toml in {} or any parent directory; run `berth init` to write one, or pass -f FILE",
            here.display()
        )
    })
}

fn render(plan: &Plan, file: &str, paint: &Paint) -> String {
    let mut out = format!("{} (project \"{}\")\n\n", paint.bold(file), plan.project);
    let shared = plan.nodes.iter().filter(|n| n.envs.len() > 1).count();
    let n = plan.nodes.len();
    out += &format!("Layer graph: {n} node{}, {shared} shared by more than one env\n", if n == 1 { "" } else { "s" });
    let roots: Vec<&NodePlan> = plan.nodes.iter().filter(|n| n.parent.is_none()).collect();
    for root in roots {
        tree(plan, root, "", "", paint, &mut out);
    }
    out += "\nEnvs:\n";
    for (name, env) in &plan.envs {
        let spec = &env.spec;
        let mut parts = vec![format!("image {}", spec.image.short())];
        if !spec.ports.is_empty() {
            let ports: Vec<String> = spec.ports.iter().map(|p| p.listing()).collect();
            parts.push(format!("ports {}", ports.join(",")));
        }
        if let Some(cmd) = &spec.cmd {
            parts.push(format!("cmd {}", shorten(&cmd.join(" "), 40)));
        }
        if !spec.depends_on.is_empty() {
            parts.push(format!("after {}", spec.depends_on.join(",")));
        }
        if !spec.userns.is_host() {
            parts.push(format!("userns {}", spec.userns));
        }
        parts.push(network_part(spec.network));
        if spec.read_only {
            parts.push("read-only".to_owned());
        }
        if !spec.tmpfs.is_empty() {
            let tmpfs: Vec<String> = spec.tmpfs.iter().map(ToString::to_string).collect();
            parts.push(format!("tmpfs {}", tmpfs.join(",")));
        }
        if !spec.init {
            parts.push("no init".to_owned());
        }
        out += &format!("  {name:<12} {}\n", parts.join("  "));
    }
    out += "\nContainers:\n";
    let (mut create, mut change, mut remove) = (0, 0, 0);
    for c in &plan.containers {
        let line = match &c.action {
            ContainerAction::Create => {
                create += 1;
                format!("{} {}: create", paint.green("+"), c.env)
            }
            ContainerAction::Recreate { changes } => {
                change += 1;
                format!("{} {}: recreate ({})", paint.yellow("~"), c.env, changes.join("; "))
            }
            ContainerAction::Start { status } => {
                change += 1;
                format!("{} {}: start (it is {status})", paint.yellow("~"), c.env)
            }
            ContainerAction::Remove => {
                remove += 1;
                format!("{} {}: remove (no longer declared)", paint.red("-"), c.env)
            }
            ContainerAction::Unchanged => {
                let status = c.status.as_deref().unwrap_or("running");
                format!("{} {}: {status}, up to date", paint.dim("="), c.env)
            }
            ContainerAction::ImageOnly => format!("{} {}: image only (no command to run)", paint.dim("="), c.env),
        };
        out += &format!("  {line}\n");
        let runs = !matches!(c.action, ContainerAction::Remove | ContainerAction::ImageOnly);
        if c.privileged && runs {
            out += &format!(
                "      {} every capability, no seccomp filter, the host's devices, /sys writable: it can take over this host\n",
                paint.red("PRIVILEGED:")
            );
        }
        if !c.security.is_empty() && runs {
            out += &format!("      {} {}\n", paint.yellow("security:"), c.security.join(", "));
        }
        if let Some(limits) = &c.limits_unavailable {
            out +=
                &format!("      {} {limits}; `berth up --limits=ignore` runs without them\n", paint.yellow("limits:"));
        }
        if !c.drift.is_empty() && !matches!(c.action, ContainerAction::Recreate { .. }) {
            let shown: Vec<&str> = c.drift.iter().take(3).map(String::as_str).collect();
            let more = if c.drift.len() > 3 { ", …" } else { "" };
            out += &format!(
                "      {} {} paths changed inside the container ({}{more}); `berth up --reset-drift` recreates it\n",
                paint.yellow("drift:"),
                c.drift.len(),
                shown.join(", ")
            );
        }
    }
    let build = plan.to_build();
    out += &format!(
        "\nPlan: {} to build, {} cached; {create} to create, {change} to change, {remove} to remove.\n",
        if build > 0 { paint.green(&build.to_string()) } else { "0".to_owned() },
        plan.nodes.len() - build
    );
    out
}

/// How an env's network shows in the plan: what it reaches.
fn network_part(network: berth::manifest::values::Network) -> String {
    use berth::manifest::values::Network;
    use berth::runtime::network::Outbound;
    match (network, berth::runtime::network::outbound()) {
        (Network::Project, Outbound::Bridge) => match berth::runtime::network::ipv6::host_support() {
            Ok(()) => "network project (outbound, IPv4 and IPv6)".to_owned(),
            Err(why) => format!("network project (outbound, IPv4 only: {why})"),
        },
        (Network::Project, Outbound::Usermode(tool)) => format!("network project (outbound via {})", tool.program()),
        (Network::Project, Outbound::LoopbackOnly(why)) => format!("network project (loopback only: {why})"),
        (other, _) => format!("network {other}"),
    }
}

fn tree(plan: &Plan, node: &NodePlan, lead: &str, branch: &str, paint: &Paint, out: &mut String) {
    let (sym, kind) = match node.action {
        NodeAction::Build(_) => (paint.green("+"), paint.green(node.step.kind())),
        NodeAction::Cached => (paint.dim("="), paint.dim(node.step.kind())),
    };
    let desc = shorten(&node.step.describe(), 60);
    out.push_str(&format!(
        "{sym} {}  {lead}{branch}{kind} {desc}  {}\n",
        node.key.short(),
        paint.dim(&format!("[{}]", node.envs.join(", ")))
    ));
    let children: Vec<&NodePlan> = plan.nodes.iter().filter(|n| n.parent == Some(node.key)).collect();
    let child_lead = format!(
        "{lead}{}",
        match branch {
            "" => "",
            "└─ " => "   ",
            _ => "│  ",
        }
    );
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        tree(plan, child, &child_lead, if last { "└─ " } else { "├─ " }, paint, out);
    }
}
