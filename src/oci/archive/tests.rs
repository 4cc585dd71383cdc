//! Round trips through the writer and the reader, in memory, and the
//! reader's refusals of archives that lie about their blobs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use oci_spec::image::MediaType;

use super::*;
use crate::oci::Digest;
use crate::oci::image::{canonical_json, descriptor, image_config, image_manifest};

/// Blobs held in memory.
#[derive(Default)]
struct Blobs(HashMap<Digest, Vec<u8>>);

impl BlobSource for Blobs {
    fn open(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)> {
        let bytes = self.0.get(digest).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok((Box::new(&bytes[..]), bytes.len() as u64))
    }
}

/// A one-layer image (a gzip layer holding `/hello`), its blobs in `blobs`.
fn image(blobs: &mut Blobs, names: &[&str]) -> ArchiveImage {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    tar.append_data(&mut header, "hello", &b"hello"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let (digest, diff_id) = (Digest::sha256(&layer), Digest::sha256(&tar));

    let config = image_config(&Default::default(), std::slice::from_ref(&diff_id), "2024-01-01T00:00:00Z", vec![]);
    let config_bytes = canonical_json(&config).unwrap();
    let config_digest = Digest::sha256(&config_bytes);
    let manifest = image_manifest(
        descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest),
        vec![descriptor(MediaType::ImageLayerGzip, layer.len() as u64, &digest)],
    );
    let manifest_bytes = canonical_json(&manifest).unwrap();
    let size = layer.len() as u64;
    blobs.0.insert(digest.clone(), layer);
    ArchiveImage {
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        annotations: BTreeMap::from([("org.example.spec".to_owned(), "{\"env\":1}".to_owned())]),
        ref_names: Vec::new(),
        index: None,
        manifest_digest: Digest::sha256(&manifest_bytes),
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        manifest_bytes,
        manifest,
        config_digest,
        config_bytes,
        config,
        layers: vec![ArchiveLayer {
            digest,
            diff_id,
            size,
            media_type: MediaType::ImageLayerGzip.to_string(),
            compression: LayerCompression::Gzip,
        }],
    }
}

fn write(format: ArchiveFormat, images: &[ArchiveImage], blobs: &Blobs) -> Vec<u8> {
    write_archive(Vec::new(), format, images, blobs).unwrap().0
}

fn read(tar: &[u8]) -> Result<ArchiveContents<()>, FormatError> {
    interpret(read_stream(tar, &mut Discard)?)
}

/// The archive `tar` with its files edited by `edit` (name → bytes).
fn edited(tar: &[u8], edit: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> Vec<u8> {
    let mut files = BTreeMap::new();
    for entry in tar::Archive::new(tar).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(name, bytes);
        }
    }
    edit(&mut files);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Replaces the JSON blob `digest` by `json` (stored under its own digest)
/// and points `index.json` at it; returns the new digest.
fn replace_manifest(files: &mut BTreeMap<String, Vec<u8>>, digest: &Digest, json: serde_json::Value) -> Digest {
    let bytes = serde_json::to_vec(&json).unwrap();
    let new = Digest::sha256(&bytes);
    files.remove(&format!("blobs/sha256/{}", digest.hex()));
    files.insert(format!("blobs/sha256/{}", new.hex()), bytes.clone());
    let index = String::from_utf8(files["index.json"].clone()).unwrap();
    let index = index.replace(&digest.to_string(), &new.to_string());
    let mut index: serde_json::Value = serde_json::from_str(&index).unwrap();
    index["manifests"][0]["size"] = bytes.len().into();
    files.insert("index.json".to_owned(), serde_json::to_vec(&index).unwrap());
    new
}

#[test]
fn oci_round_trip_keeps_digests_names_and_annotations() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["busybox:latest", "localhost/box:1"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    assert_eq!(tar, write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs), "the same bytes each time");
    let contents = read(&tar).unwrap();
    assert_eq!(contents.format, ArchiveFormat::Oci);
    let [image] = contents.images.as_slice() else { panic!("one image: {:?}", contents.images) };
    assert_eq!(image.names, saved.names);
    assert_eq!(image.ref_names, saved.names, "berth writes the familiar name as the ref name");
    assert_eq!(image.manifest_digest, saved.manifest_digest);
    assert_eq!(image.layers, saved.layers);
    assert_eq!(image.annotation("org.example.spec"), Some("{\"env\":1}"));
    assert_eq!(image.annotations, saved.annotations, "names are in names, not in annotations");
    assert_eq!(contents.layer_file(&saved.layers[0].digest).unwrap().1.size, saved.layers[0].size);
}

#[test]
fn docker_round_trip_has_uncompressed_layers_and_names() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["busybox:latest"]);
    let tar = write(ArchiveFormat::Docker, std::slice::from_ref(&saved), &blobs);
    let contents = read(&tar).unwrap();
    assert_eq!(contents.format, ArchiveFormat::Docker);
    let image = &contents.images[0];
    assert_eq!(image.names, ["busybox:latest"]);
    assert_eq!(image.ref_names, ["docker.io/library/busybox:latest"], "RepoTags as written");
    assert_eq!(image.config_digest, saved.config_digest);
    let layer = &image.layers[0];
    assert_eq!((layer.compression, &layer.digest), (LayerCompression::None, &saved.layers[0].diff_id));
}

#[test]
fn a_descriptor_with_the_wrong_size_is_refused() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    let tar = edited(&tar, |files| {
        let mut manifest: serde_json::Value = serde_json::from_slice(&saved.manifest_bytes).unwrap();
        manifest["layers"][0]["size"] = (saved.layers[0].size - 1).into();
        replace_manifest(files, &saved.manifest_digest, manifest);
    });
    let err = read(&tar).unwrap_err();
    assert!(matches!(err, FormatError::SizeMismatch { .. }), "{err}");
    let expected = format!("is {} bytes, its descriptor says {}", saved.layers[0].size, saved.layers[0].size - 1);
    assert!(err.to_string().contains(&expected), "{err}");
}

#[test]
fn media_type_confusion_is_refused() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    let manifest: serde_json::Value = serde_json::from_slice(&saved.manifest_bytes).unwrap();

    let mut config_as_layer = manifest.clone();
    config_as_layer["layers"][0]["mediaType"] = media::OCI_CONFIG.into();
    let tar1 = edited(&tar, |files| drop(replace_manifest(files, &saved.manifest_digest, config_as_layer)));
    let err = read(&tar1).unwrap_err();
    assert!(matches!(err, FormatError::MediaType { what: "layer", .. }), "{err}");

    let index_as_manifest = serde_json::json!({"schemaVersion": 2, "manifests": [manifest["config"].clone()]});
    let tar2 = edited(&tar, |files| drop(replace_manifest(files, &saved.manifest_digest, index_as_manifest)));
    let err = read(&tar2).unwrap_err();
    assert!(matches!(err, FormatError::IndexAsManifest { .. }), "{err}");

    let mut layer_as_config = manifest;
    layer_as_config["config"]["mediaType"] = MediaType::ImageLayerGzip.to_string().into();
    let tar3 = edited(&tar, |files| drop(replace_manifest(files, &saved.manifest_digest, layer_as_config)));
    let err = read(&tar3).unwrap_err();
    assert!(matches!(err, FormatError::MediaType { what: "config", .. }), "{err}");
}

#[test]
fn a_missing_blob_is_named() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    let tar = edited(&tar, |files| drop(files.remove(&format!("blobs/sha256/{}", saved.layers[0].digest.hex()))));
    let err = read(&tar).unwrap_err();
    assert!(matches!(err, FormatError::BlobMissing { what: "layer", .. }), "{err}");
}

#[test]
fn a_blob_that_is_not_what_its_name_says_is_refused_naming_its_role() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    let layer = format!("blobs/sha256/{}", saved.layers[0].digest.hex());
    let err = read(&edited(&tar, |files| files.get_mut(&layer).unwrap()[10] ^= 0xff)).unwrap_err();
    assert!(matches!(&err, FormatError::BlobNameMismatch { what: "layer", .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("the layer {layer} holds content with digest")), "{err}");
    // A file that no image uses is refused all the same.
    let stray = format!("blobs/sha256/{}", Digest::sha256(b"stray").hex());
    let err = read(&edited(&tar, |files| drop(files.insert(stray.clone(), b"not stray".to_vec())))).unwrap_err();
    assert!(matches!(&err, FormatError::BlobNameMismatch { what: "blob", .. }), "{err}");
    assert!(err.to_string().contains(&stray), "{err}");
}

#[test]
fn a_changed_source_blob_stops_the_write() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let digest = saved.layers[0].digest.clone();
    let len = blobs.0[&digest].len();
    blobs.0.insert(digest.clone(), vec![0u8; len]);
    let err = write_archive(Vec::new(), ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs).unwrap_err();
    assert!(matches!(err, FormatError::BlobChanged { what: "content digest", .. }), "{err}");
    let err = write_archive(Vec::new(), ArchiveFormat::Docker, &[saved], &blobs).unwrap_err();
    assert!(matches!(err, FormatError::ReadBlob { .. } | FormatError::BlobChanged { .. }), "{err}");
}

#[test]
fn an_index_entry_is_followed_to_this_platform_and_named_as_docker_names_it() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    let host = serde_json::json!({
        "os": oci_spec::image::Os::default().to_string(),
        "architecture": oci_spec::image::Arch::default().to_string(),
    });
    let manifest = |digest: &Digest, size: usize, platform: serde_json::Value| serde_json::json!({"mediaType": media::OCI_MANIFEST, "digest": digest, "size": size, "platform": platform});
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [
            manifest(&Digest::sha256(b"elsewhere"), 9, serde_json::json!({"os": "linux", "architecture": "s390x"})),
            manifest(&saved.manifest_digest, saved.manifest_bytes.len(), host),
            manifest(&Digest::sha256(b"attestation"), 11, serde_json::json!({"os": "unknown", "architecture": "unknown"})),
        ],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = Digest::sha256(&index_bytes);
    let tar = edited(&tar, |files| {
        files.insert(format!("blobs/sha256/{}", index_digest.hex()), index_bytes.clone());
        let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": media::OCI_INDEX, "digest": index_digest, "size": index_bytes.len(),
            "annotations": {
                media::ANNOTATION_CONTAINERD_NAME: "docker.io/library/multi:1",
                media::ANNOTATION_REF_NAME: "1",
            },
        }]});
        files.insert("index.json".to_owned(), serde_json::to_vec(&top).unwrap());
        files.remove("manifest.json");
    });
    let contents = read(&tar).unwrap();
    let [image] = contents.images.as_slice() else { panic!("{:?}", contents.images) };
    assert_eq!(image.names, ["multi:1"]);
    assert_eq!(image.ref_names, ["1"], "the ref name as written");
    assert_eq!(image.index.as_ref(), Some(&index_digest));
    assert_eq!(image.manifest_digest, saved.manifest_digest);
    assert!(image.annotations.is_empty(), "{:?}", image.annotations);
}

#[test]
fn garbage_is_not_a_tar() {
    let err = read(&b"root:x:0:0:root:/root:/bin/sh\n".repeat(40)).unwrap_err();
    assert!(matches!(err, FormatError::NotATar { .. }), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn docker_media_types_are_read() {
    let mut blobs = Blobs::default();
    let saved = image(&mut blobs, &["a"]);
    let tar = write(ArchiveFormat::Oci, std::slice::from_ref(&saved), &blobs);
    let mut manifest: serde_json::Value = serde_json::from_slice(&saved.manifest_bytes).unwrap();
    manifest["mediaType"] = media::DOCKER_MANIFEST.into();
    manifest["config"]["mediaType"] = media::DOCKER_CONFIG.into();
    manifest["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
    let tar = edited(&tar, |files| {
        replace_manifest(files, &saved.manifest_digest, manifest);
        let mut index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        index["manifests"][0]["mediaType"] = media::DOCKER_MANIFEST.into();
        files.insert("index.json".to_owned(), serde_json::to_vec(&index).unwrap());
    });
    let contents = read(&tar).unwrap();
    let image = &contents.images[0];
    assert_eq!(image.manifest_media_type, media::DOCKER_MANIFEST);
    assert_eq!(image.layers[0].compression, LayerCompression::Gzip);
    assert_eq!(image.layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
}

#[test]
fn platforms_choose_entries_and_skip_attestations() {
    use oci_spec::image::{Arch, Descriptor, Os, PlatformBuilder};
    let entry = |n: u8, platform: Option<(Os, Arch)>, annotations: &[(&str, &str)]| {
        let mut d = Descriptor::new(MediaType::ImageManifest, 2, &Digest::sha256(&[n]));
        if let Some((os, arch)) = platform {
            d.set_platform(Some(PlatformBuilder::default().os(os).architecture(arch).build().unwrap()));
        }
        if !annotations.is_empty() {
            d.set_annotations(Some(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()));
        }
        d
    };
    let arm = entry(1, Some((Os::Linux, Arch::ARM64)), &[]);
    let amd = entry(2, Some((Os::Linux, Arch::Amd64)), &[]);
    let attestation = entry(3, Some((Os::Other("unknown".into()), Arch::Other("unknown".into()))), &[]);
    let entries = [arm.clone(), attestation.clone(), amd.clone()];
    assert_eq!(layout::choose_platform_for(&entries, "linux/amd64").unwrap(), &amd);
    assert_eq!(layout::choose_platform_for(&entries, "linux/arm64").unwrap(), &arm);
    let missing = layout::choose_platform_for(&entries, "linux/s390x").unwrap_err();
    assert_eq!(missing, ["linux/arm64", "linux/amd64"]);

    let unnamed = entry(4, None, &[]);
    let buildkit = entry(5, None, &[("vnd.docker.reference.type", "attestation-manifest")]);
    let entries = [unnamed.clone(), buildkit];
    assert_eq!(layout::choose_platform_for(&entries, "linux/amd64").unwrap(), &unnamed);
    assert_eq!(layout::choose_platform_for(&[], "linux/amd64").unwrap_err(), Vec::<String>::new());
}
