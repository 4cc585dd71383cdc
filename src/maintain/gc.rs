//! `berth gc`: plan what to remove ([`plan_gc`]), then remove it
//! ([`GcPlan::apply`]). See the parent module for what is kept and why.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use rayon::prelude::*;

use super::MaintainError;
use super::inventory::{BlobFile, Inventory, LayerDir, tree_sizes};
use super::reach::{Needs, Walker, read_index};
use crate::oci::Digest;
use crate::runtime::container;
use crate::store::atomic::unique_name;
use crate::store::{Store, StoreLock, rfc3339};
use crate::sys::lock::LockMode;

/// How much to collect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Also evict build cache entries, least recently used first, until
    /// blobs + unpacked layers + cache entries take at most this many bytes.
    pub keep_storage: Option<u64>,
    /// Also remove every `RUN --mount=type=cache` directory
    /// (`cache-mounts/`); they are kept otherwise, as BuildKit keeps its
    /// cache mounts until the build cache is pruned.
    pub cache_mounts: bool,
}

/// The kinds of things gc removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    /// A build cache entry (`cache/<key>`).
    CacheEntry,
    /// A blob (`oci/blobs/…`).
    Blob,
    /// An unpacked layer (`layers/<diffid>`).
    Layer,
    /// A leftover of an interrupted write (`tmp/…`).
    Tmp,
    /// A `RUN --mount=type=cache` directory (`cache-mounts/<hash>`).
    CacheMount,
}

impl ObjectKind {
    /// As printed: `cache entry`, `blob`, `layer`, `tmp`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::CacheEntry => "cache entry",
            ObjectKind::Blob => "blob",
            ObjectKind::Layer => "layer",
            ObjectKind::Tmp => "tmp",
            ObjectKind::CacheMount => "cache mount",
        }
    }
}

/// One thing gc removes (or would remove).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Removal {
    pub kind: ObjectKind,
    /// A digest for blobs and layers (the diffID), the key for cache
    /// entries, the file name for leftovers.
    pub name: String,
    pub path: PathBuf,
    /// Bytes freed: the file's size, or the sizes of the files in a tree.
    pub size: u64,
    /// For a blob, what its content looks like: `index`, `manifest`,
    /// `config` or `layer` (nothing refers to it any more, so only the
    /// content can tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Why, when it is not simply that nothing needs it: an evicted cache
    /// entry says when it was last used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What gc will remove; apply it, or print it for a dry run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GcPlan {
    /// In removal order: cache entries, blobs, layers, leftovers.
    pub removals: Vec<Removal>,
    /// Bytes freed by all removals.
    pub reclaimable: u64,
    /// Blobs + unpacked layers + cache entries after the removals, when a
    /// `keep_storage` cap was given (sizes are only all measured then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
    /// The cap, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_storage: Option<u64>,
}

/// What gc removed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    pub removed: Vec<Removal>,
    /// Bytes freed.
    pub reclaimed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
}

/// Finds what gc would remove from `store`, changing nothing. `_lock` is
/// the held store lock (shared is enough for planning; see the parent
/// module). Refuses, removing nothing, when a tag's or container's image
/// cannot be read, since what it needs is then unknown.
pub fn plan_gc(store: &Store, _lock: &StoreLock, opts: &GcOptions) -> Result<GcPlan, MaintainError> {
    let inv = Inventory::scan(store)?;
    let mut walker = Walker::new(store);
    let mut pinned = Needs::default();
    for entry in read_index(store)? {
        pinned.extend(&walker.index_entry(&entry));
    }
    for c in container::list(&store.containers_dir())? {
        pinned.extend(&walker.container(&c));
    }
    if let Some(gap) = walker.gaps.first() {
        return Err(MaintainError::UnreadableRoot {
            root: gap.root.clone(),
            reason: format!("the {} {} (named by {}) cannot be read: {}", gap.role, gap.digest, gap.from, gap.reason),
        });
    }
    // Unparseable cache entries need nothing that can be known; fsck
    // reports and removes them.
    let cached: Vec<(usize, Needs)> = inv
        .cache
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.entry.as_ref().ok().map(|e| (i, walker.cache_entry(&c.key.to_string(), e))))
        .collect();
    let mut live = pinned.clone();
    for (_, needs) in &cached {
        live.extend(needs);
    }

    let mut removals = Vec::new();
    let dead_blobs = inv.blobs.iter().filter(|b| !live.blobs.contains(&b.digest));
    let mut blob_removals: Vec<Removal> = dead_blobs.map(|b| blob_removal(b, None)).collect();
    let dead_layers: Vec<_> = inv.layers.iter().filter(|l| !live.layers.contains(&l.hex)).collect();
    let mut layer_removals = layer_removals(&dead_layers)?;

    let mut size_after = None;
    if let Some(cap) = opts.keep_storage {
        let eviction = evict(&inv, &pinned, &live, &cached, cap)?;
        removals.extend(eviction.entries);
        blob_removals.extend(eviction.blobs);
        layer_removals.extend(eviction.layers);
        size_after = Some(eviction.size_after);
    }
    // Referrers first: an interrupted gc never leaves a manifest whose
    // config or layers are gone.
    blob_removals.par_iter_mut().for_each(|r| r.role = sniff_role(&r.path));
    let rank = |role: Option<&str>| match role {
        Some("index") => 0,
        Some("manifest") => 1,
        Some("config") => 2,
        _ => 3,
    };
    blob_removals.sort_by(|a, b| (rank(a.role), &a.name).cmp(&(rank(b.role), &b.name)));
    layer_removals.sort_by(|a, b| a.name.cmp(&b.name));
    removals.extend(blob_removals);
    removals.extend(layer_removals);
    let tmp_paths: Vec<&std::path::Path> = inv.tmp.iter().map(|t| t.path.as_path()).collect();
    for (t, size) in inv.tmp.iter().zip(tree_sizes(&tmp_paths)?) {
        let name = t.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let what = if t.is_dir { "directory" } else { "file" };
        let reason = Some(format!("{what} left by an interrupted write"));
        removals.push(Removal { kind: ObjectKind::Tmp, name, path: t.path.clone(), size, role: None, reason });
    }
    if opts.cache_mounts {
        removals.extend(cache_mount_removals(store)?);
    }
    let reclaimable = removals.iter().map(|r| r.size).sum();
    Ok(GcPlan { removals, reclaimable, size_after, keep_storage: opts.keep_storage })
}

impl GcPlan {
    /// Removes what the plan lists, in an order that leaves the store
    /// consistent if it is interrupted (see the parent module). Needs the
    /// exclusive lock, held since the plan was made.
    pub fn apply(self, store: &Store, lock: &StoreLock) -> Result<GcReport, MaintainError> {
        if lock.mode() != LockMode::Exclusive {
            return Err(MaintainError::NeedsExclusiveLock { what: "garbage collection" });
        }
        let mut removed = Vec::new();
        for r in self.removals {
            match r.kind {
                ObjectKind::CacheEntry | ObjectKind::Blob => remove_file(&r.path)?,
                // A layer directory that exists is complete: it goes in one
                // rename, and is deleted from tmp/ below; so does a cache mount.
                ObjectKind::Layer | ObjectKind::CacheMount => {
                    let trash = store.tmp_dir().join(unique_name("gc-layer"));
                    match fs::rename(&r.path, &trash) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(MaintainError::io("move the unused layer into tmp/", &r.path)(e));
                        }
                        _ => {}
                    }
                }
                ObjectKind::Tmp => {} // swept below, with the layers moved there
            }
            removed.push(r);
        }
        store.sweep_tmp()?;
        let reclaimed = removed.iter().map(|r| r.size).sum();
        Ok(GcReport { removed, reclaimed, size_after: self.size_after })
    }
}

/// Every cache mount directory, named by its cache id (the `id` file
/// beside its data), with its size.
fn cache_mount_removals(store: &Store) -> Result<Vec<Removal>, MaintainError> {
    let dir = store.cache_mounts_dir();
    let mut paths = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries {
                paths.push(e.map_err(MaintainError::io("list", &dir))?.path());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(MaintainError::io("list", &dir)(e)),
    }
    paths.sort();
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    let sizes = tree_sizes(&refs)?;
    Ok(paths
        .into_iter()
        .zip(sizes)
        .map(|(path, size)| {
            let name = fs::read_to_string(path.join("id"))
                .unwrap_or_else(|_| path.file_name().unwrap_or_default().to_string_lossy().into_owned());
            let reason = Some("asked for with --cache-mounts".to_owned());
            Removal { kind: ObjectKind::CacheMount, name, path, size, role: None, reason }
        })
        .collect())
}

fn remove_file(path: &std::path::Path) -> Result<(), MaintainError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(MaintainError::io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Why an object goes with the cache entries evicted.
const EVICTED_ONLY: &str = "only evicted cache entries used it";

fn blob_removal(b: &BlobFile, reason: Option<String>) -> Removal {
    let (name, path) = (b.digest.to_string(), b.path.clone());
    Removal { kind: ObjectKind::Blob, name, path, size: b.size, role: None, reason }
}

/// What a blob's first bytes say it is: a gzip or tar stream is a layer; a
/// small JSON object is an index (`manifests`), a manifest (`config`) or a
/// config (`rootfs`).
fn sniff_role(path: &std::path::Path) -> Option<&'static str> {
    let mut file = fs::File::open(path).ok()?;
    let mut head = [0u8; 512];
    let n = std::io::Read::read(&mut file, &mut head).ok()?;
    if head[..n].starts_with(&[0x1f, 0x8b]) || (n == 512 && &head[257..262] == b"ustar") {
        return Some("layer");
    }
    if head.first() != Some(&b'{') || file.metadata().ok()?.len() > 4 << 20 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    ["manifests", "config", "rootfs"]
        .into_iter()
        .zip(["index", "manifest", "config"])
        .find_map(|(key, role)| doc.get(key).map(|_| role))
}

fn layer_removals(layers: &[&LayerDir]) -> Result<Vec<Removal>, MaintainError> {
    let paths: Vec<&std::path::Path> = layers.iter().map(|l| l.path.as_path()).collect();
    Ok(layers
        .iter()
        .zip(tree_sizes(&paths)?)
        .map(|(l, size)| Removal {
            kind: ObjectKind::Layer,
            name: layer_digest(&l.hex),
            path: l.path.clone(),
            size,
            role: None,
            reason: None,
        })
        .collect())
}

/// `sha256:<hex>` (or sha512) for a layer directory's name.
fn layer_digest(hex: &str) -> String {
    let alg = if hex.len() == 128 { "sha512" } else { "sha256" };
    format!("{alg}:{hex}")
}

/// What evicting cache entries down to a cap removes.
struct Eviction {
    entries: Vec<Removal>,
    blobs: Vec<Removal>,
    layers: Vec<Removal>,
    size_after: u64,
}

/// Evicts cache entries, least recently used first, while the live store
/// (what `live` needs, plus the entry files) is over `cap`. An object goes
/// with the last evicted entry that needs it, unless `pinned` needs it.
fn evict(
    inv: &Inventory,
    pinned: &Needs,
    live: &Needs,
    cached: &[(usize, Needs)],
    cap: u64,
) -> Result<Eviction, MaintainError> {
    let live_layers: Vec<_> = inv.layers.iter().filter(|l| live.layers.contains(&l.hex)).collect();
    let paths: Vec<&std::path::Path> = live_layers.iter().map(|l| l.path.as_path()).collect();
    let layer_size: HashMap<&str, u64> = live_layers.iter().map(|l| l.hex.as_str()).zip(tree_sizes(&paths)?).collect();
    let blob_size = |d: &Digest| inv.blob(d).map_or(0, |b| b.size);
    let mut size: u64 = live.blobs.iter().map(blob_size).sum::<u64>()
        + layer_size.values().sum::<u64>()
        + inv.cache.iter().map(|c| c.size).sum::<u64>();

    // How many remaining entries need each object nothing pinned needs.
    let mut blob_refs: HashMap<&Digest, usize> = HashMap::new();
    let mut layer_refs: HashMap<&str, usize> = HashMap::new();
    for (_, needs) in cached {
        for d in needs.blobs.iter().filter(|d| !pinned.blobs.contains(*d)) {
            *blob_refs.entry(d).or_default() += 1;
        }
        for l in needs.layers.iter().filter(|l| !pinned.layers.contains(*l)) {
            *layer_refs.entry(l.as_str()).or_default() += 1;
        }
    }
    let mut order: Vec<&(usize, Needs)> = cached.iter().collect();
    order.sort_by_key(|(i, _)| (inv.cache[*i].last_used, inv.cache[*i].key));

    let mut out = Eviction { entries: Vec::new(), blobs: Vec::new(), layers: Vec::new(), size_after: 0 };
    let mut freed_layers = BTreeSet::new();
    for (i, needs) in order {
        if size <= cap {
            break;
        }
        let file = &inv.cache[*i];
        let reason = format!("evicted to fit {}; last used {}", super::human_size(cap), rfc3339(file.last_used));
        size -= file.size;
        out.entries.push(Removal {
            kind: ObjectKind::CacheEntry,
            name: file.key.to_string(),
            path: file.path.clone(),
            size: file.size,
            role: None,
            reason: Some(reason),
        });
        for d in &needs.blobs {
            if let Some(n) = blob_refs.get_mut(d) {
                *n -= 1;
                if *n == 0
                    && let Some(b) = inv.blob(d)
                {
                    size -= b.size;
                    out.blobs.push(blob_removal(b, Some(EVICTED_ONLY.to_owned())));
                }
            }
        }
        for l in &needs.layers {
            if let Some(n) = layer_refs.get_mut(l.as_str()) {
                *n -= 1;
                if *n == 0 && inv.layer(l).is_some() {
                    size -= layer_size.get(l.as_str()).copied().unwrap_or(0);
                    freed_layers.insert(l.clone());
                }
            }
        }
    }
    let freed: Vec<_> = inv.layers.iter().filter(|l| freed_layers.contains(&l.hex)).collect();
    out.layers = freed
        .iter()
        .map(|l| Removal {
            kind: ObjectKind::Layer,
            name: layer_digest(&l.hex),
            path: l.path.clone(),
            size: layer_size.get(l.hex.as_str()).copied().unwrap_or(0),
            role: None,
            reason: Some(EVICTED_ONLY.to_owned()),
        })
        .collect();
    out.size_after = size;
    Ok(out)
}
