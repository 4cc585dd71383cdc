//! Unit tests of gc, fsck and df against fresh temporary stores, with
//! images imported from tiny tars, hand-made cache entries and container
//! records.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::oci::ImageConfigInput;
use crate::resolve::KeyHasher;
use crate::runtime::container::{self, EtcFiles, Record};
use crate::store::testutil::temp_store;
use crate::store::{CacheEntry, ImportedImage, LayerRecord, Store};

/// A one-file rootfs tar whose file holds `content`.
fn tar_of(content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_size(content.len() as u64);
    builder.append_data(&mut header, "data.txt", content).unwrap();
    builder.into_inner().unwrap()
}

fn import(store: &Store, content: &[u8], name: &str) -> ImportedImage {
    store.import_rootfs(&tar_of(content)[..], Some(name), ImageConfigInput::default(), "test").unwrap()
}

/// A cache entry for `image`'s layer and config, last used at `secs`.
fn cache_entry(store: &Store, image: &ImportedImage, name: &str, secs: u64) -> std::path::PathBuf {
    let key = KeyHasher::new("test").field(name.as_bytes()).finish();
    let mut entry = CacheEntry::new(vec![image.layer.clone()], SystemTime::now());
    entry.config = Some(image.config.clone());
    store.cache_put(&key, &entry).unwrap();
    let path = store.cache_dir().join(key.to_string());
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
    path
}

fn container_for(store: &Store, image: &ImportedImage) {
    let record = Record {
        image: "app".into(),
        image_digest: image.manifest.clone(),
        lowers: vec![store.layer_dir(&image.layer.diff_id)],
        ..Record::example("c")
    };
    let record = Record { name: format!("c-{}", record.id.short()), ..record };
    container::create(&store.containers_dir(), &record, &EtcFiles::new("c", &[], "")).unwrap();
}

/// Every blob and layer of `image` is present.
fn present(store: &Store, image: &ImportedImage) -> bool {
    store.has_blob(&image.manifest)
        && store.has_blob(&image.config)
        && store.has_blob(&image.layer.digest)
        && store.has_layer(&image.layer.diff_id)
}

fn absent(store: &Store, image: &ImportedImage) -> bool {
    !store.has_blob(&image.manifest)
        && !store.has_blob(&image.config)
        && !store.has_blob(&image.layer.digest)
        && !store.has_layer(&image.layer.diff_id)
}

fn gc(store: &Store, keep_storage: Option<u64>) -> GcReport {
    let lock = store.lock_exclusive().unwrap();
    plan_gc(store, &lock, &GcOptions { keep_storage, ..GcOptions::default() }).unwrap().apply(store, &lock).unwrap()
}

fn files_under(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        total += if meta.is_dir() {
            files_under(&path)
        } else if meta.is_file() {
            meta.len()
        } else {
            0
        };
    }
    total
}

#[test]
fn gc_keeps_tags_and_removes_dangling_images_and_leftovers() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    let old = import(&store, b"old", "old");
    store.remove_tag("old").unwrap();
    let stray = store.put_blob(b"nobody needs me").unwrap();
    fs::create_dir(store.tmp_dir().join("stage-1-2-3")).unwrap();
    fs::write(store.tmp_dir().join("stage-1-2-3/half"), b"12345").unwrap();
    let before = files_under(store.root());

    let report = gc(&store, None);
    assert!(present(&store, &app));
    assert!(absent(&store, &old));
    assert!(!store.has_blob(&stray));
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    assert_eq!(report.reclaimed, before - files_under(store.root()), "{report:#?}");
    let kinds: Vec<ObjectKind> = report.removed.iter().map(|r| r.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == ObjectKind::Blob).count(), 4, "{kinds:?}");
    assert!(kinds.contains(&ObjectKind::Layer) && kinds.contains(&ObjectKind::Tmp));
    let roles: Vec<Option<&str>> =
        report.removed.iter().filter(|r| r.kind == ObjectKind::Blob).map(|r| r.role).collect();
    assert_eq!(roles, [Some("manifest"), Some("config"), Some("layer"), None], "referrers go first");

    let again = gc(&store, None);
    assert!(again.removed.is_empty() && again.reclaimed == 0, "{again:#?}");
}

#[test]
fn gc_keeps_what_a_container_needs_after_its_tag_is_gone() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    container_for(&store, &app);
    store.remove_tag("app").unwrap();
    gc(&store, Some(0));
    assert!(present(&store, &app));
}

#[test]
fn cache_entries_keep_their_layers_until_evicted_oldest_first() {
    let (_dir, store) = temp_store();
    let tagged = import(&store, b"tagged", "app");
    let old = import(&store, b"old old old", "old");
    let new = import(&store, b"new", "new");
    store.remove_tag("old").unwrap();
    store.remove_tag("new").unwrap();
    let shared = cache_entry(&store, &tagged, "shared", 3_000);
    let old_entry = cache_entry(&store, &old, "old", 1_000);
    let new_entry = cache_entry(&store, &new, "new", 2_000);

    // Without a cap, cache entries are roots: only the manifests go.
    gc(&store, None);
    for image in [&old, &new] {
        assert!(!store.has_blob(&image.manifest));
        assert!(store.has_blob(&image.layer.digest) && store.has_layer(&image.layer.diff_id));
    }

    // A cap one byte under the current size evicts exactly the oldest entry.
    let lock = store.lock_shared().unwrap();
    let size = plan_gc(&store, &lock, &GcOptions { keep_storage: Some(u64::MAX), ..GcOptions::default() })
        .unwrap()
        .size_after
        .unwrap();
    drop(lock);
    let report = gc(&store, Some(size - 1));
    assert!(!old_entry.exists() && new_entry.exists() && shared.exists(), "{report:#?}");
    assert!(!store.has_blob(&old.layer.digest) && !store.has_layer(&old.layer.diff_id));
    assert!(store.has_blob(&new.layer.digest) && store.has_layer(&new.layer.diff_id));
    assert!(report.size_after.unwrap() < size);

    // A cap of 0 evicts every entry, but never what a tag needs.
    let report = gc(&store, Some(0));
    assert!(!new_entry.exists() && !shared.exists(), "{report:#?}");
    assert!(!store.has_blob(&new.layer.digest) && !store.has_layer(&new.layer.diff_id));
    assert!(present(&store, &tagged));
    assert!(report.size_after.unwrap() > 0, "the tagged image still takes space");
}

#[test]
fn gc_refuses_when_a_tagged_manifest_cannot_be_read() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    fs::write(store.blob_path(&app.manifest), b"not json").unwrap();
    let lock = store.lock_exclusive().unwrap();
    let err = plan_gc(&store, &lock, &GcOptions::default()).unwrap_err();
    assert!(matches!(err, MaintainError::UnreadableRoot { .. }), "{err:?}");
    assert!(err.to_string().contains("app:latest") && err.to_string().contains("berth fsck"), "{err}");
    assert!(store.has_blob(&app.layer.digest) && store.has_layer(&app.layer.diff_id));
}

#[test]
fn applying_needs_the_exclusive_lock() {
    let (_dir, store) = temp_store();
    let lock = store.lock_shared().unwrap();
    let plan = plan_gc(&store, &lock, &GcOptions::default()).unwrap();
    let err = plan.apply(&store, &lock).unwrap_err();
    assert!(matches!(err, MaintainError::NeedsExclusiveLock { .. }), "{err:?}");
}

fn check(store: &Store) -> FsckReport {
    let lock = store.lock_shared().unwrap();
    fsck(store, &lock).unwrap()
}

fn kinds_at(report: &FsckReport, path: &Path) -> Vec<ProblemKind> {
    report.problems.iter().filter(|p| p.path == path).map(|p| p.kind).collect()
}

#[test]
fn fsck_of_a_sound_store_is_clean() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    cache_entry(&store, &app, "entry", 1);
    container_for(&store, &app);
    let report = check(&store);
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!((report.blobs, report.layers, report.refs, report.cache_entries), (3, 1, 1, 1));
}

#[test]
fn fsck_finds_corruption_and_leftovers_and_repair_removes_only_those() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    let cached = import(&store, b"cached only", "cached");
    store.remove_tag("cached").unwrap();
    let entry = cache_entry(&store, &cached, "entry", 1);

    let flipped = store.blob_path(&cached.layer.digest);
    let mut bytes = fs::read(&flipped).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&flipped, &bytes).unwrap();
    let truncated = store.blob_path(&app.manifest);
    let len = fs::metadata(&truncated).unwrap().len();
    fs::File::options().write(true).open(&truncated).unwrap().set_len(len / 2).unwrap();
    let staging = store.tmp_dir().join("stage-9-9-9");
    fs::create_dir(&staging).unwrap();
    let partial = store.tmp_dir().join("blob-9-9-9");
    fs::write(&partial, b"half").unwrap();
    let stray_layer = store.layers_dir().join("not-a-layer");
    fs::create_dir(&stray_layer).unwrap();
    let good = store.put_blob(b"a good blob nobody needs").unwrap();

    let report = check(&store);
    assert_eq!(kinds_at(&report, &flipped), [ProblemKind::CorruptBlob], "{report:#?}");
    assert_eq!(kinds_at(&report, &truncated), [ProblemKind::CorruptBlob, ProblemKind::SizeMismatch], "{report:#?}");
    assert_eq!(kinds_at(&report, &entry), [ProblemKind::BadCacheEntry]);
    assert_eq!(kinds_at(&report, &staging), [ProblemKind::Leftover]);
    assert!(report.problems.iter().any(|p| p.path == staging && p.message.contains("never completed")));
    assert_eq!(kinds_at(&report, &partial), [ProblemKind::Leftover]);
    assert_eq!(kinds_at(&report, &stray_layer), [ProblemKind::Stray]);
    assert!(kinds_at(&report, &store.blob_path(&good)).is_empty());

    let lock = store.lock_exclusive().unwrap();
    let fixed = repair(&store, &lock, &report).unwrap();
    drop(lock);
    assert_eq!(fixed.len(), 6, "{fixed:#?}");
    for gone in [&flipped, &truncated, &entry, &staging, &partial, &stray_layer] {
        assert!(!gone.exists(), "{} was not removed", gone.display());
    }
    assert!(store.has_blob(&good) && store.has_blob(&app.config) && store.has_blob(&app.layer.digest));

    // The tag's manifest was corrupt: removing it cannot make the tag whole.
    let after = check(&store);
    assert_eq!(kinds_at(&after, &truncated), [ProblemKind::MissingBlob], "{after:#?}");
    assert!(after.problems[0].message.contains("berth rmi"), "{after:#?}");
    store.remove_tag("app").unwrap();
    assert!(check(&store).is_clean());
}

#[test]
fn fsck_finds_a_project_netns_no_container_uses_and_repair_removes_it() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    let mut record = Record {
        image_digest: app.manifest.clone(),
        lowers: vec![store.layer_dir(&app.layer.diff_id)],
        ..Record::example("kept-web")
    };
    record.labels.insert(crate::runtime::netns::PROJECT_LABEL.into(), "kept".into());
    container::create(&store.containers_dir(), &record, &EtcFiles::new("web", &[], "")).unwrap();
    fs::create_dir_all(store.projects_dir()).unwrap();
    // Plain files stand in for the bind mounts (the e2e test mounts one).
    let kept = store.projects_dir().join("kept.netns");
    let orphan = store.projects_dir().join("gone.netns");
    for f in [&kept, &orphan] {
        fs::write(f, b"").unwrap();
    }
    fs::write(store.projects_dir().join("gone.json"), b"{}").unwrap();

    let report = check(&store);
    assert_eq!(report.problems.len(), 1, "{report:#?}");
    assert_eq!(kinds_at(&report, &orphan), [ProblemKind::OrphanNetns]);
    assert!(report.problems[0].message.contains("no container of project \"gone\""), "{report:#?}");
    let lock = store.lock_exclusive().unwrap();
    assert_eq!(repair(&store, &lock, &report).unwrap().len(), 1);
    drop(lock);
    assert!(!orphan.exists() && kept.exists());
    assert!(check(&store).is_clean());
}

#[test]
fn fsck_reports_a_size_that_disagrees_with_a_sound_blob_and_keeps_it() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    let key = KeyHasher::new("test").field(b"wrong size").finish();
    let wrong = LayerRecord { size: app.layer.size + 1, ..app.layer.clone() };
    store.cache_put(&key, &CacheEntry::new(vec![wrong], SystemTime::now())).unwrap();
    let report = check(&store);
    let layer = store.blob_path(&app.layer.digest);
    assert_eq!(kinds_at(&report, &layer), [ProblemKind::SizeMismatch], "{report:#?}");
    let lock = store.lock_exclusive().unwrap();
    assert!(repair(&store, &lock, &report).unwrap().is_empty());
    assert!(layer.exists());
}

#[test]
fn df_counts_images_containers_and_cache() {
    let (_dir, store) = temp_store();
    let app = import(&store, b"app", "app");
    let idle = import(&store, b"idle image", "idle");
    container_for(&store, &app);
    cache_entry(&store, &app, "entry", 1);
    let volume = store.root().join("volumes/shop/data");
    fs::create_dir_all(&volume).unwrap();
    fs::write(volume.join("db"), b"0123456789").unwrap();
    let lock = store.lock_shared().unwrap();
    let usage = disk_usage(&store, &lock).unwrap();
    let kinds: Vec<&str> = usage.rows.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["Images", "Containers", "Build cache", "Local volumes"]);
    let [images, containers, cache, volumes] = &usage.rows[..] else { unreachable!() };
    assert_eq!((images.total, images.active), (2, 1));
    let idle_size = idle.layer.size + fs::metadata(store.blob_path(&idle.config)).unwrap().len();
    assert!(images.reclaimable >= idle_size && images.reclaimable < images.size, "{usage:#?}");
    assert_eq!((containers.total, containers.active, containers.size), (1, 0, 0));
    assert_eq!((cache.total, cache.active), (1, 1));
    // Everything the entry names is an image's too: only its file could go.
    assert_eq!(cache.reclaimable, files_under(&store.cache_dir()));
    assert_eq!((volumes.total, volumes.active, volumes.size, volumes.reclaimable), (1, 0, 10, 10));
    assert_eq!(usage.unreferenced, 0);
    assert_eq!(
        usage.store_size,
        files_under(&store.oci_dir().join("blobs"))
            + files_under(&store.layers_dir())
            + files_under(&store.cache_dir())
    );
}
