//! `berth gc`, `berth system df` and `berth fsck`: keeping the store small
//! and sound. The library (`berth::maintain`) decides what goes and
//! what is wrong; this file takes the lock, calls it and prints.

use std::process::ExitCode;

use berth::maintain::{self, GcOptions, StorageSize, human_size};
use berth::store::{Store, StoreLock};

use super::output::{ago, table};

/// Remove what nothing needs from the store: blobs and unpacked layers no
/// tag, container or build cache entry uses, and leftovers of interrupted
/// writes. With --keep-storage, also evict build cache entries, least
/// recently used first, until the store fits. Never removes what a tag or a
/// container (running or stopped) needs; an image whose last tag was
/// removed with `berth rmi` and that no container uses goes. With
/// --cache-mounts, also the directories of Dockerfile `RUN
/// --mount=type=cache` mounts, which are kept otherwise.
#[derive(clap::Args)]
#[command(after_help = "\
Example: berth gc --dry-run              list what would go, change nothing
         berth gc                        remove what nothing needs
         berth gc --keep-storage 2GiB    also trim the build cache to fit in 2 GiB
         berth gc --cache-mounts         also empty every RUN --mount=type=cache

Sizes take kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
The cap counts blobs, unpacked layers and cache entries; containers' writable
layers and volumes are not counted and never removed (`berth rm`, `berth down -v`).")]
pub struct GcArgs {
    /// Evict build cache entries until the store takes at most SIZE
    #[arg(long, value_name = "SIZE")]
    keep_storage: Option<StorageSize>,
    /// Also remove the caches of Dockerfile `RUN --mount=type=cache` mounts
    #[arg(long)]
    cache_mounts: bool,
    /// List what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn gc(ctx: &super::Context, args: GcArgs) -> anyhow::Result<ExitCode> {
    let opts = GcOptions { keep_storage: args.keep_storage.map(|s| s.0), cache_mounts: args.cache_mounts };
    let Some(store) = Store::open_existing(&ctx.store_root()?)? else {
        match args.json {
            true => println!("{}", serde_json::json!({ "removed": [], "reclaimed": 0 })),
            false => println!("Total reclaimed space: 0 B"),
        }
        return Ok(ExitCode::SUCCESS);
    };
    let lock = if args.dry_run { store.lock_shared()? } else { store.lock_exclusive()? };
    let plan = maintain::plan_gc(&store, &lock, &opts)?;
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
            return Ok(ExitCode::SUCCESS);
        }
        print_removals("Would delete", &plan.removals);
        println!("Total reclaimable space: {} (dry run: nothing was deleted)", human_size(plan.reclaimable));
        print_cap(plan.size_after, plan.keep_storage);
        return Ok(ExitCode::SUCCESS);
    }
    let cap = plan.keep_storage;
    let report = plan.apply(&store, &lock)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_removals("Deleted", &report.removed);
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    print_cap(report.size_after, cap);
    Ok(ExitCode::SUCCESS)
}

fn print_removals(verb: &str, removals: &[maintain::Removal]) {
    for r in removals {
        let role = r.role.map(|w| format!("{w}, ")).unwrap_or_default();
        let why = r.reason.as_deref().map(|w| format!(", {w}")).unwrap_or_default();
        println!("{verb}: {} {} ({role}{}{why})", r.kind.as_str(), r.name, human_size(r.size));
    }
}

fn print_cap(size_after: Option<u64>, cap: Option<u64>) {
    if let (Some(size), Some(cap)) = (size_after, cap) {
        let note = if size > cap { ": tags and containers need more than that" } else { "" };
        println!("Store size after: {} (cap {}{note})", human_size(size), human_size(cap));
    }
}

/// Store-wide commands.
#[derive(clap::Args)]
#[command(after_help = "Example: berth system df -v")]
pub struct SystemArgs {
    #[command(subcommand)]
    command: SystemCommand,
}

#[derive(clap::Subcommand)]
enum SystemCommand {
    /// Show what uses space: images, containers, build cache, volumes
    Df(DfArgs),
}

/// Show what uses space in the store, like `docker system df`.
#[derive(clap::Args)]
#[command(after_help = "\
Example: berth system df         one row each for images, containers, build cache and volumes
         berth system df -v      and every image, container, cache entry and volume

RECLAIMABLE is what removing only that kind would free: unused images (`berth rmi`,
then `berth gc`), stopped containers (`berth rm`), build cache only images and
containers do not share (`berth gc --keep-storage 0`), unmounted volumes
(`berth down -v`). Objects several kinds use are counted in each row.")]
pub struct DfArgs {
    /// Also list each image, container, cache entry and volume
    #[arg(short, long)]
    verbose: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn system(ctx: &super::Context, args: SystemArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SystemCommand::Df(a) => df(ctx, a),
    }
}

fn df(ctx: &super::Context, args: DfArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let usage = {
        let lock = store.lock_shared()?;
        maintain::disk_usage(&store, &lock)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = usage
        .rows
        .iter()
        .map(|r| {
            let percent = (r.reclaimable * 100).checked_div(r.size).unwrap_or(0);
            let reclaimable = format!("{} ({percent}%)", human_size(r.reclaimable));
            vec![r.kind.to_owned(), r.total.to_string(), r.active.to_string(), human_size(r.size), reclaimable]
        })
        .collect();
    println!("{}", table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows));
    println!(
        "\nStore: {} in blobs, unpacked layers and cache entries ({} unreferenced, removed by `berth gc`)",
        human_size(usage.store_size),
        human_size(usage.unreferenced)
    );
    if args.verbose {
        print_details(&usage);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_details(usage: &maintain::DiskUsage) {
    let images: Vec<Vec<String>> = usage
        .images
        .iter()
        .map(|i| {
            let name = if i.names.is_empty() { "<untagged>".to_owned() } else { i.names.join(", ") };
            let sizes = [human_size(i.size), human_size(i.unique)];
            vec![name, i.id.hex()[..12].to_owned(), sizes[0].clone(), sizes[1].clone(), i.containers.to_string()]
        })
        .collect();
    println!(
        "\nImages space usage:\n\n{}",
        table(&["IMAGE", "IMAGE ID", "SIZE", "UNIQUE SIZE", "CONTAINERS"], &images)
    );
    let containers: Vec<Vec<String>> = usage
        .containers
        .iter()
        .map(|c| vec![c.id.clone(), c.name.clone(), c.image.clone(), c.status.clone(), human_size(c.size)])
        .collect();
    println!(
        "\nContainers space usage:\n\n{}",
        table(&["CONTAINER ID", "NAME", "IMAGE", "STATUS", "SIZE"], &containers)
    );
    let cache: Vec<Vec<String>> = usage
        .cache
        .iter()
        .map(|c| {
            let created = c.created.as_deref().map_or_else(|| "-".to_owned(), ago);
            let in_use = if c.in_use { "true" } else { "false" };
            vec![c.key[..12].to_owned(), created, ago(&c.last_used), human_size(c.size), in_use.to_owned()]
        })
        .collect();
    println!("\nBuild cache usage:\n\n{}", table(&["CACHE KEY", "CREATED", "LAST USED", "SIZE", "IN USE"], &cache));
    let volumes: Vec<Vec<String>> = usage
        .volumes
        .iter()
        .map(|v| vec![v.project.clone(), v.name.clone(), v.containers.to_string(), human_size(v.size)])
        .collect();
    println!("\nLocal volumes space usage:\n\n{}", table(&["PROJECT", "VOLUME", "CONTAINERS", "SIZE"], &volumes));
}

/// Check the store: every blob's digest and size, every reference, the
/// build cache, and leftovers of interrupted writes. Exits 1 if problems
/// remain. With --repair, removes corrupt blobs, broken cache entries,
/// strays and leftovers (never a blob whose content matches its digest).
#[derive(clap::Args)]
#[command(after_help = "\
Example: berth fsck              check, change nothing
         berth fsck --repair     remove what is corrupt or left over, then check again

Missing blobs a tag or container needs cannot be repaired by fsck: build, import
or pull the image again, or remove the tag (`berth rmi`) or container (`berth rm`).")]
pub struct FsckArgs {
    /// Remove corrupt blobs, broken cache entries and leftovers, saying what went
    #[arg(long)]
    repair: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn fsck(ctx: &super::Context, args: FsckArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let lock: StoreLock = if args.repair { store.lock_exclusive()? } else { store.lock_shared()? };
    let mut report = maintain::fsck(&store, &lock)?;
    let mut removed = Vec::new();
    if args.repair && !report.is_clean() {
        removed = maintain::repair(&store, &lock, &report)?;
        report = maintain::fsck(&store, &lock)?;
    }
    if args.json {
        let doc = serde_json::json!({ "removed": removed, "report": report });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for p in &removed {
            println!("Removed: {} ({}: {})", p.path.display(), p.kind.as_str(), p.message);
        }
        for p in &report.problems {
            println!("{}: {}: {}", p.path.display(), p.kind.as_str(), p.message);
        }
        if report.is_clean() {
            println!("store is consistent: {} blobs, {} layers, {} refs", report.blobs, report.layers, report.refs);
        } else {
            let fixable = report.problems.iter().filter(|p| p.kind.repairable()).count();
            let hint = if fixable > 0 && !args.repair {
                format!("; `berth fsck --repair` fixes {fixable}")
            } else {
                String::new()
            };
            println!("{} problem(s) found{hint}", report.problems.len());
        }
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
