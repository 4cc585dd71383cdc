//! The cache index: `cache/<key>` maps a layer-graph node's [`CacheKey`] to
//! the layers that node produced, as a JSON [`CacheEntry`].
//!
//! An entry is written atomically after its layers are in the store, so an
//! entry that exists is complete. Whether its blobs and layers are still
//! present (after garbage collection) is the planner's question, not this
//! module's.

use std::fs;
use std::io;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::atomic::atomic_write;
use super::time::rfc3339;
use super::{Store, StoreError};
use crate::oci::Digest;
use crate::resolve::CacheKey;

/// What a graph node produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layers, base first.
    pub layers: Vec<LayerRecord>,
    /// When the entry was made, RFC 3339 UTC.
    pub created: String,
    /// For a base node: the digest of the base image's config blob (its
    /// env, cmd, history), which the images built on it start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Digest>,
}

impl CacheEntry {
    /// An entry for `layers` made at `created`.
    pub fn new(layers: Vec<LayerRecord>, created: SystemTime) -> CacheEntry {
        CacheEntry { layers, created: rfc3339(created), config: None }
    }
}

/// One layer as the image manifest and the overlay need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The digest of the layer blob (the tar as stored, possibly compressed).
    pub digest: Digest,
    /// The digest of the uncompressed tar; names the directory in `layers/`.
    pub diff_id: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The blob's media type, such as `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
}

impl Store {
    /// The entry for `key`, or `None` if there is none.
    pub fn cache_get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let path = self.cache_dir().join(key.to_string());
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read cache entry", path)(e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::BadCacheEntry { path, source })
    }

    /// Marks the entry for `key` as used now, for `berth gc --keep-storage`,
    /// which evicts the least recently used entries first: its file's
    /// mtime is the last use (writing the entry sets it too). One metadata
    /// write; the content is untouched. A missing entry is not an error.
    pub fn cache_touch(&self, key: &CacheKey) -> Result<(), StoreError> {
        let path = self.cache_dir().join(key.to_string());
        let file = match fs::File::options().write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("open cache entry", path)(e)),
        };
        file.set_modified(SystemTime::now()).map_err(StoreError::io("set the mtime of cache entry", path))
    }

    /// Records `entry` for `key`, replacing any earlier one.
    pub fn cache_put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), StoreError> {
        let path = self.cache_dir().join(key.to_string());
        let bytes = serde_json::to_vec_pretty(entry).map_err(|source| StoreError::Encode {
            what: "the cache entry",
            path: path.clone(),
            source,
        })?;
        atomic_write(&self.tmp_dir(), &path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::resolve::KeyHasher;
    use crate::store::testutil::temp_store;

    fn entry() -> CacheEntry {
        let layer = LayerRecord {
            digest: Digest::sha256(b"blob"),
            diff_id: Digest::sha256(b"tar"),
            size: 4,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
        };
        CacheEntry::new(vec![layer], UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    #[test]
    fn put_then_get() {
        let (_dir, store) = temp_store();
        let key = KeyHasher::new("run").field(b"make").finish();
        assert_eq!(store.cache_get(&key).unwrap(), None);
        store.cache_put(&key, &entry()).unwrap();
        let got = store.cache_get(&key).unwrap().unwrap();
        assert_eq!(got, entry());
        assert_eq!(got.created, "2023-11-14T22:13:20Z");
        assert!(store.cache_dir().join(key.to_string()).is_file());
    }

    #[test]
    fn touch_moves_the_last_use_and_keeps_the_content() {
        let (_dir, store) = temp_store();
        let key = KeyHasher::new("run").field(b"touch").finish();
        store.cache_put(&key, &entry()).unwrap();
        let path = store.cache_dir().join(key.to_string());
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        store.cache_touch(&key).unwrap();
        assert!(fs::metadata(&path).unwrap().modified().unwrap() > old);
        assert_eq!(store.cache_get(&key).unwrap(), Some(entry()));
        store.cache_touch(&KeyHasher::new("absent").finish()).unwrap();
    }

    #[test]
    fn a_corrupt_entry_is_reported_by_path() {
        let (_dir, store) = temp_store();
        let key = KeyHasher::new("run").finish();
        fs::write(store.cache_dir().join(key.to_string()), b"{\"layers\":").unwrap();
        let err = store.cache_get(&key).unwrap_err();
        assert!(matches!(err, StoreError::BadCacheEntry { .. }), "{err:?}");
        assert!(err.to_string().contains(&key.to_string()), "{err}");
    }
}
