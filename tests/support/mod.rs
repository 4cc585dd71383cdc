//! Test support: run the built `berth` binary against a fresh temporary
//! store, as a user would, and read what it printed.
//!
//! Waiting: a test never sleeps to let something happen. It waits for a
//! readiness signal (a line in a container's log, a file, a port that
//! answers) with [`wait_until`], [`poll`] or [`Berth::wait_for_log`], which
//! poll every 50 ms for at most [`PATIENCE`] — a bound against a hang, not a
//! timing: on a loaded machine readiness may take seconds.

#![allow(dead_code)]

pub mod cgroups;
pub mod differential;
pub mod image;
pub mod image_fs;
pub mod podman;
pub mod registry;
pub mod rootless;
pub mod stream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The longest a test waits for anything to become ready before it fails.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Calls `probe` every 50 ms until it returns `Some`, and returns that;
/// fails the test, naming `what`, after [`PATIENCE`].
#[track_caller]
pub fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < until, "timed out after {PATIENCE:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `done` returns true (see [`poll`]).
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    poll(what, || done().then_some(()))
}

/// A fresh, empty store for one test, removed when the test ends.
pub struct Berth {
    store: tempfile::TempDir,
}

impl Berth {
    pub fn new() -> Berth {
        need_nft();
        Berth { store: tempfile::tempdir().expect("temp store") }
    }

    /// A fresh, empty store in a new directory below `parent` (on the
    /// filesystem a test chose).
    pub fn new_in(parent: &Path) -> Berth {
        need_nft();
        Berth { store: tempfile::tempdir_in(parent).expect("temp store") }
    }

    /// The store's directory (it may not exist as a store yet).
    pub fn store(&self) -> &Path {
        self.store.path()
    }

    /// `berth --root STORE ARGS…` run in `cwd`.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.store.path().join("store"))
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .output()
            .expect("run berth");
        Run::from(output)
    }

    /// `berth ARGS…` run in the repository's root.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(&repo(), args)
    }

    /// The store root passed to berth.
    pub fn store_root(&self) -> PathBuf {
        self.store.path().join("store")
    }

    /// A fresh store holding the busybox test image as `busybox:latest`.
    pub fn with_busybox() -> Berth {
        let berth = Berth::new();
        image::import_busybox(&berth.store_root());
        berth
    }

    /// Waits until the log of `container` (stdout and stderr) contains
    /// `needle`, and returns the log; on timeout fails with the log and the
    /// container's status. The readiness signal of a container that prints
    /// a line when it is ready (after a `trap`, once a server listens).
    #[track_caller]
    pub fn wait_for_log(&self, container: &str, needle: &str) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            let logs = self.run(&["logs", container]);
            let text = format!("{}{}", logs.stdout, logs.stderr);
            if text.contains(needle) {
                return text;
            }
            if Instant::now() >= until {
                let ps = self.run(&["ps", "-a"]).stdout;
                panic!(
                    "container {container} never logged {needle:?} in {PATIENCE:?}; its log:\n{text}\nberth ps -a:\n{ps}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `berth run -d ARGS…`; returns the container id.
    #[track_caller]
    pub fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        self.run(&all).ok().trim().to_owned()
    }
}

/// Removes every container the test left, also when it failed: no process,
/// mount or cgroup of a test outlives it.
impl Drop for Berth {
    fn drop(&mut self) {
        if !self.store_root().join("containers").exists() {
            return;
        }
        let ids = self.run(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // Project network namespaces are bind mounts in the store, and as
        // root each has a bridge, a veth and nftables elements on the host:
        // `down` removes them all; unmounting is the last resort.
        if let Ok(entries) = std::fs::read_dir(self.store_root().join("projects")) {
            for e in entries.flatten() {
                let path = e.path();
                let ext = path.extension().and_then(|x| x.to_str()).unwrap_or_default();
                if ext == "netns" || ext == "isolated-netns" {
                    if let Some(project) = path.file_stem().and_then(|s| s.to_str()) {
                        let _ = self.run(&["down", "-p", project]);
                    }
                    let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        // Lone containers' namespaces (`run --network bridge`) went with
        // their containers above; whatever is left is unmounted, and its
        // network's record, whose namespace file then goes with the store,
        // is taken back by the next allocation.
        if let Ok(entries) = std::fs::read_dir(self.store_root().join("netns")) {
            for e in entries.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// berth runs `nft` to give a project network (every `up` as root)
/// outbound access: installed once per test binary, before the first store.
fn need_nft() {
    static NFT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    NFT.get_or_init(|| {
        if nix::unistd::geteuid().is_root() {
            image::require_tool("nft", "nftables");
        }
    });
}

/// What one berth invocation did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "berth failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        &self.stdout
    }

    /// Asserts the exit code and returns stderr.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "unexpected exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        &self.stderr
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// The repository's root directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree (files, dirs, symlinks) into `dst`.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.push((path.clone(), Vec::new()));
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}
