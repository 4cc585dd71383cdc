//! `berth system df`: what takes space in the store, by kind, and how much
//! of it could go.
//!
//! | row | TOTAL / ACTIVE | SIZE | RECLAIMABLE |
//! |---|---|---|---|
//! | Images | distinct image manifests in the index / used by a container | their blobs and unpacked layers | what only unused images need (not containers, not the build cache) |
//! | Containers | containers / running | their writable layers (`upper/`) | the writable layers of stopped ones |
//! | Build cache | cache entries / sharing a layer with an image or container | their blobs, unpacked layers and entry files | what only the cache needs: what `berth gc --keep-storage 0` frees |
//! | Local volumes | named volumes (`volumes/<project>/<name>`) / mounted by a container | their files | unmounted ones |
//!
//! Objects several rows need are counted in each, as Docker does; the
//! store's total (each object once) and what plain `berth gc` would free
//! now (objects nothing needs, `tmp/` leftovers) are given beside the rows.
//! Sizes are those of regular files, each inode once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::MaintainError;
use super::inventory::{Inventory, list, tree_size, tree_sizes};
use super::reach::{Needs, Walker, read_index};
use crate::oci::Digest;
use crate::runtime::container::{self, Container};
use crate::runtime::{control, state};
use crate::store::{Store, StoreLock, rfc3339};

/// One row of the summary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UsageRow {
    /// `Images`, `Containers`, `Build cache` or `Local volumes`.
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// One image (a manifest the index names), for `-v`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageUsage {
    /// Its tags, or none for an untagged index entry.
    pub names: Vec<String>,
    pub id: Digest,
    /// Its blobs and unpacked layers.
    pub size: u64,
    /// The part no other image needs.
    pub unique: u64,
    /// Containers made from it.
    pub containers: usize,
}

/// One container, for `-v`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContainerUsage {
    pub name: String,
    pub id: String,
    pub image: String,
    pub status: String,
    /// Its writable layer.
    pub size: u64,
}

/// One build cache entry, for `-v`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CacheUsage {
    pub key: String,
    pub created: Option<String>,
    /// When a build last made or hit it.
    pub last_used: String,
    /// Its entry file, blobs and unpacked layers.
    pub size: u64,
    /// Whether an image or container shares a layer with it.
    pub in_use: bool,
}

/// One named volume, for `-v`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VolumeUsage {
    pub project: String,
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Containers that mount it.
    pub containers: usize,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DiskUsage {
    /// Images, Containers, Build cache, Local volumes, in that order.
    pub rows: Vec<UsageRow>,
    /// Blobs, unpacked layers, cache entries and leftovers, each once.
    pub store_size: u64,
    /// What plain `berth gc` would free now.
    pub unreferenced: u64,
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub cache: Vec<CacheUsage>,
    pub volumes: Vec<VolumeUsage>,
}

/// Where `berth up` keeps named volumes (see `plan::up`).
fn volumes_dir(store: &Store) -> PathBuf {
    store.root().join("volumes")
}

/// Measures the store. `_lock` is the held store lock (shared is enough).
pub fn disk_usage(store: &Store, _lock: &StoreLock) -> Result<DiskUsage, MaintainError> {
    let inv = Inventory::scan(store)?;
    let layer_paths: Vec<&Path> = inv.layers.iter().map(|l| l.path.as_path()).collect();
    let layer_size: HashMap<&str, u64> =
        inv.layers.iter().map(|l| l.hex.as_str()).zip(tree_sizes(&layer_paths)?).collect();
    let size_of = |n: &Needs| -> u64 {
        n.blobs.iter().filter_map(|d| inv.blob(d)).map(|b| b.size).sum::<u64>()
            + n.layers.iter().filter_map(|l| layer_size.get(l.as_str())).sum::<u64>()
    };
    let mut walker = Walker::new(store);
    let containers = container::list(&store.containers_dir())?;

    // Images: one per distinct manifest the index names.
    let mut by_manifest: BTreeMap<Digest, (Vec<String>, Needs)> = BTreeMap::new();
    for entry in read_index(store)? {
        let needs = walker.index_entry(&entry);
        let slot = by_manifest.entry(entry.digest.clone()).or_insert_with(|| (Vec::new(), needs));
        slot.0.extend(entry.name.clone());
    }
    let mut container_needs = Needs::default();
    for c in &containers {
        container_needs.extend(&walker.container(c));
    }
    let used = |d: &Digest| containers.iter().filter(|c| c.record.image_digest == *d).count();
    let (mut all_images, mut active_images, mut idle_images) = (Needs::default(), Needs::default(), Needs::default());
    for (digest, (_, needs)) in &by_manifest {
        all_images.extend(needs);
        if used(digest) > 0 { &mut active_images } else { &mut idle_images }.extend(needs);
    }
    let mut pinned = all_images.clone();
    pinned.extend(&container_needs);

    // The build cache.
    let mut all_cache = Needs::default();
    let mut cache = Vec::new();
    for c in &inv.cache {
        let needs = match &c.entry {
            Ok(e) => walker.cache_entry(&c.key.to_string(), e),
            Err(_) => Needs::default(),
        };
        all_cache.extend(&needs);
        cache.push(CacheUsage {
            key: c.key.to_string(),
            created: c.entry.as_ref().ok().map(|e| e.created.clone()),
            last_used: rfc3339(c.last_used),
            size: size_of(&needs) + c.size,
            in_use: needs.blobs.iter().any(|d| pinned.blobs.contains(d)),
        });
    }
    let cache_files: u64 = inv.cache.iter().map(|c| c.size).sum();

    let mut images = Vec::new();
    for (digest, (names, needs)) in &by_manifest {
        let mut others = Needs::default();
        for (d, (_, n)) in &by_manifest {
            if d != digest {
                others.extend(n);
            }
        }
        let unique = size_of(&minus(needs, &others));
        images.push(ImageUsage {
            names: names.clone(),
            id: digest.clone(),
            size: size_of(needs),
            unique,
            containers: used(digest),
        });
    }
    let mut image_keep = active_images.clone();
    image_keep.extend(&container_needs);
    image_keep.extend(&all_cache);

    let (container_rows, running) = container_usage(&containers)?;
    let volumes = volume_usage(store, &containers)?;

    let mut live = pinned.clone();
    live.extend(&all_cache);
    let dead_blobs: u64 = inv.blobs.iter().filter(|b| !live.blobs.contains(&b.digest)).map(|b| b.size).sum();
    let dead_layers: u64 =
        inv.layers.iter().filter(|l| !live.layers.contains(&l.hex)).map(|l| layer_size[l.hex.as_str()]).sum();
    let tmp_paths: Vec<&Path> = inv.tmp.iter().map(|t| t.path.as_path()).collect();
    let tmp: u64 = tree_sizes(&tmp_paths)?.iter().sum();
    let store_size =
        inv.blobs.iter().map(|b| b.size).sum::<u64>() + layer_size.values().sum::<u64>() + cache_files + tmp;

    let rows = vec![
        UsageRow {
            kind: "Images",
            total: by_manifest.len(),
            active: images.iter().filter(|i| i.containers > 0).count(),
            size: size_of(&all_images),
            reclaimable: size_of(&minus(&idle_images, &image_keep)),
        },
        UsageRow {
            kind: "Containers",
            total: container_rows.len(),
            active: running,
            size: container_rows.iter().map(|c| c.size).sum(),
            reclaimable: container_rows.iter().filter(|c| !is_up(&c.status)).map(|c| c.size).sum(),
        },
        UsageRow {
            kind: "Build cache",
            total: cache.len(),
            active: cache.iter().filter(|c| c.in_use).count(),
            size: size_of(&all_cache) + cache_files,
            reclaimable: size_of(&minus(&all_cache, &pinned)) + cache_files,
        },
        UsageRow {
            kind: "Local volumes",
            total: volumes.len(),
            active: volumes.iter().filter(|v| v.containers > 0).count(),
            size: volumes.iter().map(|v| v.size).sum(),
            reclaimable: volumes.iter().filter(|v| v.containers == 0).map(|v| v.size).sum(),
        },
    ];
    Ok(DiskUsage {
        rows,
        store_size,
        unreferenced: dead_blobs + dead_layers + tmp,
        images,
        containers: container_rows,
        cache,
        volumes,
    })
}

/// What `a` needs that `b` does not.
fn minus(a: &Needs, b: &Needs) -> Needs {
    Needs {
        blobs: a.blobs.difference(&b.blobs).cloned().collect(),
        layers: a.layers.difference(&b.layers).cloned().collect(),
    }
}

fn is_up(status: &str) -> bool {
    matches!(status, "running" | "restarting" | "paused")
}

/// Each container's writable layer and status, and how many are up.
fn container_usage(containers: &[Container]) -> Result<(Vec<ContainerUsage>, usize), MaintainError> {
    let uppers: Vec<PathBuf> = containers.iter().map(|c| c.paths.upper()).collect();
    let upper_refs: Vec<&Path> = uppers.iter().map(PathBuf::as_path).collect();
    let sizes = tree_sizes(&upper_refs)?;
    let rows: Vec<ContainerUsage> = containers
        .iter()
        .zip(sizes)
        .map(|(c, size)| {
            let st = control::current_state(c).ok().flatten();
            let status = st.as_ref().map_or(state::Status::Created, |s| state::observed_status(s).status);
            ContainerUsage {
                name: c.record.name.clone(),
                id: c.record.id.short().to_owned(),
                image: c.record.image.clone(),
                status: status.as_str().to_owned(),
                size,
            }
        })
        .collect();
    let up = rows.iter().filter(|c| is_up(&c.status)).count();
    Ok((rows, up))
}

/// Named volumes under `volumes/<project>/<name>`, with the containers
/// whose runtime spec mounts each.
fn volume_usage(store: &Store, containers: &[Container]) -> Result<Vec<VolumeUsage>, MaintainError> {
    let mounted: Vec<Vec<PathBuf>> = containers.iter().map(|c| mount_sources(&c.paths.spec())).collect();
    let mut out = Vec::new();
    for (project_dir, kind) in list(&volumes_dir(store))? {
        if !kind.is_dir() {
            continue;
        }
        for (path, kind) in list(&project_dir)? {
            if !kind.is_dir() {
                continue;
            }
            let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push(VolumeUsage {
                project: name(&project_dir),
                name: name(&path),
                size: tree_size(&path)?,
                containers: mounted.iter().filter(|m| m.contains(&path)).count(),
                path,
            });
        }
    }
    out.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
    Ok(out)
}

/// The mount sources in a container's OCI runtime spec (none if it cannot
/// be read: such a container mounts nothing gc or df would know of).
fn mount_sources(spec: &Path) -> Vec<PathBuf> {
    let Ok(bytes) = std::fs::read(spec) else { return Vec::new() };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Vec::new() };
    let mounts = doc.get("mounts").and_then(|m| m.as_array()).cloned().unwrap_or_default();
    mounts.iter().filter_map(|m| m.get("source")?.as_str().map(PathBuf::from)).collect()
}
