//! `berth fsck`: check that the store is what its rules promise, and
//! optionally remove what breaks them.
//!
//! Checked: every blob hashes to its name (all blobs in parallel, each
//! streamed); every reference (index entry, manifest, index, cache entry)
//! names a blob that exists with the size the reference states; every
//! manifest, index and config a root needs can be read; every cache entry
//! parses and names blobs that exist and are sound; every container's
//! unpacked layers exist; `oci/blobs/`, `layers/` and `cache/` hold only
//! what their names promise; `tmp/` is empty; every project network
//! namespace (`projects/NAME.netns`, `NAME.isolated-netns`) has a container
//! of its project, and every project network recorded for the store
//! (`runtime::network`) has its namespace. A layer directory is
//! complete by construction (it is renamed into `layers/` only when
//! complete), so an incomplete unpacked layer is a staging directory left in
//! `tmp/`, reported as a leftover.
//!
//! [`repair`] removes only what is unsound or never readable: corrupt blobs
//! (content that does not match the name), cache entries that cannot be
//! parsed or that name missing or corrupt blobs (a hit would build an image
//! without them; the step is rebuilt instead), strays, leftovers and orphan
//! network namespaces (their project network removed, then unmounted and
//! deleted) and orphan project networks. A blob
//! whose content matches its name is never removed. Missing blobs a tag or
//! container needs cannot be repaired here; the message says what would.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;

use rayon::prelude::*;
use sha2::Digest as _;

use super::MaintainError;
use super::inventory::{BlobFile, Inventory};
use super::reach::{Walker, read_index};
use crate::oci::Digest;
use crate::oci::digest::Algorithm;
use crate::runtime::{container, netns, network};
use crate::store::{Store, StoreLock};
use crate::sys::lock::LockMode;

/// What kind of problem, and so whether [`repair`] fixes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The index cannot be read; nothing it names could be checked.
    BadIndex,
    /// Container records cannot be read.
    BadContainers,
    /// A blob's content does not hash to its name. Repair removes it.
    CorruptBlob,
    /// A reference states another size than the blob has.
    SizeMismatch,
    /// A reference names a blob that is not there.
    MissingBlob,
    /// A manifest, index or config cannot be read as one.
    UnreadableBlob,
    /// A cache entry that cannot be parsed, or names missing or corrupt
    /// blobs. Repair removes it.
    BadCacheEntry,
    /// A container's unpacked layer is missing.
    MissingLayer,
    /// Something in `oci/blobs/`, `layers/` or `cache/` that is not what
    /// the directory holds. Repair removes it.
    Stray,
    /// A leftover of an interrupted write in `tmp/`. Repair removes it.
    Leftover,
    /// A project's network namespace that no container of the project is
    /// left to use (its bind mount keeps the store from being deleted).
    /// Repair unmounts and removes it, and the project network attached
    /// to it.
    OrphanNetns,
    /// A project network (bridge, veth, nftables elements, subnet record)
    /// whose namespace file is gone: a crash between removing the two.
    /// Repair removes the network.
    OrphanNetwork,
    /// A published port's DNAT element in the nftables table `inet berth`
    /// that no running container holds (its shim was killed): no proxy
    /// holds its host port, or its target is in no project subnet. Repair
    /// removes the element.
    StalePort,
}

impl ProblemKind {
    /// As printed: `corrupt blob`, `missing blob`, `leftover`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::BadIndex => "unreadable index",
            ProblemKind::BadContainers => "unreadable container records",
            ProblemKind::CorruptBlob => "corrupt blob",
            ProblemKind::SizeMismatch => "size mismatch",
            ProblemKind::MissingBlob => "missing blob",
            ProblemKind::UnreadableBlob => "unreadable blob",
            ProblemKind::BadCacheEntry => "bad cache entry",
            ProblemKind::MissingLayer => "missing layer",
            ProblemKind::Stray => "stray",
            ProblemKind::Leftover => "leftover",
            ProblemKind::OrphanNetns => "orphan network namespace",
            ProblemKind::OrphanNetwork => "orphan project network",
            ProblemKind::StalePort => "stale published port",
        }
    }

    /// Whether [`repair`] removes the path.
    pub fn repairable(self) -> bool {
        matches!(
            self,
            ProblemKind::CorruptBlob
                | ProblemKind::BadCacheEntry
                | ProblemKind::Stray
                | ProblemKind::Leftover
                | ProblemKind::OrphanNetns
                | ProblemKind::OrphanNetwork
                | ProblemKind::StalePort
        )
    }
}

/// One problem: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub path: PathBuf,
    /// What is wrong, and what would be right when repair cannot fix it.
    pub message: String,
}

/// What fsck found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FsckReport {
    pub problems: Vec<Problem>,
    pub blobs: usize,
    pub layers: usize,
    /// Entries of `oci/index.json` (tags, and untagged entries).
    pub refs: usize,
    pub cache_entries: usize,
    pub containers: usize,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the store, changing nothing. `_lock` is the held store lock
/// (shared is enough).
pub fn fsck(store: &Store, _lock: &StoreLock) -> Result<FsckReport, MaintainError> {
    let inv = Inventory::scan(store)?;
    let mut problems = BTreeSet::new();
    let mut add = |kind, path: PathBuf, message: String| {
        problems.insert(Problem { kind, path, message });
    };

    let corrupt: BTreeSet<Digest> = verify_blobs(&inv.blobs)?
        .into_iter()
        .map(|(blob, actual)| {
            let message = format!("content hashes to {actual}, not {}: the blob is corrupt", blob.digest);
            add(ProblemKind::CorruptBlob, blob.path.clone(), message);
            blob.digest.clone()
        })
        .collect();

    let mut walker = Walker::new(store);
    let mut refs = 0;
    match read_index(store) {
        Ok(entries) => {
            refs = entries.len();
            for e in &entries {
                walker.index_entry(e);
            }
        }
        Err(e) => add(ProblemKind::BadIndex, store.index_path(), e.to_string()),
    }
    let mut containers = 0;
    match container::list(&store.containers_dir()) {
        Ok(all) => {
            containers = all.len();
            for c in &all {
                walker.container(c);
                for lower in c.record.lowers.iter().filter(|l| !l.is_dir()) {
                    let message = format!(
                        "container {} mounts this unpacked layer, which is missing: it cannot start; remove it with `berth rm {}` and run it again",
                        c.record.name, c.record.name
                    );
                    add(ProblemKind::MissingLayer, lower.clone(), message);
                }
            }
            for (project, path) in orphan_netns(store, &all)? {
                let message = match project {
                    Some(project) => format!(
                        "no container of project {project:?} is left to use it; `berth fsck --repair` or `berth down -p {project}` removes it"
                    ),
                    None => "the container of `berth run --network bridge` that used it is gone; `berth fsck --repair` removes it".to_owned(),
                };
                add(ProblemKind::OrphanNetns, path, message);
            }
            for (subnet, a) in network::orphans(&[store.projects_dir(), netns::own_dir(store)]).map_err(network_err)? {
                let message = format!(
                    "project {:?} has no network namespace, but its network is left: bridge {}, veth {}, subnet {subnet}; `berth fsck --repair` removes it",
                    a.project, a.bridge, a.veth
                );
                add(ProblemKind::OrphanNetwork, a.owner, message);
            }
            for (netns, tool, pid) in network::usermode::orphans(store.root()) {
                let message = format!(
                    "the network namespace is gone, but its rootless network helper is recorded ({tool}, pid {pid}); `berth fsck --repair` ends it"
                );
                add(ProblemKind::OrphanNetwork, netns, message);
            }
            for f in network::dnat::stale().map_err(network_err)? {
                let message = format!(
                    "published port {} goes to {}:{} through DNAT, but no running container holds it; `berth fsck --repair` removes it",
                    f.host(),
                    f.target,
                    f.target_port
                );
                add(ProblemKind::StalePort, PathBuf::from(format!("nftables:inet berth:{}", f.host())), message);
            }
        }
        Err(e) => add(ProblemKind::BadContainers, store.containers_dir(), e.to_string()),
    }
    // Image references first: cache entries are judged by their own rules below.
    let image_edges = walker.edges.len();
    for c in &inv.cache {
        let entry = match &c.entry {
            Ok(entry) => entry,
            Err(reason) => {
                let message = format!("cache entry cannot be parsed ({reason}); the step will be rebuilt without it");
                add(ProblemKind::BadCacheEntry, c.path.clone(), message);
                continue;
            }
        };
        walker.cache_entry(&c.key.to_string(), entry);
    }

    for (i, edge) in walker.edges.iter().enumerate() {
        let in_cache = i >= image_edges;
        let Some(blob) = inv.blob(&edge.digest) else {
            if in_cache {
                continue; // reported once per entry below
            }
            let via = if edge.from == edge.root { String::new() } else { format!(" (named by {})", edge.from) };
            let (root, role, digest) = (&edge.root, edge.role, &edge.digest);
            let message = format!("{root} needs this {role} {digest}{via}, which is missing{}", advice(root));
            add(ProblemKind::MissingBlob, store.blob_path(&edge.digest), message);
            continue;
        };
        if let Some(size) = edge.size.filter(|s| *s != blob.size) {
            let message = format!("{} bytes, but {} states its {} is {size} bytes", blob.size, edge.from, edge.role);
            add(ProblemKind::SizeMismatch, blob.path.clone(), message);
        }
    }
    for gap in walker.gaps.iter().filter(|g| !g.missing && !corrupt.contains(&g.digest)) {
        let message = format!("{} refers to this {}, which cannot be read: {}", gap.from, gap.role, gap.reason);
        add(ProblemKind::UnreadableBlob, store.blob_path(&gap.digest), message);
    }
    for c in &inv.cache {
        let Ok(entry) = &c.entry else { continue };
        let digests = entry.layers.iter().map(|l| &l.digest).chain(entry.config.as_ref());
        let broken: Vec<String> = digests
            .filter(|d| inv.blob(d).is_none() || corrupt.contains(*d))
            .map(|d| format!("{d} ({})", if corrupt.contains(d) { "corrupt" } else { "missing" }))
            .collect();
        if !broken.is_empty() {
            let message = format!(
                "cache entry names blobs that are not sound: {}; a cache hit would build an image without them",
                broken.join(", ")
            );
            add(ProblemKind::BadCacheEntry, c.path.clone(), message);
        }
    }
    for s in &inv.strays {
        add(ProblemKind::Stray, s.path.clone(), format!("{}: {}", if s.is_dir { "directory" } else { "file" }, s.why));
    }
    for t in &inv.tmp {
        add(ProblemKind::Leftover, t.path.clone(), leftover(&t.path, t.is_dir).to_owned());
    }

    Ok(FsckReport {
        problems: problems.into_iter().collect(),
        blobs: inv.blobs.len(),
        layers: inv.layers.len(),
        refs,
        cache_entries: inv.cache.len(),
        containers,
    })
}

/// Removes every path whose problem is [repairable](ProblemKind::repairable),
/// and returns those problems. Needs the exclusive lock, held since
/// `report` was made. Run [`fsck`] again to see what remains.
pub fn repair(store: &Store, lock: &StoreLock, report: &FsckReport) -> Result<Vec<Problem>, MaintainError> {
    if lock.mode() != LockMode::Exclusive {
        return Err(MaintainError::NeedsExclusiveLock { what: "fsck --repair" });
    }
    let mut fixed = Vec::new();
    let mut done = BTreeSet::new();
    let stale_ports: Vec<&Problem> = report.problems.iter().filter(|p| p.kind == ProblemKind::StalePort).collect();
    if !stale_ports.is_empty() {
        // Not in the store: elements of the host's table, looked at again.
        network::dnat::remove_stale().map_err(network_err)?;
        fixed.extend(stale_ports.into_iter().cloned());
    }
    for p in report.problems.iter().filter(|p| p.kind.repairable() && p.kind != ProblemKind::StalePort) {
        // Only ever inside the store, whatever a report says.
        if !p.path.starts_with(store.root()) || !done.insert(p.path.clone()) {
            continue;
        }
        let result = match fs::symlink_metadata(&p.path) {
            // A bind mount: unlinking it would fail with EBUSY. The project
            // network attached to it goes first.
            _ if p.kind == ProblemKind::OrphanNetns => network::detach(&p.path)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|_| crate::sys::ns::remove_persistent_netns(&p.path)),
            _ if p.kind == ProblemKind::OrphanNetwork => {
                network::detach(&p.path).map(drop).map_err(|e| std::io::Error::other(e.to_string()))
            }
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&p.path),
            Ok(_) => fs::remove_file(&p.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        result.map_err(MaintainError::io("remove", &p.path))?;
        fixed.push(p.clone());
    }
    Ok(fixed)
}

fn network_err(e: network::NetworkError) -> MaintainError {
    MaintainError::Io {
        action: "look at",
        path: network::subnet::HOST_NETS_DIR.into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Each project network namespace in `projects/` that no container of
/// `containers` (the store's) belongs to, with its project; and each
/// namespace in `netns/` (a lone container's) that no container names,
/// with `None`.
fn orphan_netns(
    store: &Store,
    containers: &[container::Container],
) -> Result<Vec<(Option<String>, PathBuf)>, MaintainError> {
    let list = |dir: &std::path::Path| -> Result<Vec<PathBuf>, MaintainError> {
        match fs::read_dir(dir) {
            Ok(entries) => entries.map(|e| e.map(|e| e.path()).map_err(MaintainError::io("list", dir))).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(MaintainError::io("list", dir)(e)),
        }
    };
    let mut out = Vec::new();
    for path in list(&store.projects_dir())? {
        let (Some(stem), Some(_)) =
            (path.file_stem(), path.extension().and_then(|x| x.to_str()).and_then(netns::Kind::of_extension))
        else {
            continue;
        };
        let project = stem.to_string_lossy().into_owned();
        if !containers.iter().any(|c| netns::project_of(&c.record) == Some(project.as_str())) {
            out.push((Some(project), path));
        }
    }
    // The namespaces of lone containers (`berth run --network bridge`).
    for path in list(&netns::own_dir(store))? {
        let named = |c: &container::Container| {
            c.record.labels.get(netns::OWN_NETNS_LABEL).is_some_and(|p| std::path::Path::new(p) == path)
        };
        if !containers.iter().any(named) {
            out.push((None, path));
        }
    }
    out.sort();
    Ok(out)
}

fn verify_blobs(blobs: &[BlobFile]) -> Result<Vec<(&BlobFile, Digest)>, MaintainError> {
    let checked: Vec<Option<(&BlobFile, Digest)>> = blobs
        .par_iter()
        .map(|b| {
            let actual = hash_file(b)?;
            Ok((actual != b.digest).then_some((b, actual)))
        })
        .collect::<Result<_, MaintainError>>()?;
    Ok(checked.into_iter().flatten().collect())
}

/// The digest of a blob file's content, in the blob's own algorithm.
fn hash_file(blob: &BlobFile) -> Result<Digest, MaintainError> {
    let mut file = File::open(&blob.path).map_err(MaintainError::io("open blob", &blob.path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut read = |hash: &mut dyn FnMut(&[u8])| -> Result<(), MaintainError> {
        loop {
            let n = file.read(&mut buf).map_err(MaintainError::io("read blob", &blob.path))?;
            if n == 0 {
                return Ok(());
            }
            hash(&buf[..n]);
        }
    };
    match blob.digest.algorithm() {
        Algorithm::Sha256 => {
            let mut h = sha2::Sha256::new();
            read(&mut |b| h.update(b))?;
            Ok(Digest::from_sha256(h.finalize().into()))
        }
        Algorithm::Sha512 => {
            let mut h = sha2::Sha512::new();
            read(&mut |b| h.update(b))?;
            let text = format!("sha512:{}", hex::encode(h.finalize()));
            Ok(text.parse().expect("a sha512 hash in hex is a valid digest"))
        }
    }
}

/// What the owner of a missing blob can do about it.
fn advice(from: &str) -> &'static str {
    if from.starts_with("tag ") {
        "; build, import or pull the image again, or remove the tag with `berth rmi`"
    } else if from.starts_with("container ") {
        "; remove the container with `berth rm`, or restore the image"
    } else {
        ""
    }
}

/// What a `tmp/` entry was, from the prefix its writer gave it.
fn leftover(path: &std::path::Path, is_dir: bool) -> &'static str {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.starts_with("stage-") {
        "an unpacked layer that was never completed (its staging directory was not renamed into layers/)"
    } else if name.starts_with("blob-") {
        "a blob whose write was interrupted"
    } else if name.starts_with("write-") {
        "a file whose write was interrupted"
    } else if name.starts_with("build-") {
        "the scratch directory of an interrupted build step"
    } else if name.starts_with("gc-layer-") {
        "an unused layer an interrupted gc was removing"
    } else if is_dir {
        "a directory left by an interrupted write"
    } else {
        "a file left by an interrupted write"
    }
}
