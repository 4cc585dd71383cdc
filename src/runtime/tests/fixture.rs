//! Helpers for the runtime's end-to-end tests: a busybox root filesystem in
//! a temp dir, a spec for it, and `run`, which launches a real container
//! and collects its output and exit code.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::runtime::process::{InitExe, Launch, ProcessError, Stdio, launch};
use crate::runtime::rootfs::Rootfs;
use crate::runtime::spec::{ResolvedUser, SpecRequest, default_spec};
use crate::sys::proc as sysproc;

/// True (after printing why) when these tests cannot run here.
pub fn skip() -> bool {
    if crate::sys::euid() != 0 {
        eprintln!("skipped: container tests need root (CI runs them as root)");
        return true;
    }
    false
}

/// The test binary as berth's init (it dispatches `__init` from a
/// constructor, see `sys::exec`). Made once per test process.
pub fn init() -> &'static InitExe {
    static INIT: OnceLock<InitExe> = OnceLock::new();
    INIT.get_or_init(|| InitExe::current().expect("copy the test binary into a sealed memfd"))
}

/// A container's directories in a temp dir: `busybox/` (the image's one
/// layer), `upper/`, `work/`, `root/`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub rootfs: Rootfs,
}

/// Debian's static busybox, installed with apt the first time it is missing
/// (or is Debian's dynamically linked `busybox`, which cannot run in an
/// empty root: installing busybox-static replaces it).
fn busybox() -> &'static Path {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let path = Path::new("/bin/busybox");
    // ldd (libc-bin, Essential) fails on a static executable.
    let is_static =
        || path.exists() && std::process::Command::new("ldd").arg(path).output().is_ok_and(|o| !o.status.success());
    INSTALLED.get_or_init(|| {
        if !is_static() {
            let apt = |args: &[&str]| {
                std::process::Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let install = ["install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", "busybox-static"];
            if !apt(&install) {
                apt(&["update", "-qq"]);
                apt(&install);
            }
        }
    });
    assert!(
        is_static(),
        "the runtime tests need a static /bin/busybox and could not install it: apt-get install -y busybox-static"
    );
    path
}

/// Writes a minimal busybox image into `dir`.
pub fn write_busybox_image(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox(), dir.join("bin/busybox")).unwrap();
    let list = std::process::Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\ntty:x:5:\nwheel:x:10:app\napp:x:1000:\n").unwrap();
}

impl Fixture {
    /// A busybox image as the only layer.
    pub fn busybox() -> Fixture {
        let fx = Fixture::empty(1);
        write_busybox_image(&fx.rootfs.lowers[0]);
        fx
    }

    /// `layers` empty lower directories (`layer-0` is the top), plus upper,
    /// work and the mount target.
    pub fn empty(layers: usize) -> Fixture {
        let dir = tempfile::Builder::new().prefix("berth-rt-").tempdir().unwrap();
        let lowers: Vec<PathBuf> = (0..layers).map(|i| dir.path().join(format!("layer-{i}"))).collect();
        for d in lowers.iter().chain([&dir.path().join("upper"), &dir.path().join("work"), &dir.path().join("root")]) {
            std::fs::create_dir_all(d).unwrap();
        }
        let rootfs = Rootfs {
            lowers,
            upper: dir.path().join("upper"),
            work: dir.path().join("work"),
            target: dir.path().join("root"),
        };
        Fixture { dir, rootfs }
    }

    /// Lines of the host's mount table that mention this fixture.
    pub fn host_mounts(&self) -> Vec<String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let needle = self.dir.path().to_string_lossy().into_owned();
        text.lines().filter(|l| l.contains(&needle)).map(str::to_string).collect()
    }
}

/// A spec for `args` with Docker's defaults, hostname `box`.
pub fn spec(args: &[&str]) -> Spec {
    spec_with(args, |_| {})
}

/// Like [`spec`], after `edit` changed the request.
pub fn spec_with(args: &[&str], edit: impl FnOnce(&mut SpecRequest)) -> Spec {
    let mut req = SpecRequest {
        args: args.iter().map(|s| s.to_string()).collect(),
        hostname: Some("box".into()),
        user: ResolvedUser { uid: 0, gid: 0, additional_gids: vec![], home: Some("/root".into()) },
        ..Default::default()
    };
    edit(&mut req);
    default_spec(&req)
}

/// What a container printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Pipes for a container's stdout and stderr; the read ends.
pub fn pipes() -> (Stdio, std::io::PipeReader, std::io::PipeReader) {
    let (out_r, out_w) = std::io::pipe().unwrap();
    let (err_r, err_w) = std::io::pipe().unwrap();
    let stdio = Stdio { stdin: None, stdout: OwnedFd::from(out_w), stderr: OwnedFd::from(err_w) };
    (stdio, out_r, err_r)
}

/// Launches a container and returns its pid and output pipes.
pub fn start(spec: &Spec, fx: &Fixture) -> Result<(Pid, std::io::PipeReader, std::io::PipeReader), ProcessError> {
    let (stdio, out, err) = pipes();
    let pid = launch(Launch { spec, rootfs: &fx.rootfs, stdio, init: init(), before_start: &|_| Ok(()) })?;
    Ok((pid, out, err))
}

/// Reads both pipes to the end and reaps `pid`.
pub fn finish(pid: Pid, mut out: std::io::PipeReader, mut err: std::io::PipeReader) -> Output {
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).unwrap();
    let code = sysproc::wait_exit(pid).unwrap().code();
    Output { code, stdout, stderr }
}

/// Runs a container to the end; checks nothing leaked into the host's
/// mount table.
pub fn run(spec: &Spec, fx: &Fixture) -> Result<Output, ProcessError> {
    let (pid, out, err) = start(spec, fx)?;
    let output = finish(pid, out, err);
    assert_eq!(fx.host_mounts(), Vec::<String>::new(), "a container mount leaked into the host");
    Ok(output)
}

/// Runs `args` in a fresh busybox container; panics if it cannot start.
pub fn sh(args: &[&str]) -> Output {
    let fx = Fixture::busybox();
    run(&spec(args), &fx).unwrap_or_else(|e| panic!("launch {args:?}: {e}"))
}

/// Kills and reaps a container whose test failed before it did, so that no
/// process outlives a test. Harmless after [`finish`]: a reaped pid is
/// never signalled.
pub struct KillOnDrop(pub Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if sysproc::is_unreaped_child(self.0) {
            let _ = sysproc::kill(self.0, nix::sys::signal::Signal::SIGKILL);
            let _ = sysproc::wait_exit(self.0);
        }
    }
}
