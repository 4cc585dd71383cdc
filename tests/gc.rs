//! `berth gc`, `berth fsck` and `berth system df` end to end: what gc keeps
//! (tags, running and stopped containers, the cache until evicted), what it
//! removes (dangling images, stale cache entries, leftovers), dry runs that
//! change nothing, fsck finding and repairing damage, and df's rows.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest as _;
use support::{Berth, wait_until as wait_for};

/// A project dir with the busybox rootfs as `busybox.tar` and `manifest`
/// as its berth.toml.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    dir
}

/// One env whose run step writes `version` into /version.
fn manifest(version: &str) -> String {
    format!(
        "project = \"t\"\n\n[env.app]\nimage = \"rootfs:busybox.tar\"\nrun = [\"echo {version} > /version\"]\ncmd = [\"sleep\", \"300\"]\n"
    )
}

/// Every path under `root` with its type, size, mtime and content hash:
/// equal listings mean a byte-identical store.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let hash = if meta.is_file() { hex(&std::fs::read(&path).unwrap()) } else { String::new() };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push(format!("{rel} {:o} {} {}.{} {hash}", meta.mode(), meta.len(), meta.mtime(), meta.mtime_nsec()));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes in the regular files under `root`, each inode once.
fn file_bytes(root: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn status(berth: &Berth, name: &str) -> String {
    let all = berth.run(&["ps", "-a", "--json"]).json();
    let found = all.as_array().unwrap().iter().find(|c| c["name"] == name).cloned();
    found.map(|c| c["status"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

/// The blob files of the store, by path.
fn blob_paths(berth: &Berth) -> Vec<PathBuf> {
    let dir = berth.store_root().join("oci/blobs/sha256");
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    all.sort();
    all
}

#[test]
fn gc_keeps_what_tags_and_running_and_stopped_containers_need() {
    let berth = Berth::new();
    let dir = project(&manifest("v1"));
    berth.run_in(dir.path(), &["build", "-q"]).ok();
    berth.detach(&["--name", "running", "t/app"]);
    berth.run(&["run", "--name", "stopped", "t/app", "cat", "/version"]).ok();
    // Rebuilt: the tag moves on, and the containers' image is left untagged.
    std::fs::write(dir.path().join("berth.toml"), manifest("v2")).unwrap();
    berth.run_in(dir.path(), &["build", "-q"]).ok();

    for args in [&["gc"][..], &["gc", "--keep-storage", "0"]] {
        let out = berth.run(args).ok().to_owned();
        assert!(out.contains("Total reclaimed space: "), "{out}");
    }
    assert_eq!(berth.run(&["exec", "running", "cat", "/version"]).ok(), "v1\n");
    berth.run(&["start", "stopped"]).ok();
    wait_for("the stopped container to run again", || {
        status(&berth, "stopped") == "exited" && berth.run(&["logs", "stopped"]).stdout == "v1\nv1\n"
    });
    assert_eq!(berth.run(&["run", "--rm", "t/app", "cat", "/version"]).ok(), "v2\n");
    berth.run(&["fsck"]).ok();

    // Without its containers, the old image is dangling and goes.
    berth.run(&["rm", "-f", "running", "stopped"]).ok();
    let json = berth.run(&["gc", "--json"]).json();
    let removed = json["removed"].as_array().unwrap();
    let blobs = removed.iter().filter(|r| r["kind"] == "blob").count();
    let layers = removed.iter().filter(|r| r["kind"] == "layer").count();
    assert_eq!((blobs, layers), (3, 1), "the old manifest, config and run layer: {json:#}");
    assert_eq!(berth.run(&["run", "--rm", "t/app", "cat", "/version"]).ok(), "v2\n");
    assert!(berth.run(&["fsck"]).ok().starts_with("store is consistent"));
}

#[test]
fn an_image_goes_only_when_its_last_tag_is_removed() {
    let berth = Berth::with_busybox();
    berth.run(&["tag", "busybox", "second"]).ok();
    berth.run(&["rmi", "busybox"]).ok();
    let out = berth.run(&["gc"]).ok().to_owned();
    assert_eq!(out, "Total reclaimed space: 0 B\n", "still tagged as second");
    assert_eq!(blob_paths(&berth).len(), 3);

    berth.run(&["rmi", "second"]).ok();
    let before = file_bytes(&berth.store_root());
    let out = berth.run(&["gc"]).ok().to_owned();
    let deleted: Vec<&str> = out.lines().filter(|l| l.starts_with("Deleted: ")).collect();
    assert_eq!(deleted.len(), 4, "manifest, config, layer blob, unpacked layer: {out}");
    assert_eq!(deleted.iter().filter(|l| l.starts_with("Deleted: blob sha256:")).count(), 3, "{out}");
    assert!(deleted.iter().any(|l| l.starts_with("Deleted: layer sha256:")), "{out}");
    let blobs = deleted.iter().filter(|l| l.starts_with("Deleted: blob "));
    let roles: Vec<&str> = blobs.filter_map(|l| l.split(" (").nth(1)?.split(',').next()).collect();
    assert_eq!(roles, ["manifest", "config", "layer"], "referrers go first: {out}");
    assert!(out.lines().last().unwrap().starts_with("Total reclaimed space: ") && out.contains(" MB"), "{out}");
    assert!(blob_paths(&berth).is_empty());
    assert_eq!(entries(&berth.store_root().join("layers")), 0);
    assert!(before - file_bytes(&berth.store_root()) > 1_000_000);
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn keep_storage_evicts_stale_cache_entries_least_recently_used_first() {
    let berth = Berth::new();
    let dir = project(&manifest("v1"));
    berth.run_in(dir.path(), &["build", "-q"]).ok();
    let plan = berth.run_in(dir.path(), &["plan", "--json"]).json();
    let keys = |plan: &serde_json::Value, kind: &str| -> String {
        let nodes = plan["nodes"].as_array().unwrap();
        nodes.iter().find(|n| n["kind"] == kind).unwrap()["key"].as_str().unwrap().to_owned()
    };
    let (base, old_run) = (keys(&plan, "base"), keys(&plan, "run"));
    // The first build's uses, long ago: the rebuild's cache hit on the base
    // is then later whatever the clock's resolution (an entry's mtime is its
    // last use).
    for entry in std::fs::read_dir(berth.store_root().join("cache")).unwrap() {
        let file = std::fs::File::options().write(true).open(entry.unwrap().path()).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000)).unwrap();
    }
    std::fs::write(dir.path().join("berth.toml"), manifest("v2")).unwrap();
    berth.run_in(dir.path(), &["build", "-q"]).ok();
    let cache = berth.store_root().join("cache");
    assert_eq!(entries(&cache), 3, "base, the old run step and the new one");

    // Plain gc keeps the cache: the old run step could be hit again.
    berth.run(&["gc"]).ok();
    assert!(cache.join(&old_run).exists());

    // One byte under the current size: exactly the least recently used entry goes.
    let dry = berth.run(&["gc", "--dry-run", "--json", "--keep-storage", "1TB"]).json();
    let size = dry["size_after"].as_u64().unwrap();
    let cap = (size - 1).to_string();
    let json = berth.run(&["gc", "--json", "--keep-storage", &cap]).json();
    let removed = json["removed"].as_array().unwrap();
    let evicted: Vec<&str> =
        removed.iter().filter(|r| r["kind"] == "cache-entry").map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(evicted, [old_run.as_str()], "{json:#}");
    assert!(removed.iter().any(|r| r["kind"] == "layer"), "its layer went with it: {json:#}");
    assert!(json["size_after"].as_u64().unwrap() < size);
    assert!(cache.join(&base).exists());
    let again = berth.run_in(dir.path(), &["build"]);
    assert!(again.stderr.contains("nothing to build"), "the current entries stayed: {}", again.stderr);

    // A cap of 0 evicts the whole cache but keeps what the tag needs.
    let out = berth.run(&["gc", "--keep-storage", "0"]).ok().to_owned();
    assert!(out.contains("Deleted: cache entry ") && out.contains("evicted to fit 0 B"), "{out}");
    assert!(out.contains("Store size after: ") && out.contains("tags and containers need more than that"), "{out}");
    assert_eq!(entries(&cache), 0);
    assert_eq!(berth.run(&["run", "--rm", "t/app", "cat", "/version"]).ok(), "v2\n");
    assert!(berth.run(&["fsck"]).ok().starts_with("store is consistent"));
}

#[test]
fn a_dry_run_changes_nothing_and_its_total_is_what_gc_frees() {
    let berth = Berth::with_busybox();
    let dir = project(&manifest("v1"));
    berth.run_in(dir.path(), &["build", "-q"]).ok();
    std::fs::write(dir.path().join("berth.toml"), manifest("v2")).unwrap();
    berth.run_in(dir.path(), &["build", "-q"]).ok();
    berth.run(&["rmi", "busybox"]).ok();
    let tmp = berth.store_root().join("tmp");
    std::fs::write(tmp.join("blob-1-0-0"), vec![7u8; 5000]).unwrap();

    let before = listing(&berth.store_root());
    let out = berth.run(&["gc", "--dry-run"]).ok().to_owned();
    assert!(
        out.contains("Would delete: blob sha256:") && out.contains("Would delete: tmp blob-1-0-0 (5.0 kB"),
        "{out}"
    );
    assert!(out.contains("Total reclaimable space: ") && out.contains("nothing was deleted"), "{out}");
    let capped = berth.run(&["gc", "--dry-run", "--keep-storage", "0"]).ok().to_owned();
    assert!(capped.contains("Would delete: cache entry "), "{capped}");
    assert_eq!(before, listing(&berth.store_root()), "a dry run changed the store");

    let plan = berth.run(&["gc", "--dry-run", "--json"]).json();
    let bytes_before = file_bytes(&berth.store_root());
    let done = berth.run(&["gc", "--json"]).json();
    assert_eq!(plan["removals"], done["removed"]);
    assert_eq!(plan["reclaimable"], done["reclaimed"]);
    let freed = bytes_before - file_bytes(&berth.store_root());
    assert_eq!(done["reclaimed"].as_u64().unwrap(), freed, "{done:#}");
    assert_eq!(entries(&tmp), 0);
}

#[test]
fn fsck_reports_damage_and_repair_removes_only_what_is_bad() {
    let berth = Berth::with_busybox();
    let clean = berth.run(&["fsck"]).ok().to_owned();
    assert_eq!(clean, "store is consistent: 3 blobs, 1 layers, 1 refs\n");
    let good: Vec<(PathBuf, Vec<u8>)> =
        blob_paths(&berth).into_iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect();

    // A second, untagged image of the same tree: its own manifest and config.
    let spare =
        berth.run(&["import", "-m", "spare", support::image::busybox_tar().to_str().unwrap()]).ok().trim().to_owned();
    let spare_manifest = berth.store_root().join("oci/blobs/sha256").join(spare.trim_start_matches("sha256:"));
    let spare_config =
        blob_paths(&berth).into_iter().find(|p| !good.iter().any(|(g, _)| g == p) && *p != spare_manifest).unwrap();
    let mut bytes = std::fs::read(&spare_config).unwrap();
    bytes[5] ^= 0x20;
    std::fs::write(&spare_config, bytes).unwrap();
    let len = std::fs::metadata(&spare_manifest).unwrap().len();
    std::fs::File::options().write(true).open(&spare_manifest).unwrap().set_len(len - 10).unwrap();
    let tmp = berth.store_root().join("tmp");
    std::fs::write(tmp.join("blob-4242-0-0"), b"half a blo").unwrap();
    let staging = tmp.join("stage-4242-1-0");
    std::fs::create_dir_all(staging.join("bin")).unwrap();
    std::fs::write(staging.join("bin/half"), b"x").unwrap();

    let run = berth.run(&["fsck"]);
    run.fails_with(1);
    let out = run.stdout;
    for (path, what) in [
        (&spare_config, "corrupt blob: content hashes to sha256:"),
        (&spare_manifest, "corrupt blob"),
        (&tmp.join("blob-4242-0-0"), "leftover: a blob whose write was interrupted"),
        (&staging, "leftover: an unpacked layer that was never completed"),
    ] {
        let line = format!("{}: {what}", path.display());
        assert!(out.contains(&line), "no {line:?} in:\n{out}");
    }
    assert!(out.contains("4 problem(s) found; `berth fsck --repair` fixes 4"), "{out}");

    let repaired = berth.run(&["fsck", "--repair"]).ok().to_owned();
    let removed: Vec<&str> = repaired.lines().filter(|l| l.starts_with("Removed: ")).collect();
    assert_eq!(removed.len(), 4, "{repaired}");
    assert!(repaired.ends_with("store is consistent: 3 blobs, 1 layers, 1 refs\n"), "{repaired}");
    assert_eq!(berth.run(&["fsck"]).ok(), clean);
    for (path, bytes) in &good {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{} changed", path.display());
    }
    assert_eq!(berth.run(&["run", "--rm", "busybox", "echo", "ok"]).ok(), "ok\n");
}

#[test]
fn a_corrupt_blob_a_tag_needs_is_removed_and_the_tag_reported() {
    let berth = Berth::with_busybox();
    let layer = blob_paths(&berth).into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let mut bytes = std::fs::read(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&layer, bytes).unwrap();
    let run = berth.run(&["fsck", "--repair"]);
    run.fails_with(1);
    let removed = format!("Removed: {} (corrupt blob", layer.display());
    assert!(run.stdout.contains(&removed), "{}", run.stdout);
    let missing = format!("{}: missing blob: tag busybox:latest needs this layer", layer.display());
    assert!(run.stdout.contains(&missing) && run.stdout.contains("berth rmi"), "{}", run.stdout);
    berth.run(&["fsck"]).fails_with(1);
}

#[test]
fn system_df_shows_images_containers_cache_and_volumes() {
    let berth = Berth::with_busybox();
    let dir = project(&manifest("v1"));
    berth.run_in(dir.path(), &["build", "-q"]).ok();
    berth.detach(&["--name", "writer", "busybox", "sh", "-c", "head -c 200000 /dev/zero > /blob; exec sleep 300"]);
    wait_for("the writer's file", || berth.run(&["exec", "writer", "ls", "/blob"]).code == 0);
    let volume = berth.store_root().join("volumes/shop/data");
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join("db"), vec![1u8; 3000]).unwrap();

    let out = berth.run(&["system", "df"]).ok().to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TYPE") && lines[0].contains("RECLAIMABLE"), "{out}");
    for (i, row) in ["Images", "Containers", "Build cache", "Local volumes"].iter().enumerate() {
        assert!(lines[i + 1].starts_with(row), "{out}");
    }
    let json = berth.run(&["system", "df", "--json"]).json();
    let row = |i: usize, field: &str| json["rows"][i][field].as_u64().unwrap();
    assert_eq!((row(0, "total"), row(0, "active")), (2, 1), "busybox (in use) and t/app: {json:#}");
    assert!(row(0, "size") > 1_000_000 && row(0, "reclaimable") < row(0, "size"), "{json:#}");
    assert_eq!((row(1, "total"), row(1, "active")), (1, 1));
    assert!(row(1, "size") >= 200_000 && row(1, "reclaimable") == 0, "{json:#}");
    assert_eq!(row(2, "total"), 2, "the base and the run step");
    assert!(row(2, "size") > 1_000_000, "{json:#}");
    assert_eq!((row(3, "total"), row(3, "size"), row(3, "reclaimable")), (1, 3000, 3000));
    let store = json["store_size"].as_u64().unwrap();
    assert!(store >= row(0, "size") && store < row(0, "size") + row(2, "size"), "{json:#}");

    let verbose = berth.run(&["system", "df", "-v"]).ok().to_owned();
    for section in
        ["Images space usage:", "Containers space usage:", "Build cache usage:", "Local volumes space usage:"]
    {
        assert!(verbose.contains(section), "{verbose}");
    }
    assert!(verbose.contains("busybox:latest") && verbose.contains("writer") && verbose.contains("shop"), "{verbose}");
}
