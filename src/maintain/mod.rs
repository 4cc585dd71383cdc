//! Store maintenance: garbage collection (`berth gc`), disk usage
//! (`berth system df`) and consistency checks (`berth fsck`).
//!
//! It needs both the store and the runtime's container records (and the
//! project network namespaces), so it sits above both: `store` never
//! imports `runtime`.
//!
//! # What the store holds, and who needs it
//!
//! Four kinds of objects take space and are managed here: **blobs**
//! (`oci/blobs/<alg>/<hex>`: manifests, indexes, configs, layer tars),
//! **unpacked layers** (`layers/<diffid-hex>/`), **cache entries**
//! (`cache/<key>`) and **leftovers** in `tmp/`. Three kinds of **roots**
//! say what is needed (`reach`):
//!
//! - every manifest in `oci/index.json`. A tag is an index entry with a
//!   `ref.name` annotation; an entry without one (another tool's, or an
//!   archive loaded without a name) is kept too, because the index is an OCI
//!   layout other tools read and it must never name a missing blob. `rmi`
//!   removes the index entry itself, so an image whose last tag is gone is
//!   *dangling*: no root names its manifest and gc removes it, unless a
//!   container uses it.
//! - every container record, running or stopped: its image (manifest,
//!   config, layer blobs, unpacked layers) and the unpacked layers its
//!   overlay mounts (`lowers`). Container directories themselves are never
//!   touched; `berth rm` owns them.
//! - every build cache entry: its layer blobs, their unpacked layers and the
//!   base config blob, which a cache hit turns into an image again.
//!
//! From an image manifest the walk reaches its config and layer blobs and,
//! through the config's `rootfs.diff_ids`, its unpacked layers; from an
//! index, the manifests it lists. Projects (`projects/`) and volumes
//! (`volumes/`) are not garbage-collected: `berth down [-v]` owns them.
//!
//! # Garbage collection
//!
//! [`plan_gc`] marks what the roots need and lists everything else; with a
//! `keep_storage` cap it then evicts build cache entries, least recently
//! used first (the entry file's mtime, which a cache hit refreshes), until
//! blobs + unpacked layers + cache entries fit under the cap, never
//! removing what a tag or a container needs. [`GcPlan::apply`] removes in
//! an order that is safe at every step: cache entries before the blobs they
//! name, and unpacked layers by renaming them into `tmp/` first (a layer
//! directory that exists is complete, so it must vanish in one step), then
//! `tmp/` is swept. A dry run is the plan alone.
//!
//! # Locking
//!
//! Functions take the held [`StoreLock`](super::StoreLock) as a witness:
//! changing anything needs the exclusive lock; planning, `df` and a
//! read-only fsck a shared one. Under either, no writer is active, so
//! everything in `tmp/` is a leftover of an interrupted write.

mod df;
mod error;
mod fsck;
mod gc;
mod inventory;
mod reach;
mod size;
#[cfg(test)]
mod tests;

pub use df::{CacheUsage, ContainerUsage, DiskUsage, ImageUsage, UsageRow, VolumeUsage, disk_usage};
pub use error::MaintainError;
pub use fsck::{FsckReport, Problem, ProblemKind, fsck, repair};
pub use gc::{GcOptions, GcPlan, GcReport, ObjectKind, Removal, plan_gc};
pub use size::{StorageSize, human_size};
