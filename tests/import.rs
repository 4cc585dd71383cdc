//! `berth import` end to end: the busybox fixture goes in with the built
//! binary, comes out in `berth images` and in the store's OCI layout, and
//! peer tools (umoci, skopeo) accept that layout.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::image::{BUSYBOX, busybox_tar, import_busybox, require_tool};
use support::{Berth, snapshot};

/// A JSON blob of the store at `root` (the `--root` given to berth).
fn blob(root: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(root.join("oci/blobs/sha256").join(hex)).expect("read blob");
    serde_json::from_slice(&bytes).expect("blob is JSON")
}

/// The manifest the tag `name` points at in the store at `root`.
fn manifest_of(root: &Path, name: &str) -> Value {
    let index: Value = serde_json::from_slice(&std::fs::read(root.join("oci/index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("no tag {name} in {index}"));
    blob(root, entry["digest"].as_str().unwrap())
}

fn config_of(root: &Path, name: &str) -> Value {
    blob(root, manifest_of(root, name)["config"]["digest"].as_str().unwrap())
}

/// `berth --root ROOT import - NAME` with `input` on standard input.
fn import_stdin(root: &Path, name: &str, input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(root)
        .args(["import", "-", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth import -");
    // berth may stop reading early on bad input; a broken pipe is fine then.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

#[test]
fn imported_busybox_is_listed_with_its_size() {
    let berth = Berth::new();
    let tag = import_busybox(&berth.store_root());
    assert_eq!(tag, BUSYBOX);
    let images = berth.run(&["images", "--json"]).json();
    let [image] = images.as_array().unwrap().as_slice() else { panic!("one image expected: {images}") };
    assert_eq!((image["repository"].as_str(), image["tag"].as_str()), (Some("busybox"), Some("latest")));
    let size = image["size"].as_u64().unwrap();
    assert!(size > 500_000, "a gzip'd static busybox is about 1 MB, got {size}");
    let table = berth.run(&["images"]).ok().to_owned();
    let row = table.lines().find(|l| l.starts_with("busybox")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.ends_with("MiB") || row.ends_with("KiB"), "{row}");
    assert!(row.contains(&image["manifest"].as_str().unwrap()["sha256:".len()..][..12]), "{row}");
}

#[test]
fn import_prints_the_digest_and_changes_land_in_the_config() {
    let berth = Berth::new();
    let tar = busybox_tar();
    let tar = tar.to_str().unwrap();
    let out = berth
        .run(&[
            "import",
            tar,
            "localhost/box:1",
            "--change",
            "ENV PATH=/bin GREETING=\"hello world\"",
            "-c",
            "CMD [\"sh\", \"-c\", \"echo $GREETING\"]",
            "--change",
            "ENTRYPOINT /bin/env",
            "--change",
            "WORKDIR /home/user",
            "--change",
            "USER user",
            "--change",
            "LABEL org.opencontainers.image.title=box team=qa",
            "--change",
            "EXPOSE 80 53/udp",
            "-m",
            "imported for a test",
        ])
        .ok()
        .trim()
        .to_owned();
    assert!(out.starts_with("sha256:") && out.len() == 71, "prints the manifest digest: {out}");
    let index = std::fs::read_to_string(berth.store_root().join("oci/index.json")).unwrap();
    assert!(index.contains(&out), "{index}");

    let config = config_of(&berth.store_root(), "localhost/box:1");
    let c = &config["config"];
    assert_eq!(c["Env"], serde_json::json!(["PATH=/bin", "GREETING=hello world"]));
    assert_eq!(c["Cmd"], serde_json::json!(["sh", "-c", "echo $GREETING"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c", "/bin/env"]));
    assert_eq!(c["WorkingDir"], "/home/user");
    assert_eq!(c["User"], "user");
    assert_eq!(c["Labels"], serde_json::json!({"org.opencontainers.image.title": "box", "team": "qa"}));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"53/udp": {}, "80/tcp": {}}));
    assert_eq!(config["history"][0]["created_by"], "imported for a test");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

#[test]
fn a_bad_change_is_refused_before_anything_is_written() {
    let berth = Berth::new();
    let tar = busybox_tar();
    let err = berth.run(&["import", tar.to_str().unwrap(), "x", "--change", "RUN rm -rf /"]).fails_with(1).to_owned();
    assert!(err.contains("unknown instruction RUN") && err.contains("CMD, ENTRYPOINT, ENV"), "{err}");
    assert!(!berth.store_root().exists(), "nothing was written");
}

#[test]
fn import_reads_standard_input() {
    let berth = Berth::new();
    import_busybox(&berth.store_root());
    let tar = std::fs::read(busybox_tar()).unwrap();
    let output = import_stdin(&berth.store_root(), "piped", &tar);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let from_file = manifest_of(&berth.store_root(), BUSYBOX);
    let from_stdin = manifest_of(&berth.store_root(), "piped:latest");
    assert_eq!(from_file["layers"], from_stdin["layers"], "the same tar gives the same layer");
    let config = config_of(&berth.store_root(), "piped:latest");
    assert_eq!(config["history"][0]["created_by"], "berth import -");
}

#[test]
fn a_corrupt_tar_leaves_the_store_as_it_was() {
    let berth = Berth::new();
    import_busybox(&berth.store_root());
    let before = snapshot(&berth.store_root());
    let tar = std::fs::read(busybox_tar()).unwrap();

    let truncated = &tar[..tar.len() / 2];
    let output = import_stdin(&berth.store_root(), "broken", truncated);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("cannot import standard input") && err.contains("not a readable filesystem tar"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"no tar here ".repeat(100)).unwrap();
    let err = berth.run(&["import", garbage.to_str().unwrap(), "broken"]).fails_with(1).to_owned();
    assert!(err.contains(&format!("cannot import {}", garbage.display())), "{err}");

    // The snapshot compares contents, not times: the lock file is touched by locking.
    assert_eq!(snapshot(&berth.store_root()), before, "a failed import changes nothing in the store");
    assert_eq!(std::fs::read_dir(berth.store_root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn import_help_has_an_example() {
    let help = Berth::new().run(&["import", "--help"]).ok().to_owned();
    assert!(help.trim_end().ends_with("Example: berth import rootfs.tar app:1"), "{help}");
    assert!(help.contains("--change") && help.contains("--message"), "{help}");
}

/// A temporary directory and the berth store inside it holding busybox.
fn store_with_busybox() -> (Berth, PathBuf) {
    let berth = Berth::new();
    import_busybox(&berth.store_root());
    let layout = berth.store_root().join("oci");
    (berth, layout)
}

#[test]
fn umoci_unpacks_the_imported_image() {
    let umoci = require_tool("umoci", "umoci");
    let (berth, layout) = store_with_busybox();
    let bundle = berth.store().join("bundle");
    // umoci splits --image at the first ':', so the tag keeps its repository.
    let image = format!("{}:{BUSYBOX}", layout.display());
    let output = Command::new(umoci).args(["unpack", "--image", &image]).arg(&bundle).output().unwrap();
    assert!(output.status.success(), "umoci unpack failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(std::fs::read_link(rootfs.join("bin/sh")).unwrap(), Path::new("busybox"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(rootfs.join("home/user")).unwrap().uid(), 1000);
    assert_eq!(std::fs::metadata(rootfs.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("user:x:1000:1000:user:/home/user:/bin/sh"), "{passwd}");

    let ran = Command::new("chroot").arg(&rootfs).args(["/bin/sh", "-c", "echo hello from $(basename $0)"]).output();
    let ran = ran.expect("run chroot");
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "hello from sh", "{ran:?}");
}

#[test]
fn skopeo_inspects_and_copies_the_imported_image() {
    let skopeo = require_tool("skopeo", "skopeo");
    let (berth, layout) = store_with_busybox();
    let source = format!("oci:{}:{BUSYBOX}", layout.display());
    let output = Command::new(&skopeo).args(["inspect", &source]).output().unwrap();
    assert!(output.status.success(), "skopeo inspect failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let inspect: Value = serde_json::from_slice(&output.stdout).unwrap();
    let images = berth.run(&["images", "--json"]).json();
    assert_eq!(inspect["Digest"], images[0]["manifest"]);
    assert_eq!((inspect["Os"].as_str(), inspect["Layers"].as_array().map(Vec::len)), (Some("linux"), Some(1)));

    // A copy re-reads and checks every blob's digest.
    let copy = format!("oci:{}:copied", berth.store().join("copy").display());
    let output = Command::new(&skopeo).args(["copy", "--quiet", &source, &copy]).output().unwrap();
    assert!(output.status.success(), "skopeo copy failed:\n{}", String::from_utf8_lossy(&output.stderr));
}
