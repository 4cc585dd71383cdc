//! Boots the cgroup-v2 test machine once per test run and reads what the
//! guest reported.
//!
//! The machine is QEMU with TCG (`-accel tcg`: this host's KVM cannot run
//! Debian's kernel) booting Debian's kernel ([`super::kernel`]) with
//! `cgroup_no_v1=all` and the initramfs of [`super::initramfs`], whose
//! `/init` (`tests/vm/init.sh`) mounts the host's root read-only over 9p
//! and runs this very test binary in it with `BERTH_VM_GUEST=1`. The guest
//! writes libtest's output and what was left behind into a shared temporary
//! directory; [`Report`] parses it so that each host test passes or fails
//! with its own guest output.
//!
//! Installed here when missing: `qemu-system-x86` (with apt), the kernel
//! package (downloaded, not installed), and busybox-static with the busybox
//! fixture (`support::image::busybox_tar`). Nothing is skipped: a machine
//! that cannot be built or booted fails every test that needs it, saying
//! why.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::initramfs::Cpio;
use super::kernel::{Kernel, debian_kernel};
use crate::support::image::{busybox_tar, require_tool};

/// A bound against a hung guest (the tests themselves take a few minutes).
const GUEST_PATIENCE: Duration = Duration::from_secs(15 * 60);

/// Test threads in the guest, one per virtual CPU.
const GUEST_CPUS: u32 = 2;

/// Whether this process is the test binary running inside the guest.
pub fn in_guest() -> bool {
    std::env::var_os("BERTH_VM_GUEST").is_some()
}

/// One test's outcome in the guest.
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
}

/// What the guest reported.
pub struct Report {
    /// Test name → outcome, from libtest's output.
    pub outcomes: HashMap<String, Outcome>,
    /// libtest's whole output.
    pub log: String,
    /// The test binary's exit code, or the setup step that failed.
    pub status: String,
    /// `find /sys/fs/cgroup -mindepth 1 -type d` after the tests.
    pub cgroups_left: String,
    pub mounts_before: String,
    pub mounts_after: String,
    /// Processes (other than init) after the tests: "PID COMMAND".
    pub procs_left: String,
    /// The end of the kernel console, for when the guest said nothing.
    pub console_tail: String,
}

impl Report {
    /// Fails unless the guest ran `name` and it passed; shows the guest's
    /// output for it otherwise.
    #[track_caller]
    pub fn assert_passed(&self, name: &str) {
        match self.outcomes.get(name) {
            Some(Outcome::Passed) => {}
            Some(Outcome::Failed(output)) => {
                panic!("{name} failed on the cgroup-v2 kernel; its output there:\n{output}")
            }
            None => panic!("{}", self.never_ran(name)),
        }
    }

    fn never_ran(&self, name: &str) -> String {
        format!(
            "the guest never reported {name} (guest status: {})\nlibtest output in the guest:\n{}\nconsole (end):\n{}",
            self.status, self.log, self.console_tail
        )
    }
}

/// The guest's report, booting the machine on first use in this process.
pub fn report() -> &'static Report {
    static REPORT: OnceLock<Result<Report, String>> = OnceLock::new();
    let result = REPORT.get_or_init(|| {
        // A panic while booting becomes every test's failure, not a poisoned lock.
        std::panic::catch_unwind(boot).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match result {
        Ok(report) => report,
        Err(why) => panic!("the cgroup-v2 test machine did not run: {why}"),
    }
}

fn boot() -> Report {
    let qemu = require_tool("qemu-system-x86_64", "qemu-system-x86");
    // Builds the fixture the guest's tests import, and makes sure
    // /bin/busybox is the static one the initramfs needs.
    busybox_tar();
    // The guest's `support::Berth::new` finds `nft` through the shared root
    // (it cannot install anything: the guest has no network).
    require_tool("nft", "nftables");
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cache = target_tmp.join("vm");
    fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("create {}: {e}", cache.display()));
    let kernel = debian_kernel(&cache);

    let work = tempfile::tempdir().expect("a temporary directory for the machine");
    let share = work.path().join("share");
    fs::create_dir(&share).unwrap();
    let initrd = work.path().join("initrd.cpio");
    fs::write(&initrd, initramfs(&kernel)).unwrap();
    let test_bin = std::env::current_exe().expect("the test binary's path");
    let job =
        format!("TEST_BIN={}\nTARGET_TMP={}\nTHREADS={GUEST_CPUS}\n", shell_word(&test_bin), shell_word(&target_tmp));
    fs::write(share.join("job"), job).unwrap();

    let console = work.path().join("console.log");
    let qemu_log = work.path().join("qemu.log");
    let qemu_out = fs::File::create(&qemu_log).unwrap();
    let mut command = Command::new(&qemu);
    command
        .args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", &GUEST_CPUS.to_string()])
        .args(["-no-reboot", "-display", "none", "-monitor", "none", "-nodefaults"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet loglevel=4 cgroup_no_v1=all mitigations=off"])
        .arg("-virtfs")
        .arg("local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap")
        .arg("-virtfs")
        .arg(format!("local,path={},mount_tag=out,security_model=none", share.display()))
        .stdin(Stdio::null())
        .stdout(qemu_out.try_clone().unwrap())
        .stderr(qemu_out);
    let started = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", qemu.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break status;
        }
        if started.elapsed() > GUEST_PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the guest ran longer than {GUEST_PATIENCE:?}; console (end):\n{}", tail(&read(&console), 60));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "{} exited with {status}:\n{}", qemu.display(), read(&qemu_log));
    eprintln!("cgroup-v2 machine ({}): booted, ran the tests and powered off in {seconds:.1} s", kernel.package);

    let log = read(&share.join("tests.log"));
    Report {
        outcomes: outcomes(&log),
        status: read(&share.join("status")).trim().to_owned(),
        log,
        cgroups_left: read(&share.join("cgroups-left")),
        mounts_before: read(&share.join("mounts-before")),
        mounts_after: read(&share.join("mounts-after")),
        procs_left: read(&share.join("procs-left")),
        console_tail: tail(&read(&console), 60),
    }
}

/// The initramfs: init script, static busybox, modules in load order.
fn initramfs(kernel: &Kernel) -> Vec<u8> {
    let mut cpio = Cpio::new();
    for dir in ["bin", "dev", "proc", "sys", "host", "out", "modules"] {
        cpio.dir(dir);
    }
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("init", 0o755, include_bytes!("init.sh"));
    cpio.copy("bin/busybox", 0o755, Path::new("/bin/busybox"));
    let mut order = String::new();
    for (name, file) in kernel.modules() {
        cpio.copy(&format!("modules/{name}.ko"), 0o644, &file);
        order.push_str(&name);
        order.push('\n');
    }
    cpio.file("modules/order", 0o644, order.as_bytes());
    cpio.finish()
}

/// libtest's "test NAME ... ok|FAILED" lines, with each failure's captured
/// output ("---- NAME stdout ----" sections).
fn outcomes(log: &str) -> HashMap<String, Outcome> {
    let mut outcomes = HashMap::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("test ") else { continue };
        if let Some(name) = rest.strip_suffix(" ... ok") {
            outcomes.insert(name.to_owned(), Outcome::Passed);
        } else if let Some(name) = rest.strip_suffix(" ... FAILED") {
            let header = format!("---- {name} stdout ----");
            let output = log
                .split_once(&header)
                .map(|(_, after)| {
                    let end = after.find("\n---- ").or_else(|| after.find("\nfailures:")).unwrap_or(after.len());
                    after[..end].trim().to_owned()
                })
                .unwrap_or_else(|| log.to_owned());
            outcomes.insert(name.to_owned(), Outcome::Failed(output));
        }
    }
    outcomes
}

fn read(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `path` as one word for the guest's shell (paths here have no quotes).
fn shell_word(path: &Path) -> String {
    let s = path.to_str().expect("a UTF-8 path");
    assert!(!s.contains('\''), "a path with a quote: {s}");
    format!("'{s}'")
}
