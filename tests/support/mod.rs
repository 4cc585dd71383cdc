//! Test support: run the built `berth` binary against a fresh temporary
//! store, as a user would, and read what it printed.

#![allow(dead_code)]

pub mod image;
pub mod podman;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty store for one test, removed when the test ends.
pub struct Berth {
    store: tempfile::TempDir,
}

impl Berth {
    pub fn new() -> Berth {
        Berth { store: tempfile::tempdir().expect("temp store") }
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
        // Project network namespaces are bind mounts in the store.
        if let Ok(entries) = std::fs::read_dir(self.store_root().join("projects")) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "netns") {
                    let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
    }
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
