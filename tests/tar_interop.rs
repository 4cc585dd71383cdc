//! Every layer berth writes is a tar that other readers accept: GNU tar
//! lists each one (import, base, copy step, run step, commit and snapshot
//! with deletions and an opaque directory, freeze, export) with exit 0 and
//! nothing on standard error, and podman loads and runs a committed image
//! and a frozen archive, seeing the deletions, the replaced directory and
//! the added files. Whiteouts and opaque markers of a commit carry mtime 0
//! (as containerd writes them), never an out-of-range value.

mod support;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::Berth;
use support::image::{busybox_tar, require_tool, succeeded};
use support::podman::Podman;

const MANIFEST: &str = r#"
project = "tario"

[env.app]
image = "rootfs:busybox.tar"
copy = [{ src = "app", dest = "/srv/app" }]
run = ["rm /bin/cpio && rm -rf /home && mkdir /home && echo built > /home/built"]
cmd = ["sh", "-c", "touch /ready; exec sleep 300"]
"#;

/// What the container changes: a deletion, a directory removed and made
/// again (opaque), an added file, and a file dated after 2242-03-16, the
/// last second an 11-digit octal ustar mtime holds (and before 2262, the
/// last one podman's storage sets rather than resetting to 1970).
const CHANGES: &str = "echo kept > /kept && rm /bin/vi && rm -rf /home && mkdir /home && echo new > /home/new \
    && touch -d '2250-01-01 00:00:00' /future";

/// What an image with [`CHANGES`] shows, one line per check.
const CHECK: &str = "cat /kept; test -e /bin/vi && echo vi || echo no-vi; test -e /bin/ls && echo ls; ls -A /home";

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GNU tar's path, installed if missing; refuses any other tar.
fn gnu_tar() -> PathBuf {
    let tar = require_tool("tar", "tar");
    let version = succeeded("tar --version", &Command::new(&tar).arg("--version").output().unwrap());
    assert!(version.starts_with("tar (GNU tar)"), "not GNU tar: {version}");
    tar
}

/// `tar -tvf FILE`: it must exit 0 and print nothing on standard error (no
/// warning either); returns the listing.
#[track_caller]
fn gnu_list(what: &str, file: &Path) -> String {
    let out = Command::new(gnu_tar()).arg("-tvf").arg(file).env("TZ", "UTC").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "GNU tar on the {what} ({}): {}\n{stderr}",
        file.display(),
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The blob `blob` of `media_type` decompressed into `dir`; returns its path.
fn decompressed(blob: &Path, media_type: &str, dir: &Path) -> PathBuf {
    let file = File::open(blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let mut reader: Box<dyn Read> = match media_type.rsplit_once('+').map(|(_, c)| c) {
        Some("gzip") => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some("zstd") => Box::new(zstd::stream::read::Decoder::new(file).unwrap()),
        None => Box::new(file),
        Some(other) => panic!("unknown layer compression {other} ({media_type})"),
    };
    let out = dir.join(format!("{}.tar", blob.file_name().unwrap().to_string_lossy()));
    io::copy(&mut reader, &mut File::create(&out).unwrap()).unwrap();
    out
}

/// The layer descriptors `(digest hex, media type)` of a manifest.
fn layers_of(manifest: &serde_json::Value) -> Vec<(String, String)> {
    let layers = manifest["layers"].as_array().unwrap_or_else(|| panic!("no layers in {manifest}"));
    let hex = |l: &serde_json::Value| l["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
    layers.iter().map(|l| (hex(l), l["mediaType"].as_str().unwrap().to_owned())).collect()
}

/// GNU tar's listing of every layer of `image` in berth's store, bottom first.
fn list_image(berth: &Berth, image: &str, scratch: &Path) -> Vec<String> {
    let info = berth.run(&["inspect", image]).json()[0].clone();
    let blobs = berth.store_root().join("oci/blobs/sha256");
    let list = |(hex, media): (String, String)| {
        gnu_list(&format!("layer {hex} of {image}"), &decompressed(&blobs.join(hex), &media, scratch))
    };
    layers_of(&info["Manifest"]).into_iter().map(list).collect()
}

/// GNU tar's listing of every layer of every image in the OCI archive
/// `archive` (unpacked with GNU tar into `scratch`).
fn list_archive(archive: &Path, scratch: &Path) -> Vec<String> {
    let dir = scratch.join("archive");
    std::fs::create_dir(&dir).unwrap();
    gnu_list("archive", archive);
    let out = Command::new(gnu_tar()).arg("-xf").arg(archive).arg("-C").arg(&dir).output().unwrap();
    succeeded("tar -xf archive", &out);
    let json = |rel: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    let mut listings = Vec::new();
    for m in json("index.json")["manifests"].as_array().unwrap() {
        let hex = m["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
        for (layer, media) in layers_of(&json(&format!("blobs/sha256/{hex}"))) {
            let blob = dir.join("blobs/sha256").join(&layer);
            listings.push(gnu_list(&format!("archived layer {layer}"), &decompressed(&blob, &media, scratch)));
        }
    }
    listings
}

/// The line of `listing` for the entry `name`.
#[track_caller]
fn line<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("no entry {name} in\n{listing}"))
}

#[test]
fn gnu_tar_lists_every_kind_of_layer_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::copy(busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/hello"), "hello\n").unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();
    let berth = Berth::new();
    let run = |args: &[&str]| berth.run_in(dir.path(), args).ok().to_owned();

    // import
    run(&["import", "busybox.tar", "tario/imported:1"]);
    let imported = list_image(&berth, "tario/imported:1", scratch.path());
    assert!(imported[0].contains(" bin/busybox"), "{}", imported[0]);

    // base, copy step, run step
    run(&["up", "-d"]);
    let built = list_image(&berth, "tario/app:latest", scratch.path());
    assert_eq!(built.len(), 3, "base, copy, run: {built:?}");
    line(&built[1], "srv/app/hello");
    for name in ["bin/.wh.cpio", "home/.wh..wh..opq", "home/built"] {
        line(&built[2], name);
    }

    // commit and snapshot: deletions, an opaque directory, a far-future mtime
    wait_for("the container to start", || berth.run_in(dir.path(), &["exec", "app", "test", "-e", "/ready"]).code == 0);
    run(&["exec", "app", "sh", "-c", CHANGES]);
    run(&["commit", "tario-app", "tario/commit:1"]);
    run(&["snapshot", "app", "-t", "tario/app:snap"]);
    for image in ["tario/commit:1", "tario/app:snap"] {
        let listings = list_image(&berth, image, scratch.path());
        let top = listings.last().unwrap();
        for marker in ["bin/.wh.vi", "home/.wh..wh..opq"] {
            assert!(line(top, marker).contains(" 1970-01-01 00:00 "), "{image}: {}", line(top, marker));
        }
        line(top, "home/new");
        line(top, "kept");
        assert!(line(top, "future").contains(" 2250-01-01 00:00 "), "{image}: {}", line(top, "future"));
    }

    // freeze: the archive and every layer in it
    let frozen = dir.path().join("frozen.tar");
    run(&["freeze", "app", "-o", frozen.to_str().unwrap()]);
    let archived = list_archive(&frozen, scratch.path());
    assert_eq!(archived.len(), 4, "base, copy, run and the freeze's own layer");
    line(&archived[3], "bin/.wh.vi");

    // export: the container's merged tree, no whiteouts
    let exported = dir.path().join("exported.tar");
    run(&["export", "-o", exported.to_str().unwrap(), "tario-app"]);
    let listing = gnu_list("export", &exported);
    assert!(line(&listing, "future").contains(" 2250-01-01 00:00 "), "{}", line(&listing, "future"));
    line(&listing, "home/new");
    line(&listing, "bin/ls -> busybox");
    for gone in [".wh.", " bin/vi -> ", " home/built"] {
        assert!(!listing.contains(gone), "{gone:?} in the export:\n{listing}");
    }

    // What QA gets: podman loads the frozen archive and sees the changes.
    let podman = Podman::new();
    let loaded = podman.ok(&["load", "-i", frozen.to_str().unwrap()]);
    let name = loaded.lines().find_map(|l| l.strip_prefix("Loaded image: ")).unwrap_or_else(|| panic!("{loaded}"));
    assert_eq!(podman.run_rm(name, &["sh", "-c", CHECK]), "kept\nno-vi\nls\nnew\n");
    run(&["down"]);
}

#[test]
fn podman_runs_a_committed_image_with_deletions() {
    let berth = Berth::with_busybox();
    berth.detach(&["--name", "snap", "busybox", "sh", "-c", "touch /ready; exec sleep 300"]);
    wait_for("the container to start", || berth.run(&["exec", "snap", "test", "-e", "/ready"]).code == 0);
    berth.run(&["exec", "snap", "sh", "-c", CHANGES]).ok();
    berth.run(&["commit", "snap", "snap:1"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("snap.tar");
    berth.run(&["save", "snap:1", "-o", archive.to_str().unwrap()]).ok();

    let podman = Podman::new();
    let loaded = podman.ok(&["load", "-i", archive.to_str().unwrap()]);
    let name = loaded.lines().find_map(|l| l.strip_prefix("Loaded image: ")).unwrap_or_else(|| panic!("{loaded}"));
    assert_eq!(podman.run_rm(name, &["sh", "-c", CHECK]), "kept\nno-vi\nls\nnew\n");
    let future = podman.run_rm(name, &["stat", "-c", "%Y", "/future"]);
    assert_eq!(future.trim(), "8835955200", "the mtime after 2242 survives (2250-01-01)");
}
