//! A private podman for interop tests: its own storage in a temp dir
//! (removed afterwards), cgroupfs, no event log, and runc as its runtime.
//!
//! Debian's `podman` package pulls in crun, not runc, and crun refuses this
//! machine's hybrid cgroups, so runc is installed here too (through
//! [`require_tool`]) and named with `--runtime` on every command, and `run`
//! keeps the rlimits at or below the caller's hard limit (podman's defaults
//! ask for more than this machine allows).

use std::process::{Command, Output};

use super::image::{require_tool, succeeded};

pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// A podman with empty storage, podman and runc installed if missing.
    pub fn new() -> Podman {
        require_tool("podman", "podman");
        require_tool("runc", "runc");
        Podman { dir: tempfile::tempdir().unwrap() }
    }

    /// The options that point podman at this storage and runtime, for
    /// every command (and for tools that run podman, as podman-compose's
    /// `--podman-args`).
    pub fn global_args(&self) -> Vec<String> {
        let dir = self.dir.path().display();
        let mut args = vec![format!("--root={dir}/root"), format!("--runroot={dir}/runroot")];
        args.extend(
            ["--runtime=runc", "--storage-driver=vfs", "--events-backend=none", "--cgroup-manager=cgroupfs"]
                .map(String::from),
        );
        args
    }

    /// `podman ARGS…` against this podman's storage.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("podman").args(self.global_args()).args(args).output().expect("run podman")
    }

    /// `podman ARGS…`, which must succeed; returns its standard output.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(&format!("podman {}", args.join(" ")), &self.run(args))
    }

    /// `podman run --rm IMAGE CMD…` with no network; returns its output.
    #[track_caller]
    pub fn run_rm(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image]);
        args.extend_from_slice(cmd);
        self.ok(&args)
    }

    /// `podman run --rm IMAGE echo TEXT`; returns what it printed.
    #[track_caller]
    pub fn echo(&self, image: &str, text: &str) -> String {
        self.run_rm(image, &["echo", text])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rmi", "-a", "-f"]);
    }
}
