//! `berth commit` and `berth snapshot`: a container's changes become an
//! image — its image plus one layer made from the container's writable
//! (upper) dir.
//!
//! # What [`commit`] does, in order
//!
//! 1. Checks everything that needs no reading of the container first, so
//!    that a bad tag or `--change` fails before anything is frozen: the tag,
//!    the instructions (applied on top of the image's runtime defaults, see
//!    [`ImageConfigInput::from_config`]), the image and its unpacked layers.
//! 2. **Freezes** the container if it runs and `pause` is set (cgroup
//!    freezer, [`crate::runtime::freeze`]): no process changes its files
//!    while they are read. The [`Frozen`] guard thaws it when dropped, so
//!    every error path thaws too; a thaw that fails is reported, beside the
//!    first error if there was one.
//! 3. Makes the layer with [`layer_from_upper_with`]: only what changed
//!    against the image's layers, whiteouts for deletions, opaque markers
//!    for replaced directories, mtimes kept as they are
//!    ([`MtimePolicy::Keep`]: whiteouts and opaque markers, which have no
//!    mtime of their own, are dated 1970 as containerd dates them, so every
//!    tar reader takes them). The mount points
//!    the runtime made in the upper dir for the container's mounts (an empty
//!    `/etc/hosts` when the image had none, a volume's directory) are left
//!    out, as Docker leaves its init layer out. The upper dir is read without
//!    following any symlink in it (see `build::layer`), so a container that
//!    swaps a directory for a link to `/` mid-commit (possible only with
//!    `pause` off) makes the commit fail; it never reads the host's files.
//!    Only the blob goes into the store (gzip or zstd, compressed on every
//!    core, both digests computed as it is written, one fsync); the store
//!    unpacks it, checking its diffID, when the image first runs. Writing the
//!    unpacked copy too would double the writes and fsync every file.
//! 4. **Thaws** the container.
//! 5. Writes the config (the parent's, with the new defaults, the new
//!    diffID, and a history entry with the message as its comment, what
//!    made it — `berth commit NAME` or the caller's words — and the time)
//!    and the manifest, and tags it if a tag was given. Until the tag is set
//!    nothing refers to the new blobs, so a failure leaves nothing visible.
//!
//! A container that changed nothing gives an image with no new layer and a
//! history entry marked `empty_layer`, as Docker does.
//!
//! The caller holds the store's exclusive lock ([`crate::store::Store::lock_exclusive`]).

mod image;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::build::layer::{LayerError, LayerOptions, layer_from_upper_with};
use crate::oci::{ChangeError, Compression, Digest, ImageConfigInput, MtimePolicy};
use crate::runtime::container::Container;
use crate::runtime::freeze::{self, FreezeError, Frozen};
use crate::store::{ImageError, LayerRecord, Store, StoreError, normalize_tag_name, rfc3339};

/// What [`commit`] makes and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOptions {
    /// The tag of the new image (`NAME[:TAG]`, `:latest` by default);
    /// `None` leaves it untagged, known by its ID.
    pub tag: Option<String>,
    /// The history entry's comment (`-m`).
    pub message: Option<String>,
    /// The image's and the history entry's author (`-a`).
    pub author: Option<String>,
    /// How the history entry reads (`berth history`'s CREATED BY), such as
    /// `berth snapshot api`; `None` is `berth commit CONTAINER`. The
    /// message follows it there after `: `.
    pub created_by: Option<String>,
    /// Dockerfile instructions applied to the image's runtime defaults
    /// (`ENV K=V`, `CMD [...]`, …), in order.
    pub changes: Vec<String>,
    /// Gzip or zstd.
    pub compression: Compression,
    /// Freeze a running container while its files are read.
    pub pause: bool,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions {
            tag: None,
            message: None,
            author: None,
            created_by: None,
            changes: Vec::new(),
            compression: Compression::Gzip,
            pause: true,
        }
    }
}

/// What [`commit`] made.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Committed {
    /// The manifest's digest: the new image's ID.
    pub manifest: Digest,
    pub manifest_size: u64,
    /// The config blob's digest.
    pub config: Digest,
    /// The new layer; `None` when the container changed nothing.
    pub layer: Option<LayerRecord>,
    /// The tag set, in full `repository:tag` form.
    pub tag: Option<String>,
    /// Whether the container was running and frozen while it was read.
    pub froze: bool,
}

/// Why a container could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("container {container}: its image {image} cannot be used: {source}")]
    Image { container: String, image: Digest, source: Box<ImageError> },
    #[error(
        "container {container}: its image layer {} is missing from the store; the container cannot be committed (remove it and run the image again)",
        path.display()
    )]
    LowerMissing { container: String, path: PathBuf },
    #[error(transparent)]
    Freeze(Box<FreezeError>),
    #[error("container {container}: cannot make a layer of its changes: {source}")]
    Layer { container: String, source: Box<LayerError> },
    #[error("{error}; and then: {thaw}")]
    LayerAndThaw { error: Box<CommitError>, thaw: Box<FreezeError> },
    #[error("cannot encode the {what} of the new image: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes an image of the container `c`'s image plus its changes and writes
/// it into `store` (see the module page).
pub fn commit(store: &Store, c: &Container, opts: &CommitOptions) -> Result<Committed, CommitError> {
    let name = c.record.name.clone();
    let tag = opts.tag.as_deref().map(normalize_tag_name).transpose()?;
    let image_err = |source| CommitError::Image {
        container: name.clone(),
        image: c.record.image_digest.clone(),
        source: Box::new(source),
    };
    let parent = store.resolve_image(&c.record.image_digest.to_string()).map_err(image_err)?;
    let mut input = parent.config.config().as_ref().map(ImageConfigInput::from_config).unwrap_or_default();
    for change in &opts.changes {
        input.apply_change(change)?;
    }
    if let Some(missing) = c.record.lowers.iter().find(|l| !l.is_dir()) {
        return Err(CommitError::LowerMissing { container: name, path: missing.clone() });
    }
    let layer_opts = LayerOptions {
        mtimes: MtimePolicy::Keep,
        compression: opts.compression,
        exclude: mount_points(c),
        unpack: false,
        id_base: c.record.userns_base,
    };

    let frozen = if opts.pause { freeze::freeze(c).map_err(|e| CommitError::Freeze(Box::new(e)))? } else { None };
    let froze = frozen.is_some();
    let made = layer_from_upper_with(store, &c.paths.upper(), &c.record.lowers, &layer_opts)
        .map_err(|source| CommitError::Layer { container: name.clone(), source: Box::new(source) });
    let layer = thaw_after(frozen, made)?;

    let created = rfc3339(SystemTime::now());
    let mut created_by = opts.created_by.clone().unwrap_or_else(|| format!("berth commit {name}"));
    if let Some(message) = &opts.message {
        created_by = format!("{created_by}: {message}");
    }
    let layer = (!layer.empty).then_some(layer.record);
    let new = image::NewImage {
        parent: &parent,
        input: &input,
        layer: layer.as_ref(),
        created: &created,
        created_by: &created_by,
        comment: opts.message.as_deref(),
        author: opts.author.as_deref(),
    };
    let written = image::write(store, &new)?;
    if let Some(tag) = &tag {
        let manifest = crate::oci::image::descriptor(
            oci_spec::image::MediaType::ImageManifest,
            written.manifest_size,
            &written.manifest,
        );
        store.set_tag(tag, manifest)?;
    }
    Ok(Committed {
        manifest: written.manifest,
        manifest_size: written.manifest_size,
        config: written.config,
        layer,
        tag,
        froze,
    })
}

/// Thaws `frozen` (if any) after `made`, keeping both errors when both fail.
fn thaw_after<T>(frozen: Option<Frozen>, made: Result<T, CommitError>) -> Result<T, CommitError> {
    let thawed = frozen.map(Frozen::thaw).transpose();
    match (made, thawed) {
        (Ok(value), Ok(_)) => Ok(value),
        (Ok(_), Err(thaw)) => Err(CommitError::Freeze(Box::new(thaw))),
        (Err(error), Ok(_)) => Err(error),
        (Err(error), Err(thaw)) => Err(CommitError::LayerAndThaw { error: Box::new(error), thaw: Box::new(thaw) }),
    }
}

/// The default tag of a snapshot of `env` of `project` taken at `now`:
/// `PROJECT/ENV:snapshot-YYYYMMDD-HHMMSS`, the time in UTC, so that a
/// project's snapshots sort by time.
pub fn snapshot_tag(project: &str, env: &str, now: SystemTime) -> String {
    let stamp: String = rfc3339(now).chars().filter(char::is_ascii_digit).collect();
    format!("{project}/{env}:snapshot-{}-{}", &stamp[..8], &stamp[8..14])
}

/// The destinations of the container's mounts, relative to its root (see
/// [`crate::build::layer::mount_points`]). A container without a readable
/// spec has none to leave out.
pub fn mount_points(c: &Container) -> HashSet<PathBuf> {
    match oci_spec::runtime::Spec::load(c.paths.spec()) {
        Ok(spec) => crate::build::layer::mount_points(&spec),
        Err(_) => HashSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn default_snapshot_tags_are_valid_and_sortable() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let tag = snapshot_tag("shop", "api", at);
        assert_eq!(tag, "shop/api:snapshot-20231114-221320");
        assert_eq!(normalize_tag_name(&tag).unwrap(), tag);
    }
}
