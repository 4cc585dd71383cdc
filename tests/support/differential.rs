//! Differential builds: the same Dockerfile built by `berth build` and by
//! `podman build` (buildah, rootful, chroot isolation, Docker format), on
//! the same local bases, and the two images compared in one berth store.
//!
//! - [`share_bases`] gives both builders the same images: the busybox test
//!   image as `busybox:latest`, and, when asked, a Debian bookworm minbase
//!   as `debian:bookworm` ([`debian_minbase`]: bootstrapped by berth from
//!   the Debian archive once, then kept in `target/tmp/fixtures/`). No
//!   builder pulls anything.
//! - [`Reference`] is podman as the reference builder: `build` with the
//!   flags every differential build uses, and `bring_to` copies what it
//!   built into the berth store (`podman save` → `berth load`), where
//!   [`super::image_fs::filesystem`] and [`raw_config`] read both images the
//!   same way.
//! - [`filesystems`] reads both images' filesystems, without the empty
//!   mount points buildah leaves behind ([`BUILDAH_MOUNT_POINTS`]).
//! - [`config_differences`] compares the config fields of issue 15 point 4
//!   ([`CONFIG_FIELDS`]), the author (`MAINTAINER`) and the history's
//!   length. Buildah's own label `io.buildah.version` is left out, and an
//!   empty value equals an absent one.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Berth;
use super::image::BUSYBOX;
use super::image_fs::{Filesystem, Kind, filesystem};
use super::podman::Podman;

/// The config fields Docker writes that both images must agree on.
pub const CONFIG_FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

/// The name both builders know the Debian minbase by.
pub const DEBIAN: &str = "debian:bookworm";

/// The raw config blob of the stored image `image` (with the fields
/// `berth inspect` does not show, such as `Healthcheck`).
pub fn raw_config(berth: &Berth, image: &str) -> Value {
    let inspect = berth.run(&["inspect", image]).json();
    let digest = inspect[0]["Manifest"]["config"]["digest"].as_str().unwrap().to_owned();
    let path = berth.store_root().join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Where the configs `ours` (berth's) and `theirs` (podman's) differ, one
/// line each, leaving out the fields `skip` accepts (`config.Healthcheck`,
/// `author`, `history`). A field that is absent and one that is `null` are
/// the same.
pub fn config_differences(ours: &Value, theirs: &Value, skip: impl Fn(&str) -> bool) -> Vec<String> {
    let mut theirs = theirs.clone();
    if let Some(labels) = theirs["config"]["Labels"].as_object_mut() {
        labels.remove("io.buildah.version");
        if labels.is_empty() {
            theirs["config"]["Labels"] = Value::Null;
        }
    }
    let mut out = Vec::new();
    let fields = CONFIG_FIELDS.iter().map(|f| (format!("config.{f}"), &ours["config"][f], &theirs["config"][f]));
    for (name, a, b) in fields.chain([("author".to_owned(), &ours["author"], &theirs["author"])]) {
        let differ = if unset(a) || unset(b) { unset(a) != unset(b) } else { a != b };
        if differ && !skip(&name) {
            out.push(format!("{name}: berth has {a}, podman has {b}"));
        }
    }
    let count = |c: &Value| c["history"].as_array().map_or(0, Vec::len);
    if count(ours) != count(&theirs) && !skip("history") {
        let by = |c: &Value| -> Vec<String> {
            c["history"].as_array().into_iter().flatten().map(|h| h["created_by"].to_string()).collect()
        };
        out.push(format!(
            "history: berth has {} entries, podman {}\n  berth:  {:?}\n  podman: {:?}",
            count(ours),
            count(&theirs),
            by(ours),
            by(&theirs)
        ));
    }
    out
}

/// Whether a config value means "not set": absent, `null`, or empty (buildah
/// writes `"Cmd": []`, `"User": ""`, `"Volumes": {}` where Docker leaves
/// the field out; no runtime tells them apart).
fn unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The paths buildah's chroot isolation mounts over during a RUN and
/// leaves in the layer as empty placeholders (BuildKit and berth leave
/// nothing there).
const BUILDAH_MOUNT_POINTS: [&str; 4] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/run"];

/// The filesystems of berth's image `ours` and podman's image `theirs`
/// (both in `berth`'s store), without the empty placeholders
/// [`BUILDAH_MOUNT_POINTS`] that only podman's has.
pub fn filesystems(berth: &Berth, ours: &str, theirs: &str) -> (Filesystem, Filesystem) {
    let (ours, mut theirs) = (filesystem(berth, ours), filesystem(berth, theirs));
    for path in BUILDAH_MOUNT_POINTS {
        let placeholder = match theirs.get(path).map(|n| &n.kind) {
            Some(Kind::File { size: 0, .. }) => true,
            Some(Kind::Dir) => !theirs.keys().any(|p| p.starts_with(&format!("{path}/"))),
            _ => false,
        };
        if placeholder && !ours.contains_key(path) {
            theirs.remove(path);
        }
    }
    (ours, theirs)
}

/// Gives `berth`'s store (which holds the busybox test image, as
/// [`Berth::with_busybox`] makes it) and `podman` the same bases:
/// busybox, and with `debian` the Debian minbase in both.
pub fn share_bases(berth: &Berth, podman: &Podman, debian: bool) {
    let dir = tempfile::tempdir().unwrap();
    let busybox = dir.path().join("busybox.tar");
    let busybox = busybox.to_str().unwrap();
    berth.run(&["save", "--format", "docker-archive", "-o", busybox, BUSYBOX]).ok();
    podman.ok(&["load", "-q", "-i", busybox]);
    if debian {
        let archive = debian_minbase();
        let archive = archive.to_str().unwrap();
        berth.run(&["load", "-q", "-i", archive]).ok();
        podman.ok(&["load", "-q", "-i", archive]);
    }
}

/// A Docker archive of a Debian bookworm minbase tagged [`DEBIAN`]: berth
/// bootstraps it (mmdebstrap, from deb.debian.org) into a scratch store on
/// first use and keeps the archive in `target/tmp/fixtures/` for later
/// runs, under a file lock so that parallel tests make it once. Delete the
/// file to take a fresh one.
pub fn debian_minbase() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let archive = dir.join("debian-bookworm-minbase.tar");
    let lock = File::create(dir.join("debian-bookworm-minbase.lock")).expect("create the fixture lock file");
    lock.lock().expect("lock the fixture lock file"); // released when `lock` is dropped
    if archive.is_file() {
        return archive;
    }
    let berth = Berth::new();
    let project = tempfile::tempdir().unwrap();
    fs::write(
        project.path().join("berth.toml"),
        "project = \"minbase\"\n[env.debian]\nbootstrap = { suite = \"bookworm\", variant = \"minbase\" }\n",
    )
    .unwrap();
    berth.run_in(project.path(), &["build", "-q"]).ok();
    berth.run(&["tag", "minbase/debian:latest", DEBIAN]).ok();
    let partial = dir.join(format!("debian-bookworm-minbase.tar.{}", std::process::id()));
    berth.run(&["save", "--format", "docker-archive", "-o", partial.to_str().unwrap(), DEBIAN]).ok();
    fs::rename(&partial, &archive).expect("move the built fixture into place");
    archive
}

/// podman as the reference builder (see the module page).
pub struct Reference {
    pub podman: Podman,
    dir: tempfile::TempDir,
}

impl Reference {
    /// A podman with empty storage (podman and runc installed if missing).
    pub fn new() -> Reference {
        Reference { podman: Podman::new(), dir: tempfile::tempdir().unwrap() }
    }

    /// `podman build` of `context` (with `dockerfile` in it, if given) into
    /// `tag`, with `--build-arg` for each of `args` and `--target`; the
    /// command's output on failure.
    pub fn build(
        &self,
        context: &Path,
        dockerfile: Option<&Path>,
        tag: &str,
        args: &[String],
        target: Option<&str>,
    ) -> Result<(), String> {
        let mut cmd: Vec<String> = ["build", "--pull=never", "--isolation", "chroot", "--format", "docker", "--layers"]
            .map(String::from)
            .to_vec();
        cmd.extend(["-t".to_owned(), tag.to_owned()]);
        if let Some(file) = dockerfile {
            cmd.extend(["-f".to_owned(), file.display().to_string()]);
        }
        for arg in args {
            cmd.extend(["--build-arg".to_owned(), arg.clone()]);
        }
        if let Some(target) = target {
            cmd.extend(["--target".to_owned(), target.to_owned()]);
        }
        cmd.push(context.display().to_string());
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let out = self.podman.run(&args);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "podman {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Copies podman's images `tags` into `berth`'s store, where they are
    /// then named `localhost/NAME:TAG` (podman's name for a local image).
    pub fn bring_to(&self, berth: &Berth, tags: &[&str]) {
        if tags.is_empty() {
            return;
        }
        let archive = self.dir.path().join("images.tar");
        let archive_arg = archive.to_str().unwrap();
        let mut args = vec!["save", "--format", "docker-archive", "-m", "-o", archive_arg];
        args.extend_from_slice(tags);
        self.podman.ok(&args);
        berth.run(&["load", "-q", "-i", archive_arg]).ok();
        fs::remove_file(&archive).unwrap();
    }
}
