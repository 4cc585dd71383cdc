//! Save and load through the store's API, as `berth freeze` and `up
//! --from` will use it: annotations written with an image come back from
//! the archive and from the load; a failed load leaves nothing.

use std::collections::BTreeMap;
use std::fs;

use super::testutil::temp_store;
use super::{ArchiveError, SaveRequest, Store};
use crate::oci::ImageConfigInput;
use crate::oci::archive::{ArchiveFormat, read_archive};

/// A store holding a one-file image tagged `app:1`.
fn store_with_app() -> (tempfile::TempDir, Store) {
    let (dir, store) = temp_store();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, "etc/app", &b"app"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    store.import_rootfs(&tar[..], Some("app:1"), ImageConfigInput::default(), "test").unwrap();
    (dir, store)
}

#[test]
fn annotations_saved_with_an_image_come_back() {
    let (dir, store) = store_with_app();
    let spec = ("org.berth.container-spec".to_owned(), "{\"cmd\":[\"sh\"]}".to_owned());
    let request = SaveRequest { image: "app:1".to_owned(), annotations: BTreeMap::from([spec.clone()]) };
    let path = dir.path().join("frozen.tar");
    let stats = store.save_archive_file(&[request], ArchiveFormat::Oci, &path).unwrap();
    assert_eq!((stats.images, stats.blobs), (1, 3));
    assert_eq!(fs::metadata(&path).unwrap().len(), stats.bytes);

    let contents = read_archive(&path).unwrap();
    assert_eq!(contents.images[0].names, ["app:1"]);
    assert_eq!(contents.images[0].annotation(&spec.0), Some(spec.1.as_str()));

    let (_other_dir, other) = temp_store();
    let loaded = other.load_archive(fs::File::open(&path).unwrap(), "frozen.tar").unwrap();
    assert_eq!(loaded.format, ArchiveFormat::Oci);
    let image = &loaded.images[0];
    assert_eq!(image.tags, ["app:1"]);
    assert_eq!(image.annotations.get(&spec.0), Some(&spec.1));
    assert_eq!(image.manifest, store.resolve_image("app:1").unwrap().manifest_digest);
    let resolved = other.resolve_image("app:1").unwrap();
    assert!(other.has_layer(&resolved.layers[0].diff_id), "load unpacks the layers");
    assert_eq!(fs::read_dir(other.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn a_failed_load_stores_nothing() {
    let (dir, store) = store_with_app();
    let path = dir.path().join("app.tar");
    store.save_archive_file(&[SaveRequest::new("app:1")], ArchiveFormat::Oci, &path).unwrap();
    let bytes = fs::read(&path).unwrap();
    let (_other_dir, other) = temp_store();
    let err = other.load_archive(&bytes[..bytes.len() - 700], "app.tar").unwrap_err();
    assert!(matches!(err, ArchiveError::Format { .. }), "{err}");
    assert!(err.to_string().starts_with("app.tar: "), "{err}");
    assert!(other.tags().unwrap().is_empty());
    for dir in [other.tmp_dir(), other.oci_dir().join("blobs/sha256"), other.layers_dir()] {
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "{}", dir.display());
    }
}

#[test]
fn saving_an_unknown_image_writes_nothing() {
    let (dir, store) = store_with_app();
    let path = dir.path().join("out.tar");
    let err = store.save_archive_file(&[SaveRequest::new("nope")], ArchiveFormat::Docker, &path).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(!path.exists());
}
