//! Tags: names for image manifests, kept in `oci/index.json`.
//!
//! A tag is a manifest descriptor in the index annotated with
//! `org.opencontainers.image.ref.name` = `repository:tag`, so the store stays
//! a standard OCI image layout that other tools can read. A name given
//! without `:tag` means `:latest`. Changing tags rewrites the whole index
//! atomically; callers hold [`Store::lock_exclusive`] around it so that two
//! writers do not lose each other's change.

use std::fs;

use oci_spec::image::{ANNOTATION_REF_NAME, Descriptor, ImageIndex};

use super::atomic::atomic_write;
use super::layout::encode_index;
use super::{Store, StoreError};
use crate::oci::Digest;

/// A tag and the manifest it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The full name, `repository:tag`.
    pub name: String,
    /// The manifest's descriptor as stored in the index (with its ref.name annotation).
    pub descriptor: Descriptor,
}

impl Tag {
    /// The part before the tag, such as `app` or `registry:5000/team/app`.
    pub fn repository(&self) -> &str {
        split_name(&self.name).0
    }

    /// The part after the last `:` of the final path component, such as `1.0`.
    pub fn tag(&self) -> &str {
        split_name(&self.name).1
    }
}

/// Checks an image name and returns it in full `repository:tag` form.
///
/// The tag is what follows the last `:` after the last `/` (so a registry
/// port is not mistaken for a tag) and defaults to `latest`. Neither part may
/// be empty or contain whitespace or control characters.
pub fn normalize_tag_name(name: &str) -> Result<String, StoreError> {
    let bad = |reason| Err(StoreError::BadTagName { name: name.to_owned(), reason });
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace or control characters");
    }
    let (repository, tag) = split_name(name);
    if repository.is_empty() {
        return bad("the repository part is empty");
    }
    if tag.is_empty() {
        return bad("the tag after ':' is empty");
    }
    Ok(format!("{repository}:{tag}"))
}

/// Splits `repo[:tag]` into its parts, `latest` when no tag is given.
fn split_name(name: &str) -> (&str, &str) {
    let last_component = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_component..].rfind(':') {
        Some(i) => (&name[..last_component + i], &name[last_component + i + 1..]),
        None => (name, "latest"),
    }
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor.annotations().as_ref()?.get(ANNOTATION_REF_NAME).map(String::as_str)
}

impl Store {
    /// All tags, sorted by name.
    pub fn tags(&self) -> Result<Vec<Tag>, StoreError> {
        let index = self.read_index()?;
        let mut tags: Vec<Tag> = index
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(|name| Tag { name: name.to_owned(), descriptor: d.clone() }))
            .collect();
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tags)
    }

    /// Points the tag `name` at the manifest `descriptor`, replacing any tag
    /// of that name. The manifest blob must already be in the store.
    pub fn set_tag(&self, name: &str, descriptor: Descriptor) -> Result<(), StoreError> {
        let name = normalize_tag_name(name)?;
        let digest = Digest::try_from(descriptor.digest()).map_err(|source| StoreError::BadTagDigest {
            name: name.clone(),
            digest: descriptor.digest().to_string(),
            source,
        })?;
        if !self.has_blob(&digest) {
            return Err(StoreError::TagTargetMissing { name, path: self.blob_path(&digest), digest });
        }
        let mut descriptor = descriptor;
        let mut annotations = descriptor.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_REF_NAME.to_owned(), name.clone());
        descriptor.set_annotations(Some(annotations));

        let mut index = self.read_index()?;
        if index.manifests().contains(&descriptor) {
            // Already so: a no-op build writes nothing.
            return Ok(());
        }
        let mut manifests = index.manifests().clone();
        manifests.retain(|d| ref_name(d) != Some(name.as_str()));
        manifests.push(descriptor);
        index.set_manifests(manifests);
        self.write_index(index)
    }

    /// Removes the tag `name`; `Ok(false)` if there was none. The manifest's
    /// blobs stay (removing unreferenced blobs is garbage collection's job).
    pub fn remove_tag(&self, name: &str) -> Result<bool, StoreError> {
        let name = normalize_tag_name(name)?;
        let mut index = self.read_index()?;
        let mut manifests = index.manifests().clone();
        manifests.retain(|d| ref_name(d) != Some(name.as_str()));
        if manifests.len() == index.manifests().len() {
            return Ok(false);
        }
        index.set_manifests(manifests);
        self.write_index(index)?;
        Ok(true)
    }

    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(StoreError::io("read the image index", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadIndex { path, source })
    }

    /// Writes the index with its manifests in a stable order (untagged
    /// first, then by tag name, then by digest), so equal states give equal
    /// files.
    fn write_index(&self, mut index: ImageIndex) -> Result<(), StoreError> {
        let mut manifests = index.manifests().clone();
        manifests.sort_by_cached_key(|d| (ref_name(d).map(str::to_owned), d.digest().to_string()));
        index.set_manifests(manifests);
        let path = self.index_path();
        atomic_write(&self.tmp_dir(), &path, &encode_index(&index, &path)?)
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::image::MediaType;

    use super::*;
    use crate::store::testutil::temp_store;

    fn manifest(store: &Store, body: &[u8]) -> Descriptor {
        let digest = store.put_blob(body).unwrap();
        Descriptor::new(MediaType::ImageManifest, body.len() as u64, &digest)
    }

    fn assert_valid_index(store: &Store) -> ImageIndex {
        ImageIndex::from_file(store.index_path()).expect("index.json stays a valid OCI index")
    }

    #[test]
    fn names_are_normalized_and_checked() {
        assert_eq!(normalize_tag_name("app").unwrap(), "app:latest");
        assert_eq!(normalize_tag_name("app:1.0").unwrap(), "app:1.0");
        assert_eq!(normalize_tag_name("localhost:5000/app").unwrap(), "localhost:5000/app:latest");
        assert_eq!(normalize_tag_name("localhost:5000/app:v2").unwrap(), "localhost:5000/app:v2");
        for bad in ["", ":1.0", "app:", "my app", "app:1.0\n"] {
            let err = normalize_tag_name(bad).unwrap_err();
            assert!(matches!(err, StoreError::BadTagName { .. }), "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn set_replace_list_and_remove_tags() {
        let (_dir, store) = temp_store();
        assert!(store.tags().unwrap().is_empty());
        let one = manifest(&store, b"{\"one\":1}");
        let two = manifest(&store, b"{\"two\":2}");

        store.set_tag("web", one.clone()).unwrap();
        store.set_tag("api:1.0", one.clone()).unwrap();
        assert_valid_index(&store);
        let tags = store.tags().unwrap();
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["api:1.0", "web:latest"]);
        assert_eq!((tags[0].repository(), tags[0].tag()), ("api", "1.0"));

        store.set_tag("web:latest", two.clone()).unwrap();
        let index = assert_valid_index(&store);
        assert_eq!(index.manifests().len(), 2);
        let web = store.tags().unwrap().into_iter().find(|t| t.name == "web:latest").unwrap();
        assert_eq!(web.descriptor.digest(), two.digest());

        assert!(store.remove_tag("web").unwrap());
        assert!(!store.remove_tag("web").unwrap());
        assert_valid_index(&store);
        let names: Vec<String> = store.tags().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["api:1.0"]);
    }

    #[test]
    fn tagging_a_missing_manifest_is_refused() {
        let (_dir, store) = temp_store();
        let digest = Digest::sha256(b"never stored");
        let err = store.set_tag("app", Descriptor::new(MediaType::ImageManifest, 3, &digest)).unwrap_err();
        assert!(matches!(err, StoreError::TagTargetMissing { .. }), "{err:?}");
        assert!(err.to_string().contains("app:latest") && err.to_string().contains(&digest.to_string()), "{err}");
        assert!(store.tags().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_index_is_reported_by_path() {
        let (_dir, store) = temp_store();
        fs::write(store.index_path(), b"{").unwrap();
        let err = store.tags().unwrap_err();
        assert!(matches!(err, StoreError::BadIndex { .. }), "{err:?}");
        assert!(err.to_string().contains("index.json"), "{err}");
    }
}
