//! Test images without a registry, and the peer tools that check them.
//!
//! - [`busybox_tar`]: the busybox rootfs tar from `fixtures/images/busybox.sh`,
//!   built once per test run into `target/tmp/fixtures/` (rebuilt when
//!   missing or older than the script), under a file lock so that parallel
//!   tests and test binaries never build it twice at once.
//! - [`import_busybox`]: `berth --root ROOT import TAR busybox:latest` with
//!   the built binary; returns the tag.
//! - [`echo_server`]: `fixtures/helpers/echo_server.rs` compiled with rustc
//!   into a static executable (for the busybox image, which has no UDP
//!   server), built once per test run the same way.
//! - [`syscall_probe`]: `fixtures/helpers/syscall_probe.rs`, built the
//!   same way, for the seccomp tests.
//! - [`require_tool`]: a peer tool (`umoci`, `skopeo`, …), installed with
//!   apt-get when missing; panics with the reason if that fails, so an
//!   interop test never passes by skipping.
//!
//! # Every program the tests run on the host, and who installs it
//!
//! A fresh Debian machine has only the Essential and `Priority: required`
//! packages. Everything else a test, a fixture script or berth itself runs
//! is installed before its first use:
//!
//! | program | package | installed by |
//! |---|---|---|
//! | `podman`, `runc` | podman, runc | [`require_tool`] (`support::podman`, `tests/bases.rs`) |
//! | `skopeo`, `umoci` | skopeo, umoci | [`require_tool`] (`tests/archive.rs`, `import.rs`, `registry.rs`, `bases.rs`) |
//! | `docker-registry` | docker-registry | [`require_tool`] (`support::registry`) |
//! | `htpasswd` | apache2-utils | [`require_tool`] (`support::registry`) |
//! | `openssl` | openssl | [`require_tool`] (`support::registry`, its token service) |
//! | `/bin/busybox` (static) | busybox-static | `fixtures/images/busybox.sh` and the runtime unit tests' fixture, with apt-get (also the cgroup-v2 machine's initramfs) |
//! | `mmdebstrap` | mmdebstrap | berth itself, for a `bootstrap` base (`build::base::bootstrap`) |
//! | `nft` | nftables | [`require_tool`] (`support::Berth::new`, as root); berth itself runs it for a project network's masquerading (`runtime::network`) |
//! | `ip` | iproute2 | [`require_tool`] (`tests/network.rs`, to compare the host's links, addresses and routes) |
//! | `newuidmap`, `newgidmap` | uidmap | [`require_tool`] (`support::rootless`); berth itself runs them without root |
//! | `setpriv` | util-linux | [`require_tool`] (`support::rootless`, to run berth as the test user) |
//! | `useradd`, `usermod` | passwd | `support::rootless`, to make the test user (Priority: required) |
//! | `qemu-system-x86_64` | qemu-system-x86 | [`require_tool`] (`tests/vm/machine.rs`, the cgroup-v2 machine) |
//! | Debian's kernel (`vmlinuz`, modules) | linux-image-amd64's versioned package | `apt-get download` + `dpkg-deb -x` into `target/tmp/vm` (`tests/vm/kernel.rs`); never installed |
//!
//! Already on every Debian system (Essential: yes, or Priority: required):
//! `bash` (bash), `sh` (dash), `tar` (tar), `cp`, `chroot`, `sleep`,
//! `true`, `stty`, `mktemp`, `install` (coreutils), `grep` (grep),
//! `unshare`, `nsenter` (util-linux), `script` (bsdutils), `mount`,
//! `umount` (mount), `ldd` (libc-bin), `apt-get`, `apt-cache` (apt),
//! `dpkg-deb` (dpkg), `chmod` (coreutils). berth runs no other host program (but `nft`): its other
//! `Command`s start berth itself (the shim) or run inside a container.
//!
//! Use it from a test file either through the shared support module,
//!
//! ```ignore
//! mod support;
//! use support::image::{busybox_tar, import_busybox};
//! ```
//!
//! or on its own (it depends on nothing else in `support/`):
//!
//! ```ignore
//! #[path = "support/image.rs"]
//! mod image;
//! ```

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The tag [`import_busybox`] gives the image.
pub const BUSYBOX: &str = "busybox:latest";

/// The busybox rootfs tar, built on first use in this test run (see the
/// module page).
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(build_busybox_tar).clone()
}

fn build_busybox_tar() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/images/busybox.sh");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let tar = dir.join("busybox.tar");
    let lock = File::create(dir.join("busybox.lock")).expect("create the fixture lock file");
    lock.lock().expect("lock the fixture lock file"); // released when `lock` is dropped

    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(written)) = (modified(&tar), modified(&script))
        && built >= written
    {
        return tar;
    }
    let partial = dir.join(format!("busybox.tar.{}", std::process::id()));
    let output = Command::new("bash").arg(&script).arg(&partial).output().expect("run bash");
    succeeded(&format!("{} {}", script.display(), partial.display()), &output);
    fs::rename(&partial, &tar).expect("move the built fixture into place");
    tar
}

/// The echo server of `fixtures/helpers/echo_server.rs` (TCP and UDP on one
/// port; see that file), a static executable that runs in the busybox image.
/// Built on first use in this test run with the rustc of the toolchain that
/// runs the tests.
pub fn echo_server() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_helper("echo_server.rs", "echo-server")).clone()
}

/// `fixtures/helpers/syscall_probe.rs` (makes the system calls the seccomp
/// tests check; see that file), built like [`echo_server`].
pub fn syscall_probe() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_helper("syscall_probe.rs", "syscall-probe")).clone()
}

/// `fixtures/helpers/SOURCE` compiled into a static executable `NAME`,
/// rebuilt when missing or older than its source, under a file lock.
fn build_helper(source: &str, name: &str) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpers").join(source);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let bin = dir.join(name);
    let lock = File::create(dir.join(format!("{name}.lock"))).expect("create the fixture lock file");
    lock.lock().expect("lock the fixture lock file"); // released when `lock` is dropped

    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(written)) = (modified(&bin), modified(&source))
        && built >= written
    {
        return bin;
    }
    // The rustc beside the cargo that built the tests, else the one on PATH.
    let beside_cargo = Path::new(env!("CARGO")).with_file_name("rustc");
    let rustc = if beside_cargo.is_file() { beside_cargo } else { PathBuf::from("rustc") };
    let partial = dir.join(format!("{name}.{}", std::process::id()));
    let output = Command::new(&rustc)
        .args(["--edition=2024", "-O", "-C", "target-feature=+crt-static", "-o"])
        .arg(&partial)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", rustc.display()));
    succeeded(&format!("{} -C target-feature=+crt-static {}", rustc.display(), source.display()), &output);
    fs::rename(&partial, &bin).expect("move the built helper into place");
    bin
}

/// Imports the busybox fixture into the store at `berth_cli_root` (the
/// `--root` given to berth) as [`BUSYBOX`], and returns that tag.
pub fn import_busybox(berth_cli_root: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(berth_cli_root)
        .arg("import")
        .arg(busybox_tar())
        .arg(BUSYBOX)
        .output()
        .expect("run berth import");
    succeeded("berth import busybox.tar busybox:latest", &output);
    BUSYBOX.to_owned()
}

/// The path of `command`, installing the Debian package `package` with
/// apt-get first if the command is missing. Panics, saying why, when it
/// cannot be installed.
pub fn require_tool(command: &str, package: &str) -> PathBuf {
    static APT: Mutex<()> = Mutex::new(());
    let _one_at_a_time = APT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = find_in_path(command) {
        return path;
    }
    if berth::sys::euid() != 0 {
        panic!("{command} is not installed and only root can install it; run: apt-get install -y {package}");
    }
    let install = || {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("run apt-get install")
    };
    let mut output = install();
    if !output.status.success() {
        let update = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update", "-q"])
            .output()
            .expect("run apt-get update");
        succeeded("apt-get update", &update);
        output = install();
    }
    succeeded(&format!("apt-get install -y {package} (for {command})"), &output);
    find_in_path(command).unwrap_or_else(|| panic!("{package} is installed but {command} is still not on PATH"))
}

fn find_in_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(command)).find(|p| p.is_file())
}

/// Fails the test, with both outputs, unless the command `what` succeeded;
/// returns its standard output.
#[track_caller]
pub fn succeeded(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
