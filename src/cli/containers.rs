//! Shared helpers of the container verbs: opening the store and finding
//! containers by name or id.

use berth::runtime::container::{self, Container};
use berth::store::Store;

/// The store, for verbs that act on what is already in it: a store that
/// does not exist yet is not created (nothing is in it).
pub fn store(ctx: &super::Context) -> anyhow::Result<Store> {
    let root = ctx.store_root()?;
    match Store::open_existing(&root)? {
        Some(store) => Ok(store),
        None => anyhow::bail!("no store at {} yet: nothing has been run, built or imported there", root.display()),
    }
}

/// The container named or with the id (prefix) `query`; inside a project
/// (a berth.toml here or above), an env name also names its container
/// (`api` is `PROJECT-api`).
pub fn find(store: &Store, query: &str) -> anyhow::Result<Container> {
    let all = {
        let _shared = store.lock_shared()?;
        container::list(&store.containers_dir())?
    };
    find_in(&all, query, &project_of_cwd)
}

/// [`find`] among `all`; `project()` names the project of the current
/// directory, asked only when `query` is no exact name or id.
fn find_in(all: &[Container], query: &str, project: &dyn Fn() -> Option<String>) -> anyhow::Result<Container> {
    let exact = all.iter().any(|c| c.record.name == query || c.record.id.as_str() == query);
    let project = if exact { None } else { project() };
    Ok(container::find_in_project(all, query, project.as_deref())?)
}

/// The containers of the project whose berth.toml is here or above: what
/// verbs that take several containers act on when none is named.
pub fn project_containers(store: &Store) -> anyhow::Result<Vec<Container>> {
    let Some(project) = project_of_cwd() else {
        anyhow::bail!("name a container, or run this in a project directory (one with a berth.toml here or above)");
    };
    let _shared = store.lock_shared()?;
    Ok(berth::plan::actual::project_containers(store, &project)?)
}

/// The project whose berth.toml is in the current directory or above.
fn project_of_cwd() -> Option<String> {
    let here = std::env::current_dir().ok()?;
    let file = berth::manifest::find(&here)?;
    berth::manifest::load(&file).ok().map(|m| m.project)
}

/// Runs `each` for every container in `names`, printing the name on success
/// as Docker does; reports every failure and fails if any did. The store's
/// containers are listed once, however many names there are.
pub fn for_each(
    store: &Store,
    names: &[String],
    mut each: impl FnMut(&Container) -> anyhow::Result<()>,
) -> anyhow::Result<std::process::ExitCode> {
    let all = {
        let _shared = store.lock_shared()?;
        container::list(&store.containers_dir())?
    };
    let project = std::cell::OnceCell::new();
    let project_once = || project.get_or_init(project_of_cwd).clone();
    let mut failed = false;
    for name in names {
        match find_in(&all, name, &project_once).and_then(|c| each(&c)) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                super::output::error(&e);
                failed = true;
            }
        }
    }
    Ok(if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
}
