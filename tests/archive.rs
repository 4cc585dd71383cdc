//! `berth save`, `berth load` and `berth inspect FILE.tar` end to end:
//! round trips through the built binary, archives that podman, skopeo and
//! umoci accept (and archives podman writes, which berth loads), and bad
//! archives refused with the store left exactly as it was.

#[path = "support/oci_edit.rs"]
mod oci_edit;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_edit::{Archive, blob_name, gunzip, gzip, tar_with_raw_name};
use serde_json::Value;
use support::image::{BUSYBOX, busybox_tar, require_tool, succeeded};
use support::podman::Podman;
use support::{Berth, snapshot};

/// `berth save IMAGES… -o DIR/NAME` from `berth`'s store; returns the path.
fn save(berth: &Berth, name: &str, args: &[&str]) -> PathBuf {
    let path = berth.store().join(name);
    let mut all = vec!["save", "-o", path.to_str().unwrap()];
    all.extend_from_slice(args);
    berth.run(&all).ok();
    path
}

/// The manifest digest of `name` in `berth`'s store.
fn image_id(berth: &Berth, name: &str) -> String {
    let images = berth.run(&["images", "--json"]).json();
    let (repo, tag) = name.rsplit_once(':').unwrap();
    let found = images.as_array().unwrap().iter().find(|i| i["repository"] == repo && i["tag"] == tag);
    found.unwrap_or_else(|| panic!("no {name} in {images}"))["manifest"].as_str().unwrap().to_owned()
}

#[test]
fn save_then_load_into_a_fresh_store_keeps_the_digest_and_runs() {
    let source = Berth::with_busybox();
    let archive = save(&source, "busybox.tar", &[BUSYBOX]);
    let target = Berth::new();
    let out = target.run(&["load", "-i", archive.to_str().unwrap()]).ok().to_owned();
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    assert_eq!(image_id(&target, BUSYBOX), image_id(&source, BUSYBOX));
    let ran = target.run(&["run", "--rm", BUSYBOX, "echo", "hello from the archive"]).ok().to_owned();
    assert_eq!(ran.trim(), "hello from the archive");
    assert_eq!(std::fs::read_dir(target.store_root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn save_to_a_pipe_loads_from_a_pipe() {
    let source = Berth::with_busybox();
    let target = Berth::new();
    let bin = env!("CARGO_BIN_EXE_berth");
    let mut saver = Command::new(bin)
        .arg("--root")
        .arg(source.store_root())
        .args(["save", BUSYBOX])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let loaded = Command::new(bin)
        .arg("--root")
        .arg(target.store_root())
        .arg("load")
        .stdin(saver.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(saver.wait().unwrap().success());
    assert_eq!(succeeded("berth load", &loaded).trim(), "Loaded image: busybox:latest");
    assert_eq!(image_id(&target, BUSYBOX), image_id(&source, BUSYBOX));
}

#[test]
fn a_failed_save_leaves_no_file_and_keeps_an_old_one() {
    let berth = Berth::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tar");
    let err = berth.run(&["save", "-o", out.to_str().unwrap(), BUSYBOX, "nosuch:1"]).fails_with(1).to_owned();
    assert!(err.contains("nosuch"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing half-written beside the output");

    std::fs::write(&out, b"old").unwrap();
    // A damaged blob in the store is caught while it is copied.
    let layer = Archive::read(&save(&berth, "ok.tar", &[BUSYBOX])).manifest()["layers"][0]["digest"].clone();
    let blob = berth.store_root().join("oci").join(blob_name(layer.as_str().unwrap()));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let err = berth.run(&["save", "-o", out.to_str().unwrap(), BUSYBOX]).fails_with(1).to_owned();
    assert!(err.contains("the store is damaged") && err.contains(layer.as_str().unwrap()), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn inspect_shows_an_archive_without_a_store() {
    let source = Berth::with_busybox();
    source.run(&["tag", BUSYBOX, "localhost/box:2"]).ok();
    let archive = save(&source, "two.tar", &[BUSYBOX, "localhost/box:2"]);
    let reader = Berth::new();
    let json = reader.run(&["inspect", archive.to_str().unwrap()]).json();
    let [info] = json.as_array().unwrap().as_slice() else { panic!("{json}") };
    assert_eq!(info["Format"], "oci-archive");
    let [image] = info["Images"].as_array().unwrap().as_slice() else { panic!("one image, two names: {info}") };
    assert_eq!(image["Names"], serde_json::json!(["busybox:latest", "localhost/box:2"]));
    assert_eq!(image["Id"], image_id(&source, BUSYBOX).as_str());
    assert_eq!(image["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["Config"]["os"], "linux");
    assert!(!reader.store_root().exists(), "inspecting an archive must not create a store");
}

#[test]
fn save_and_load_help_have_examples() {
    for verb in ["save", "load"] {
        let help = Berth::new().run(&[verb, "--help"]).ok().to_owned();
        assert!(help.contains(&format!("Example: berth {verb}")), "{help}");
    }
}

#[test]
fn docker_archive_round_trip_runs() {
    let source = Berth::with_busybox();
    let archive = save(&source, "docker.tar", &["--format", "docker-archive", BUSYBOX]);
    let files = Archive::read(&archive);
    let manifest = files.json("manifest.json");
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["docker.io/library/busybox:latest"]));
    let layer = manifest[0]["Layers"][0].as_str().unwrap();
    assert!(files.files[layer].starts_with(b"bin"), "layers are plain tars");

    let target = Berth::new();
    let out = target.run(&["load", "-i", archive.to_str().unwrap()]).ok().to_owned();
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    assert_eq!(target.run(&["run", "--rm", BUSYBOX, "echo", "hi"]).ok().trim(), "hi");
}

#[test]
fn zstd_layers_load_and_run() {
    let source = Berth::with_busybox();
    let path = save(&source, "busybox.tar", &[BUSYBOX]);
    let mut archive = Archive::read(&path);
    let layer_digest = archive.manifest()["layers"][0]["digest"].as_str().unwrap().to_owned();
    let tar = gunzip(&archive.files[&blob_name(&layer_digest)]);
    let zstd = zstd::encode_all(&tar[..], 3).unwrap();
    archive.set_layer(zstd, "application/vnd.oci.image.layer.v1.tar+zstd", &tar);
    archive.write(&path);

    let target = Berth::new();
    target.run(&["load", "-i", path.to_str().unwrap()]).ok();
    assert_eq!(target.run(&["run", "--rm", BUSYBOX, "echo", "zstd"]).ok().trim(), "zstd");
}

/// Loads `archive` into a store holding busybox and expects a refusal
/// whose message contains every one of `words`, with the store unchanged
/// and `berth fsck` clean.
#[track_caller]
fn refused(berth: &Berth, archive: &Path, words: &[&str]) {
    let before = snapshot(&berth.store_root());
    let images = berth.run(&["images", "--json"]).json();
    let err = berth.run(&["load", "-i", archive.to_str().unwrap()]).fails_with(1).to_owned();
    assert!(err.starts_with(&format!("berth: {}: ", archive.display())), "the message names the file: {err}");
    for word in words {
        assert!(err.contains(word), "expected {word:?} in: {err}");
    }
    assert_eq!(snapshot(&berth.store_root()), before, "a refused load changes nothing in the store");
    assert_eq!(berth.run(&["images", "--json"]).json(), images);
    let fsck = berth.run(&["fsck"]);
    assert!(fsck.ok().contains("store is consistent"), "fsck is clean after a refused load: {}", fsck.stdout);
}

/// A store holding busybox, and a good archive of it to spoil.
fn spoilable() -> (Berth, PathBuf, Archive) {
    let berth = Berth::with_busybox();
    let path = save(&berth, "good.tar", &[BUSYBOX]);
    let archive = Archive::read(&path);
    (berth, berth_path(&path, "bad.tar"), archive)
}

fn berth_path(beside: &Path, name: &str) -> PathBuf {
    beside.with_file_name(name)
}

#[test]
fn a_truncated_archive_is_refused() {
    let berth = Berth::with_busybox();
    let good = std::fs::read(save(&berth, "good.tar", &[BUSYBOX])).unwrap();
    let bad = berth.store().join("cut.tar");
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    refused(&berth, &bad, &["truncated"]);
    // Cut exactly at a block boundary between entries: still refused.
    std::fs::write(&bad, &good[..good.len() - 1024]).unwrap();
    refused(&berth, &bad, &["truncated"]);
    // A compressed archive cut short.
    let gz = gzip(&good);
    std::fs::write(&bad, &gz[..gz.len() * 2 / 3]).unwrap();
    refused(&berth, &bad, &["truncated"]);
    // Not an archive at all.
    std::fs::write(&bad, "root:x:0:0:root:/root:/bin/sh\n".repeat(40)).unwrap();
    refused(&berth, &bad, &["not a tar archive"]);
}

#[test]
fn a_blob_with_the_wrong_digest_is_refused() {
    let (berth, bad, mut archive) = spoilable();
    let layer = blob_name(archive.manifest()["layers"][0]["digest"].as_str().unwrap());
    archive.files.get_mut(&layer).unwrap()[500] ^= 0xff;
    archive.write(&bad);
    refused(&berth, &bad, &[&layer, "not the digest its name says"]);
}

#[test]
fn a_descriptor_with_the_wrong_size_is_refused() {
    let (berth, bad, mut archive) = spoilable();
    let mut manifest = archive.manifest();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    manifest["layers"][0]["size"] = (size - 100).into();
    archive.set_manifest(&manifest);
    archive.write(&bad);
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    refused(&berth, &bad, &[&format!("blob {digest} is {size} bytes, its descriptor says {}", size - 100)]);
}

#[test]
fn a_layer_escaping_its_root_is_refused() {
    let (berth, bad, mut archive) = spoilable();
    let tar = tar_with_raw_name("../x", b"escaped\n");
    archive.set_layer(gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip", &tar);
    archive.write(&bad);
    refused(&berth, &bad, &["../x", "`..`"]);
    assert!(!berth.store_root().join("x").exists() && !berth.store_root().join("tmp/x").exists());
}

#[test]
fn media_type_confusion_is_refused() {
    let (berth, bad, mut archive) = spoilable();
    let good = archive.manifest();

    let mut config_as_layer = good.clone();
    config_as_layer["layers"][0]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    archive.set_manifest(&config_as_layer);
    archive.write(&bad);
    refused(&berth, &bad, &["layer", "application/vnd.oci.image.config.v1+json", "expected a layer"]);

    // An image index where the index entry promises a manifest.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [good["config"].clone()],
    });
    archive.set_manifest(&index);
    archive.write(&bad);
    refused(&berth, &bad, &["listed as \"application/vnd.oci.image.manifest.v1+json\"", "index.v1+json"]);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let (berth, bad, mut archive) = spoilable();
    let tar = tar_with_raw_name("etc/motd", b"tampered\n");
    let other = tar_with_raw_name("etc/motd", b"original\n");
    archive.set_layer(gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip", &other);
    archive.write(&bad);
    refused(&berth, &bad, &["diffID", "corrupt"]);
}

#[test]
fn podman_loads_and_runs_berth_archives() {
    let berth = Berth::with_busybox();
    let podman = Podman::new();
    let oci = save(&berth, "oci.tar", &[BUSYBOX]);
    let out = podman.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(out.contains("Loaded image: docker.io/library/busybox:latest"), "{out}");
    assert_eq!(podman.echo("docker.io/library/busybox:latest", "hi from oci").trim(), "hi from oci");

    podman.ok(&["rmi", "-a", "-f"]);
    let docker = save(&berth, "docker.tar", &["--format", "docker-archive", BUSYBOX]);
    let out = podman.ok(&["load", "-i", docker.to_str().unwrap()]);
    assert!(out.contains("Loaded image: docker.io/library/busybox:latest"), "{out}");
    assert_eq!(podman.echo("docker.io/library/busybox:latest", "hi from docker").trim(), "hi from docker");

    // Two images in one OCI archive: podman reads them through manifest.json.
    podman.ok(&["rmi", "-a", "-f"]);
    berth.run(&["tag", BUSYBOX, "localhost/box:2"]).ok();
    let two = save(&berth, "two.tar", &[BUSYBOX, "localhost/box:2"]);
    let out = podman.ok(&["load", "-i", two.to_str().unwrap()]);
    assert!(out.contains("busybox:latest") && out.contains("localhost/box:2"), "{out}");
    assert_eq!(podman.echo("localhost/box:2", "two").trim(), "two");
}

#[test]
fn berth_loads_and_runs_what_podman_saves() {
    let podman = Podman::new();
    podman.ok(&["import", "-q", busybox_tar().to_str().unwrap(), "localhost/pbox:1"]);
    let dir = tempfile::tempdir().unwrap();
    for format in ["oci-archive", "docker-archive"] {
        let archive = dir.path().join(format!("{format}.tar"));
        podman.ok(&["save", "-q", "--format", format, "-o", archive.to_str().unwrap(), "localhost/pbox:1"]);
        let berth = Berth::new();
        let out = berth.run(&["load", "-i", archive.to_str().unwrap()]).ok().to_owned();
        assert_eq!(out.trim(), "Loaded image: localhost/pbox:1", "{format}");
        let ran = berth.run(&["run", "--rm", "localhost/pbox:1", "echo", format]).ok().to_owned();
        assert_eq!(ran.trim(), format);
    }
}

#[test]
fn skopeo_inspects_and_copies_berth_archives() {
    let skopeo = require_tool("skopeo", "skopeo");
    let berth = Berth::with_busybox();
    let archive = save(&berth, "oci.tar", &[BUSYBOX]);
    let source = format!("oci-archive:{}", archive.display());
    let output = Command::new(&skopeo).args(["inspect", &source]).output().unwrap();
    let inspect: Value = serde_json::from_str(&succeeded("skopeo inspect", &output)).unwrap();
    assert_eq!(inspect["Digest"], image_id(&berth, BUSYBOX).as_str());

    let copy = berth.store().join("copy.tar");
    let dest = format!("oci-archive:{}:localhost/copied:1", copy.display());
    let output = Command::new(&skopeo).args(["copy", "--quiet", &source, &dest]).output().unwrap();
    succeeded("skopeo copy", &output);
    let target = Berth::new();
    let out = target.run(&["load", "-i", copy.to_str().unwrap()]).ok().to_owned();
    assert_eq!(out.trim(), "Loaded image: localhost/copied:1");
    assert_eq!(target.run(&["run", "--rm", "localhost/copied:1", "echo", "copied"]).ok().trim(), "copied");
}

#[test]
fn umoci_unpacks_the_extracted_archive() {
    let umoci = require_tool("umoci", "umoci");
    let berth = Berth::with_busybox();
    let archive = save(&berth, "oci.tar", &[BUSYBOX]);
    let layout = berth.store().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let output = Command::new("tar").arg("-C").arg(&layout).arg("-xf").arg(&archive).output().unwrap();
    succeeded("tar -x", &output);
    let bundle = berth.store().join("bundle");
    // umoci splits --image at the first ':', so the tag keeps its repository.
    let image = format!("{}:{BUSYBOX}", layout.display());
    let output = Command::new(umoci).args(["unpack", "--image", &image]).arg(&bundle).output().unwrap();
    succeeded("umoci unpack", &output);
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}
