//! Marking: what each root needs. A root is an entry of `oci/index.json`,
//! a container record or a build cache entry (see the parent module); what
//! it needs is a set of blobs and unpacked layers ([`Needs`]).
//!
//! The walk reads JSON blobs generically, so OCI and Docker media types
//! alike work: a blob with a `manifests` array is an index (its manifests
//! are walked), one with a `config` descriptor is an image manifest (its
//! config and layers are needed, and the config's `rootfs.diff_ids` name
//! its unpacked layers). Every reference followed is recorded as an
//! [`Edge`], which fsck checks (does the blob exist, is its size the one
//! the descriptor says); every manifest, index or config that cannot be
//! read is recorded as a [`Gap`], because what lies beyond it is unknown.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use oci_spec::image::{ANNOTATION_REF_NAME, ImageIndex};
use serde_json::Value;

use super::MaintainError;
use crate::oci::Digest;
use crate::runtime::container::Container;
use crate::store::{CacheEntry, Store};

/// What some roots need: blob digests and unpacked layers by diffID hex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Needs {
    pub blobs: BTreeSet<Digest>,
    pub layers: BTreeSet<String>,
}

impl Needs {
    pub fn extend(&mut self, other: &Needs) {
        self.blobs.extend(other.blobs.iter().cloned());
        self.layers.extend(other.layers.iter().cloned());
    }
}

/// One reference from something in the store to a blob.
#[derive(Clone, Debug)]
pub(super) struct Edge {
    /// The root the walk came from: `tag app:latest`, `container web (…)`,
    /// `cache entry …`; the first one, when several share the blob.
    pub root: String,
    /// Who refers: `tag app:latest`, `manifest sha256:…`, `cache entry …`.
    pub from: String,
    /// What the blob is to it: `manifest`, `config`, `layer`.
    pub role: &'static str,
    pub digest: Digest,
    /// The size the reference states, if it states one.
    pub size: Option<u64>,
}

/// A manifest, index or config that could not be read: what it refers to
/// is unknown.
#[derive(Clone, Debug)]
pub(super) struct Gap {
    /// The root the walk came from, as in [`Edge::root`].
    pub root: String,
    pub from: String,
    pub role: &'static str,
    pub digest: Digest,
    pub reason: String,
    /// The blob is simply not there (fsck reports that from the edges).
    pub missing: bool,
}

/// An entry of `oci/index.json`.
#[derive(Clone, Debug)]
pub(super) struct IndexEntry {
    /// The `ref.name` annotation, if the entry is a tag.
    pub name: Option<String>,
    pub digest: Digest,
    pub size: u64,
}

impl IndexEntry {
    /// How the entry is named in messages.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("tag {name}"),
            None => format!("untagged index entry {}", self.digest),
        }
    }
}

/// Reads `oci/index.json`, refusing descriptors whose digest is not valid:
/// gc cannot know what such an entry needs.
pub(super) fn read_index(store: &Store) -> Result<Vec<IndexEntry>, MaintainError> {
    let path = store.index_path();
    let bytes = fs::read(&path).map_err(MaintainError::io("read the image index", &path))?;
    let bad = |reason: String| MaintainError::BadIndex { path: path.clone(), reason };
    let index: ImageIndex = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not a valid OCI image index ({e}); repair or restore it")))?;
    index
        .manifests()
        .iter()
        .map(|d| {
            let name = d.annotations().as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
            let digest = d
                .digest()
                .to_string()
                .parse::<Digest>()
                .map_err(|e| bad(format!("entry {}: {e}", name.as_deref().unwrap_or("without a name"))))?;
            Ok(IndexEntry { name, digest, size: d.size() })
        })
        .collect()
}

/// Walks roots and remembers what each image blob needs, so that an image
/// shared by several roots is read once.
pub(super) struct Walker<'a> {
    store: &'a Store,
    memo: HashMap<Digest, Needs>,
    /// The root being walked, for [`Edge::root`].
    root: String,
    pub edges: Vec<Edge>,
    pub gaps: Vec<Gap>,
}

impl<'a> Walker<'a> {
    pub fn new(store: &'a Store) -> Walker<'a> {
        Walker { store, memo: HashMap::new(), root: String::new(), edges: Vec::new(), gaps: Vec::new() }
    }

    /// What an index entry needs.
    pub fn index_entry(&mut self, entry: &IndexEntry) -> Needs {
        self.root = entry.label();
        self.image(&entry.label(), "manifest", &entry.digest, Some(entry.size))
    }

    /// What a container needs: its image and its overlay's lower layers.
    pub fn container(&mut self, c: &Container) -> Needs {
        let from = format!("container {} ({})", c.record.name, c.record.id.short());
        self.root = from.clone();
        let mut needs = self.image(&from, "image manifest", &c.record.image_digest, None);
        needs.layers.extend(c.record.lowers.iter().filter_map(|l| layer_name(l)));
        needs
    }

    /// What a cache entry needs: its layer blobs and unpacked layers, and
    /// the base config it carries.
    pub fn cache_entry(&mut self, key: &str, entry: &CacheEntry) -> Needs {
        let from = format!("cache entry {key}");
        self.root = from.clone();
        let mut needs = Needs::default();
        for layer in &entry.layers {
            self.edges.push(Edge {
                root: self.root.clone(),
                from: from.clone(),
                role: "layer",
                digest: layer.digest.clone(),
                size: Some(layer.size),
            });
            needs.blobs.insert(layer.digest.clone());
            needs.layers.insert(layer.diff_id.hex().to_owned());
        }
        if let Some(config) = &entry.config {
            self.edges.push(Edge { root: self.root.clone(), from, role: "config", digest: config.clone(), size: None });
            needs.blobs.insert(config.clone());
        }
        needs
    }

    /// What the manifest or index `digest` needs, itself included; `from`
    /// and `role` say who refers to it and as what.
    fn image(&mut self, from: &str, role: &'static str, digest: &Digest, size: Option<u64>) -> Needs {
        self.edges.push(Edge { root: self.root.clone(), from: from.to_owned(), role, digest: digest.clone(), size });
        if let Some(needs) = self.memo.get(digest) {
            return needs.clone();
        }
        let mut needs = Needs::default();
        needs.blobs.insert(digest.clone());
        match self.read_json(digest) {
            Ok(Some(doc)) => self.image_doc(digest, &doc, &mut needs).unwrap_or_else(|reason| {
                self.gap(from, role, digest, reason, false);
            }),
            Ok(None) => self.gap(from, role, digest, "the blob is missing".to_owned(), true),
            Err(reason) => self.gap(from, role, digest, reason, false),
        }
        self.memo.insert(digest.clone(), needs.clone());
        needs
    }

    fn image_doc(&mut self, digest: &Digest, doc: &Value, needs: &mut Needs) -> Result<(), String> {
        if let Some(manifests) = doc.get("manifests").and_then(Value::as_array) {
            let from = format!("index {digest}");
            for m in manifests {
                let (child, size) = descriptor(m)?;
                needs.extend(&self.image(&from, "manifest", &child, size));
            }
            return Ok(());
        }
        let Some(config) = doc.get("config") else {
            return Err("it is neither an image manifest nor an image index".to_owned());
        };
        let from = format!("manifest {digest}");
        let (config, size) = descriptor(config)?;
        self.edges.push(Edge {
            root: self.root.clone(),
            from: from.clone(),
            role: "config",
            digest: config.clone(),
            size,
        });
        needs.blobs.insert(config.clone());
        for layer in doc.get("layers").and_then(Value::as_array).into_iter().flatten() {
            let (layer, size) = descriptor(layer)?;
            self.edges.push(Edge {
                root: self.root.clone(),
                from: from.clone(),
                role: "layer",
                digest: layer.clone(),
                size,
            });
            needs.blobs.insert(layer);
        }
        match self.read_json(&config) {
            Ok(Some(doc)) => {
                let diff_ids = doc.pointer("/rootfs/diff_ids").and_then(Value::as_array);
                for id in diff_ids.into_iter().flatten() {
                    let id = id.as_str().and_then(|s| s.parse::<Digest>().ok());
                    let id = id.ok_or_else(|| format!("its config {config} lists a diff_id that is not a digest"))?;
                    needs.layers.insert(id.hex().to_owned());
                }
            }
            Ok(None) => self.gap(&from, "config", &config, "the blob is missing".to_owned(), true),
            Err(reason) => self.gap(&from, "config", &config, reason, false),
        }
        Ok(())
    }

    fn gap(&mut self, from: &str, role: &'static str, digest: &Digest, reason: String, missing: bool) {
        self.gaps.push(Gap {
            root: self.root.clone(),
            from: from.to_owned(),
            role,
            digest: digest.clone(),
            reason,
            missing,
        });
    }

    /// The blob as JSON; `None` if it is missing.
    fn read_json(&self, digest: &Digest) -> Result<Option<Value>, String> {
        let path = self.store.blob_path(digest);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("it is not valid JSON ({e})")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The digest and size of a JSON descriptor.
fn descriptor(d: &Value) -> Result<(Digest, Option<u64>), String> {
    let text = d.get("digest").and_then(Value::as_str).ok_or("a descriptor has no digest")?;
    let digest = text.parse::<Digest>().map_err(|e| e.to_string())?;
    Ok((digest, d.get("size").and_then(Value::as_u64)))
}

/// The diffID hex of an unpacked layer path (`…/layers/<hex>`).
fn layer_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let hex = matches!(name.len(), 64 | 128) && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| name.to_owned())
}
