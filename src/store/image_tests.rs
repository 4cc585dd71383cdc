//! Tests of importing, resolving and unpacking images, against a fresh
//! temporary store each. They need root (owners, overlay whiteout devices),
//! as berth does.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, MediaType};
use tar::{EntryType, Header};

use super::testutil::temp_store;
use super::{ImageError, ImportedImage, Store, StoreError};
use crate::oci::image::{canonical_json, descriptor, image_config, image_manifest};
use crate::oci::{Digest, ImageConfigInput};

/// A tar built entry by entry with the `tar` crate.
struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl TarBuilder {
    fn new() -> Self {
        TarBuilder { builder: tar::Builder::new(Vec::new()) }
    }

    fn entry(mut self, kind: EntryType, name: &str, link: &str, mode: u32, uid: u64, data: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        self.builder.append_data(&mut header, name, data).unwrap();
        self
    }

    fn dir(self, name: &str) -> Self {
        self.entry(EntryType::Directory, name, "", 0o755, 0, b"")
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(EntryType::Regular, name, "", 0o644, 0, data)
    }

    /// A file whose name is written as given, unchecked.
    fn raw(mut self, name: &[u8], data: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

/// A small rootfs: directories, files (one owned by 1000, one setuid), a
/// symlink and a hard link.
fn rootfs_tar() -> Vec<u8> {
    TarBuilder::new()
        .dir("./")
        .dir("./bin/")
        .entry(EntryType::Regular, "./bin/tool", "", 0o4755, 0, b"#!/bin/sh\necho tool\n")
        .entry(EntryType::Symlink, "./bin/sh", "tool", 0o777, 0, b"")
        .entry(EntryType::Link, "./bin/tool2", "./bin/tool", 0o4755, 0, b"")
        .dir("./etc/")
        .file("./etc/hostname", b"box\n")
        .dir("./home/")
        .entry(EntryType::Directory, "./home/user/", "", 0o700, 1000, b"")
        .entry(EntryType::Regular, "./home/user/notes", "", 0o600, 1000, b"mine")
        .finish()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn import(store: &Store, tar: &[u8], name: Option<&str>) -> Result<ImportedImage, ImageError> {
    store.import_rootfs(tar, name, ImageConfigInput::default(), "berth import test.tar")
}

fn count(dir: &std::path::Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

/// Stores a hand-made image whose layers are the uncompressed tars
/// `layers` (gzip'd here), tagged `tag`; returns the manifest digest.
fn put_image(store: &Store, layers: &[Vec<u8>], tag: &str) -> Digest {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        let blob = gzip(tar);
        let digest = store.put_blob(&blob).unwrap();
        descriptors.push(descriptor(MediaType::ImageLayerGzip, blob.len() as u64, &digest));
        diff_ids.push(Digest::sha256(tar));
    }
    let config = image_config(&ImageConfigInput::default(), &diff_ids, "2024-01-01T00:00:00Z", vec![]);
    let config = canonical_json(&config).unwrap();
    let config_digest = store.put_blob(&config).unwrap();
    let manifest = image_manifest(descriptor(MediaType::ImageConfig, config.len() as u64, &config_digest), descriptors);
    let manifest = canonical_json(&manifest).unwrap();
    let digest = store.put_blob(&manifest).unwrap();
    store.set_tag(tag, Descriptor::new(MediaType::ImageManifest, manifest.len() as u64, &digest)).unwrap();
    digest
}

#[test]
fn import_writes_a_valid_one_layer_image() {
    let (_dir, store) = temp_store();
    let mut input = ImageConfigInput::default();
    input.apply_change("ENV A=1").unwrap();
    input.apply_change(r#"CMD ["/bin/sh"]"#).unwrap();
    let imported = store.import_rootfs(&rootfs_tar()[..], Some("app"), input, "berth import test.tar").unwrap();
    assert_eq!(imported.tag.as_deref(), Some("app:latest"));

    let manifest_bytes = store.read_blob(&imported.manifest).unwrap();
    assert_eq!(manifest_bytes.len() as u64, imported.manifest_size);
    let manifest = ImageManifest::from_reader(&manifest_bytes[..]).unwrap();
    assert_eq!(manifest.schema_version(), 2);
    assert_eq!(manifest.media_type().as_ref(), Some(&MediaType::ImageManifest));
    assert_eq!(manifest.config().media_type(), &MediaType::ImageConfig);
    assert_eq!(Digest::try_from(manifest.config().digest()).unwrap(), imported.config);
    let config_bytes = store.read_blob(&imported.config).unwrap();
    assert_eq!(manifest.config().size(), config_bytes.len() as u64);
    let [layer] = manifest.layers().as_slice() else { panic!("one layer expected: {manifest:?}") };
    assert_eq!(layer.media_type(), &MediaType::ImageLayerGzip);
    assert_eq!(Digest::try_from(layer.digest()).unwrap(), imported.layer.digest);

    let blob = store.read_blob(&imported.layer.digest).unwrap();
    assert_eq!(blob.len() as u64, layer.size());
    assert_eq!(Digest::sha256(&gunzip(&blob)), imported.layer.diff_id, "diff_id is the sha256 of the tar");

    let config = ImageConfiguration::from_reader(&config_bytes[..]).unwrap();
    assert_eq!(config.rootfs().diff_ids(), &[imported.layer.diff_id.to_string()]);
    assert_eq!(config.os().to_string(), "linux");
    assert_eq!(config.architecture(), &oci_spec::image::Arch::default());
    assert!(config.created().is_some());
    let history = config.history().as_ref().unwrap();
    assert_eq!(history[0].created_by().as_deref(), Some("berth import test.tar"));
    let runtime = config.config().as_ref().unwrap();
    assert_eq!(runtime.env().as_deref(), Some(&["A=1".to_owned()][..]));
    assert_eq!(runtime.cmd().as_deref(), Some(&["/bin/sh".to_owned()][..]));

    let root = store.layer_dir(&imported.layer.diff_id);
    assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"box\n");
    assert_eq!(fs::read_link(root.join("bin/sh")).unwrap(), std::path::Path::new("tool"));
    let (tool, tool2) = (fs::metadata(root.join("bin/tool")).unwrap(), fs::metadata(root.join("bin/tool2")).unwrap());
    assert_eq!(tool.ino(), tool2.ino(), "the hard link stays one inode");
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(root.join("home/user/notes")).unwrap().uid(), 1000);
    assert_eq!(tool.mtime(), 1_700_000_000, "mtimes are kept");

    let images = store.images().unwrap();
    assert_eq!((images[0].repository.as_str(), images[0].manifest.clone()), ("app", imported.manifest));
    assert_eq!(count(&store.tmp_dir()), 0);
}

#[test]
fn the_layer_keeps_what_the_tar_holds() {
    let (_dir, store) = temp_store();
    let imported = import(&store, &rootfs_tar(), None).unwrap();
    let tar = gunzip(&store.read_blob(&imported.layer.digest).unwrap());
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        seen.push((entry.path().unwrap().display().to_string(), header.entry_type(), header.uid().unwrap()));
    }
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["bin/", "bin/sh", "bin/tool", "bin/tool2", "etc/", "etc/hostname", "home/", "home/user/", "home/user/notes"]
    );
    assert!(seen.iter().any(|(n, t, _)| n == "bin/tool2" && *t == EntryType::Link));
    assert!(seen.iter().any(|(n, t, _)| n == "bin/sh" && *t == EntryType::Symlink));
    assert!(seen.iter().any(|(n, _, uid)| n == "home/user/notes" && *uid == 1000));
}

#[test]
fn reimporting_the_same_tar_gives_the_same_layer() {
    let (_dir, store) = temp_store();
    let first = import(&store, &rootfs_tar(), Some("a")).unwrap();
    let second = import(&store, &gzip(&rootfs_tar()), Some("b")).unwrap();
    assert_eq!(first.layer, second.layer, "plain and gzip input give the same layer");
    let (_dir2, other) = temp_store();
    assert_eq!(import(&other, &rootfs_tar(), None).unwrap().layer, first.layer, "and so does another store");
    assert_eq!(count(&store.layers_dir()), 1);
}

#[test]
fn a_failed_import_leaves_no_trace() {
    let (_dir, store) = temp_store();
    let mut truncated = rootfs_tar();
    truncated.truncate(1536 + 100);
    let escaping = TarBuilder::new().raw(b"x/../../escaped", b"x").finish();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", truncated),
        ("garbage", b"this is not a tar archive at all, not even close. ".repeat(20)),
        ("bad gzip", [&[0x1f, 0x8b][..], b"broken"].concat()),
        ("escaping", escaping),
        ("empty", Vec::new()),
        ("only end blocks", vec![0u8; 1024]),
    ];
    for (what, tar) in cases {
        let err = import(&store, &tar, Some("app")).unwrap_err();
        assert!(
            matches!(err, ImageError::ImportTar { .. } | ImageError::EmptyRootfs),
            "{what}: unexpected error {err:?}"
        );
        assert!(store.tags().unwrap().is_empty(), "{what}");
        assert_eq!(count(&store.tmp_dir()), 0, "{what}: tmp/ must be empty");
        assert_eq!(count(&store.oci_dir().join("blobs/sha256")), 0, "{what}");
        assert_eq!(count(&store.layers_dir()), 0, "{what}");
    }
    let err = import(&store, &rootfs_tar(), Some("bad name")).unwrap_err();
    assert!(matches!(err, ImageError::Store(StoreError::BadTagName { .. })), "{err:?}");
    assert_eq!(count(&store.tmp_dir()), 0);
}

#[test]
fn resolve_by_tag_digest_and_prefix() {
    let (_dir, store) = temp_store();
    let app = import(&store, &rootfs_tar(), Some("localhost/app:1")).unwrap();
    let other = TarBuilder::new().file("only", b"1").finish();
    let untagged = import(&store, &other, None).unwrap();

    let by_tag = store.resolve_image("localhost/app:1").unwrap();
    assert_eq!((by_tag.name.as_str(), &by_tag.manifest_digest), ("localhost/app:1", &app.manifest));
    assert_eq!(by_tag.layers, std::slice::from_ref(&app.layer));
    assert_eq!(Digest::try_from(by_tag.manifest.config().digest()).unwrap(), app.config);
    assert_eq!(by_tag.config.rootfs().diff_ids().len(), 1);

    let full = app.manifest.to_string();
    let hex = app.manifest.hex();
    for name in [full.as_str(), hex, &hex[..12], &format!("sha256:{}", &hex[..20])] {
        assert_eq!(store.resolve_image(name).unwrap().manifest_digest, app.manifest, "{name}");
    }
    assert_eq!(store.resolve_image(&untagged.manifest.hex()[..12]).unwrap().manifest_digest, untagged.manifest);
    // A layer or config blob is not an image, whatever its name.
    let err = store.resolve_image(&app.layer.digest.hex()[..16]).unwrap_err();
    assert!(matches!(err, ImageError::NotFound { .. }), "{err:?}");

    store.set_tag("busybox", by_tag_descriptor(&store, &app)).unwrap();
    assert_eq!(store.resolve_image("busybox").unwrap().name, "busybox:latest");
    assert_eq!(store.resolve_image("busybox:latest").unwrap().manifest_digest, app.manifest);
}

fn by_tag_descriptor(store: &Store, image: &ImportedImage) -> Descriptor {
    let size = store.read_blob(&image.manifest).unwrap().len() as u64;
    Descriptor::new(MediaType::ImageManifest, size, &image.manifest)
}

#[test]
fn resolve_errors_say_what_to_do() {
    let (_dir, store) = temp_store();
    let app = import(&store, &rootfs_tar(), Some("app")).unwrap();

    let err = store.resolve_image("nosuch").unwrap_err();
    assert!(matches!(err, ImageError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), "no image named \"nosuch\" in the store; `berth images` lists them");
    let err = store.resolve_image("app:2").unwrap_err();
    assert!(err.to_string().contains("\"app:2\""), "{err}");
    let missing = Digest::sha256(b"nothing").to_string();
    assert!(matches!(store.resolve_image(&missing), Err(ImageError::NotFound { .. })));

    let err = store.resolve_image(&app.manifest.hex()[..8]).unwrap_err();
    assert!(matches!(err, ImageError::ShortPrefix { min: 12, .. }), "{err:?}");
    assert!(err.to_string().contains("at least 12 hex digits"), "{err}");

    // Two manifests sharing a prefix: a copy under a made-up name.
    // It differs from the real digest at digit 21, whatever that digit is.
    let other = if app.manifest.hex().as_bytes()[20] == b'0' { "1" } else { "0" };
    let twin = format!("{}{other}{}", &app.manifest.hex()[..20], "0".repeat(43));
    fs::copy(store.blob_path(&app.manifest), store.oci_dir().join("blobs/sha256").join(&twin)).unwrap();
    let err = store.resolve_image(&app.manifest.hex()[..12]).unwrap_err();
    let ImageError::Ambiguous { matches, .. } = &err else { panic!("{err:?}") };
    assert_eq!(matches.len(), 2);
    assert!(err.to_string().contains("matches 2 images") && err.to_string().contains("give more digits"), "{err}");
    assert_eq!(store.resolve_image(&app.manifest.hex()[..21]).unwrap().manifest_digest, app.manifest);
}

#[test]
fn resolve_refuses_inconsistent_images() {
    let (_dir, store) = temp_store();
    let digest = put_image(&store, &[TarBuilder::new().file("a", b"a").finish()], "app");
    let mut manifest: ImageManifest = serde_json::from_slice(&store.read_blob(&digest).unwrap()).unwrap();
    manifest.set_layers(Vec::new());
    let bytes = canonical_json(&manifest).unwrap();
    let broken = store.put_blob(&bytes).unwrap();
    store.set_tag("broken", Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, &broken)).unwrap();
    let err = store.resolve_image("broken").unwrap_err();
    assert!(matches!(err, ImageError::LayerCount { layers: 0, diff_ids: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("broken:latest"), "{err}");

    let config = Digest::try_from(manifest.config().digest()).unwrap();
    fs::remove_file(store.blob_path(&config)).unwrap();
    let err = store.resolve_image("app").unwrap_err();
    assert!(matches!(err, ImageError::BlobMissing { what: "config", .. }), "{err:?}");
    assert!(err.to_string().contains(&config.to_string()), "{err}");
}

#[test]
fn unpacked_layers_unpacks_once_then_reuses() {
    let (_dir, store) = temp_store();
    let imported = import(&store, &rootfs_tar(), Some("app")).unwrap();
    let image = store.resolve_image("app").unwrap();
    let dirs = store.unpacked_layers(&image).unwrap();
    assert_eq!(dirs, [store.layer_dir(&imported.layer.diff_id)], "import already unpacked it");

    fs::remove_dir_all(&dirs[0]).unwrap();
    let dirs = store.unpacked_layers(&image).unwrap();
    assert_eq!(fs::read(dirs[0].join("etc/hostname")).unwrap(), b"box\n");
    assert_eq!(fs::metadata(dirs[0].join("home/user")).unwrap().uid(), 1000);
    assert_eq!(fs::metadata(&dirs[0]).unwrap().mode() & 0o7777, 0o755);
    fs::write(dirs[0].join("marker"), b"still here").unwrap();
    assert_eq!(store.unpacked_layers(&image).unwrap(), dirs);
    assert!(dirs[0].join("marker").exists(), "an unpacked layer is reused, not unpacked again");
    assert_eq!(count(&store.tmp_dir()), 0);
}

#[test]
fn layers_unpack_bottom_first_with_overlay_whiteouts() {
    let (_dir, store) = temp_store();
    let bottom = TarBuilder::new().dir("etc/").file("etc/old", b"old").dir("var/").file("var/x", b"x").finish();
    let top = TarBuilder::new()
        .dir("etc/")
        .file("etc/.wh.old", b"")
        .dir("var/")
        .file("var/.wh..wh..opq", b"")
        .file("var/y", b"y")
        .finish();
    put_image(&store, &[bottom.clone(), top.clone()], "two");
    let image = store.resolve_image("two").unwrap();
    let dirs = store.unpacked_layers(&image).unwrap();
    assert_eq!(dirs, [store.layer_dir(&Digest::sha256(&bottom)), store.layer_dir(&Digest::sha256(&top))]);
    let whiteout = fs::symlink_metadata(dirs[1].join("etc/old")).unwrap();
    assert_eq!((whiteout.file_type().is_char_device(), whiteout.rdev()), (true, 0));
    let opaque = crate::sys::fs::get_xattr_nofollow(&dirs[1].join("var"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(dirs[0].join("var/x").exists() && dirs[1].join("var/y").exists());
}

#[test]
fn a_tampered_layer_blob_is_refused() {
    let (_dir, store) = temp_store();
    let imported = import(&store, &rootfs_tar(), Some("app")).unwrap();
    let image = store.resolve_image("app").unwrap();
    fs::remove_dir_all(store.layer_dir(&imported.layer.diff_id)).unwrap();
    let blob = store.blob_path(&imported.layer.digest);

    // A valid layer, but not the one the config names.
    fs::write(&blob, gzip(&TarBuilder::new().file("evil", b"evil").finish())).unwrap();
    let err = store.unpacked_layers(&image).unwrap_err();
    assert!(matches!(err, ImageError::DiffIdMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&imported.layer.digest.to_string()) && text.contains("app:latest"), "{text}");
    assert!(!store.has_layer(&imported.layer.diff_id));
    assert_eq!(count(&store.tmp_dir()), 0, "the staging dir is discarded");

    // Not a layer at all.
    fs::write(&blob, b"garbage").unwrap();
    let err = store.unpacked_layers(&image).unwrap_err();
    assert!(matches!(err, ImageError::UnpackLayer { .. }), "{err:?}");
    assert!(err.to_string().contains(&imported.layer.digest.to_string()), "{err}");
    assert_eq!(count(&store.tmp_dir()), 0);

    fs::remove_file(&blob).unwrap();
    let err = store.unpacked_layers(&image).unwrap_err();
    assert!(matches!(err, ImageError::BlobMissing { what: "layer", .. }), "{err:?}");
}

#[test]
fn unsupported_layer_media_types_are_named() {
    let (_dir, store) = temp_store();
    let digest = put_image(&store, &[TarBuilder::new().file("a", b"a").finish()], "app");
    let mut image = store.resolve_image(&digest.to_string()).unwrap();
    image.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar+bzip2".to_owned();
    let err = store.unpacked_layers(&image).unwrap_err();
    assert!(matches!(err, ImageError::LayerMediaType { .. }), "{err:?}");
    assert!(err.to_string().contains("tar+bzip2"), "{err}");
}
