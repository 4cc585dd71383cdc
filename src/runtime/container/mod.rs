//! Containers in the store: `containers/<id>/`, each with its record, its
//! OCI runtime spec, its state, its log and its writable layer.
//!
//! This module finds, creates and removes container directories; running
//! them is the supervisor's work. Callers hold the store's exclusive lock
//! while creating or removing, so two containers never get one name.

pub mod id;
pub mod record;

use std::path::{Path, PathBuf};

pub use id::{ContainerId, IdError, check_name, generated_name};
pub use record::{Paths, Record};

/// Why a container could not be found, made or removed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no container named or with id {0:?}; `berth ps -a` lists them")]
    NotFound(String),
    #[error("{query:?} matches {} containers ({}); give more of the id", matches.len(), matches.join(", "))]
    Ambiguous { query: String, matches: Vec<String> },
    #[error("the name {0:?} is already used by container {1}; choose another name or remove it with `berth rm {0}`")]
    NameTaken(String, String),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Write(#[from] Box<crate::store::StoreError>),
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Range(Box<super::userns_auto::RangeError>),
    #[error("container record {} is damaged: {source}; remove the directory to forget it", path.display())]
    BadRecord { path: PathBuf, source: serde_json::Error },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ContainerError + 'a {
    move |source| ContainerError::Io { action, path: path.to_path_buf(), source }
}

/// A container found in the store.
#[derive(Debug, Clone)]
pub struct Container {
    pub paths: Paths,
    pub record: Record,
}

/// Every container under `containers_dir`, oldest first. Directories without
/// a record (a create in progress or interrupted) are skipped.
pub fn list(containers_dir: &Path) -> Result<Vec<Container>, ContainerError> {
    let entries = match std::fs::read_dir(containers_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", containers_dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("list", containers_dir))?;
        if entry.file_name().to_string_lossy().parse::<ContainerId>().is_err() {
            continue;
        }
        let paths = Paths::new(&entry.path());
        match read_record(&paths.record()) {
            Ok(Some(record)) => out.push(Container { paths, record }),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| (&a.record.created, &a.record.id).cmp(&(&b.record.created, &b.record.id)));
    Ok(out)
}

fn read_record(path: &Path) -> Result<Option<Record>, ContainerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ContainerError::BadRecord { path: path.to_owned(), source })
}

/// The container named `query`, or whose id is or starts with `query`
/// (Docker's rules: an exact name wins over an id prefix).
pub fn find(containers_dir: &Path, query: &str) -> Result<Container, ContainerError> {
    find_in(&list(containers_dir)?, query)
}

/// [`find`] among containers already listed, inside the project `project`
/// (when the caller is in one): an exact name or id wins, then the
/// project's env of that name (`api` is `PROJECT-api`), and only then an id
/// prefix, so env `a` is never the container whose id starts with `a`.
pub fn find_in_project(all: &[Container], query: &str, project: Option<&str>) -> Result<Container, ContainerError> {
    if let Some(c) = all.iter().find(|c| c.record.name == query || c.record.id.as_str() == query) {
        return Ok(c.clone());
    }
    if let Some(project) = project {
        let name = format!("{project}-{query}");
        if let Some(c) = all.iter().find(|c| c.record.name == name) {
            return Ok(c.clone());
        }
    }
    find_in(all, query)
}

/// [`find`] among containers already listed (one listing for many names).
pub fn find_in(all: &[Container], query: &str) -> Result<Container, ContainerError> {
    if let Some(c) = all.iter().find(|c| c.record.name == query || c.record.id.as_str() == query) {
        return Ok(c.clone());
    }
    let matches: Vec<&Container> = if query.is_empty() {
        Vec::new()
    } else {
        all.iter().filter(|c| c.record.id.as_str().starts_with(query)).collect()
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ContainerError::NotFound(query.to_owned())),
        many => Err(ContainerError::Ambiguous {
            query: query.to_owned(),
            matches: many.iter().map(|c| c.record.id.short().to_owned()).collect(),
        }),
    }
}

/// A name for a new container: `wanted` if free, else an error; or a made-up
/// one that is free.
pub fn choose_name(containers_dir: &Path, id: &ContainerId, wanted: Option<&str>) -> Result<String, ContainerError> {
    let all = list(containers_dir)?;
    let taken = |n: &str| all.iter().find(|c| c.record.name == n).map(|c| c.record.id.short().to_owned());
    if let Some(name) = wanted {
        check_name(name)?;
        return match taken(name) {
            Some(other) => Err(ContainerError::NameTaken(name.to_owned(), other)),
            None => Ok(name.to_owned()),
        };
    }
    let free = (0..).map(|attempt| generated_name(id, attempt)).find(|n| taken(n).is_none());
    Ok(free.expect("an unbounded sequence of names has a free one"))
}

/// Creates the container's directory (mode 0700; 0710 with the
/// container's root group for `--userns=auto`) with its record, writable
/// layer dirs and `etc` files. The record is written last (atomically), so a crash
/// midway leaves a directory that listings skip (a leftover nothing removes
/// yet: gc leaves container directories alone).
pub fn create(containers_dir: &Path, record: &Record, etc: &EtcFiles) -> Result<Container, ContainerError> {
    let paths = Paths::new(&containers_dir.join(record.id.as_str()));
    // Private from the start (see `store::layout`): only root, and the
    // container's own root group under `--userns=auto`, may pass through.
    let mode = if record.userns_base.is_some() { 0o710 } else { crate::store::layout::PRIVATE_MODE };
    crate::store::layout::private_dir(&paths.dir, mode).map_err(io("create", &paths.dir))?;
    if let Some(base) = record.userns_base {
        std::os::unix::fs::chown(&paths.dir, None, Some(base)).map_err(io("give its group to", &paths.dir))?;
    }
    for dir in [paths.upper(), paths.work(), paths.rootfs(), paths.etc()] {
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    }
    for (name, text) in [("hosts", &etc.hosts), ("hostname", &etc.hostname), ("resolv.conf", &etc.resolv_conf)] {
        let path = paths.etc().join(name);
        std::fs::write(&path, text).map_err(io("write", &path))?;
    }
    let json = serde_json::to_vec_pretty(record).expect("a record always serialises");
    crate::store::atomic_write(&paths.dir, &paths.record(), &json).map_err(Box::new)?;
    Ok(Container { paths, record: record.clone() })
}

/// Removes a container's directory and everything in it, and gives back
/// its `--userns=auto` id range.
pub fn remove_dir(container: &Container) -> Result<(), ContainerError> {
    match std::fs::remove_dir_all(&container.paths.dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &container.paths.dir)(e)),
        _ => {}
    }
    if let Some(base) = container.record.userns_base {
        super::userns_auto::Ranges::host()
            .release(base, &container.paths.dir)
            .map_err(|e| ContainerError::Range(Box::new(e)))?;
    }
    Ok(())
}

/// The `/etc` files a container gets: its own host name, a hosts file that
/// resolves it, and the host's resolver configuration.
#[derive(Debug, Clone)]
pub struct EtcFiles {
    pub hosts: String,
    pub hostname: String,
    pub resolv_conf: String,
}

impl EtcFiles {
    /// The files for `hostname`, with extra `name → 127.0.0.1` host entries
    /// (envs of one project reach each other by name).
    pub fn new(hostname: &str, aliases: &[String], host_resolv_conf: &str) -> EtcFiles {
        let mut hosts = format!("127.0.0.1\tlocalhost {hostname}");
        for a in aliases {
            hosts.push(' ');
            hosts.push_str(a);
        }
        hosts.push_str("\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        let resolv_conf = if host_resolv_conf.trim().is_empty() {
            "nameserver 127.0.0.1\n".to_owned()
        } else {
            host_resolv_conf.to_owned()
        };
        EtcFiles { hosts, hostname: format!("{hostname}\n"), resolv_conf }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_name_wins_over_an_id_prefix() {
        let with = |name: &str, id: &str| Container {
            paths: Paths::new(Path::new("/nowhere")),
            record: Record { id: id.parse().unwrap(), ..Record::example(name) },
        };
        let all = [with("shop-b", &"a".repeat(64)), with("shop-a", &"b".repeat(64))];
        let found = |q: &str, p: Option<&str>| find_in_project(&all, q, p).map(|c| c.record.name);
        assert_eq!(found("a", Some("shop")).unwrap(), "shop-a", "the env, not the id prefix");
        assert_eq!(found("a", None).unwrap(), "shop-b", "outside the project, the id prefix");
        assert_eq!(found("shop-b", Some("shop")).unwrap(), "shop-b");
        assert!(matches!(found("c", Some("shop")), Err(ContainerError::NotFound(_))));
    }

    #[test]
    fn create_list_find_remove() {
        let dir = tempfile::tempdir().unwrap();
        let etc = EtcFiles::new("web", &[], "nameserver 10.0.0.1\n");
        let a = create(dir.path(), &Record::example("web"), &etc).unwrap();
        let b = create(dir.path(), &Record::example("db"), &etc).unwrap();
        assert_eq!(list(dir.path()).unwrap().len(), 2);
        assert_eq!(find(dir.path(), "web").unwrap().record.id, a.record.id);
        assert_eq!(find(dir.path(), &b.record.id.as_str()[..12]).unwrap().record.name, "db");
        assert!(matches!(find(dir.path(), "nope"), Err(ContainerError::NotFound(_))));
        assert!(matches!(choose_name(dir.path(), &b.record.id, Some("web")), Err(ContainerError::NameTaken(..))));
        assert!(std::fs::read_to_string(a.paths.etc().join("hosts")).unwrap().contains("localhost web"));
        remove_dir(&a).unwrap();
        assert_eq!(list(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_directory_without_a_record_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let id = ContainerId::random().unwrap();
        std::fs::create_dir(dir.path().join(id.as_str())).unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }
}
