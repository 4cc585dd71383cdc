//! Running berth as an ordinary user, for the rootless tests.
//!
//! - [`user`]: the unprivileged user [`USER`] with the subordinate range
//!   [`SUB_START`]`..`[`SUB_START`]`+`[`SUB_COUNT`] in `/etc/subuid` and
//!   `/etc/subgid`, made by the first test that needs it (`useradd --system`,
//!   which gives no range of its own, then `usermod --add-subuids
//!   --add-subgids`), under a file lock so that test binaries running at
//!   once never make it twice. The user stays on the machine after the run
//!   (removing it while another test binary uses it would break that one);
//!   a later run finds and reuses it. `uidmap` (newuidmap, newgidmap) and
//!   `util-linux` (setpriv) are installed with [`require_tool`] when missing.
//! - [`Rootless::without_range`]: the user [`NO_RANGE_USER`], with no line in
//!   `/etc/subuid` or `/etc/subgid`, made for the one test that needs it and
//!   removed (`userdel`) when that test ends, under a file lock held all
//!   along.
//! - [`Rootless`]: a fresh directory owned by that user (its `HOME`, its
//!   `XDG_RUNTIME_DIR` and the store), and `berth --root STORE …` run as the
//!   user with `setpriv --reuid --regid --init-groups` and a clean
//!   environment. When the test ends (also when it failed) every container
//!   is removed, the store's user-namespace holder process is killed by its
//!   pid, and the directory is removed as root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::image::{busybox_tar, require_tool};
use super::{PATIENCE, Run, poll, repo};

/// The test user's name.
pub const USER: &str = "berthtest";
/// The test user without a subordinate range.
pub const NO_RANGE_USER: &str = "berthnosub";
/// The first host id of the test user's subordinate range.
pub const SUB_START: u32 = 200_000;
/// The size of the test user's subordinate range (container ids 1..=65536).
pub const SUB_COUNT: u32 = 65_536;

/// The test user's ids.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// The host uid that container uid `id` maps to.
    pub fn host_uid(&self, id: u32) -> u32 {
        if id == 0 { self.uid } else { SUB_START + id - 1 }
    }

    /// The host gid that container gid `id` maps to.
    pub fn host_gid(&self, id: u32) -> u32 {
        if id == 0 { self.gid } else { SUB_START + id - 1 }
    }
}

/// The test user, made on first use (see the module page).
pub fn user() -> User {
    static USER_IDS: OnceLock<User> = OnceLock::new();
    *USER_IDS.get_or_init(make_user)
}

fn make_user() -> User {
    require_tool("newuidmap", "uidmap");
    require_tool("setpriv", "util-linux");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&dir).expect("create the fixtures directory");
    let lock = std::fs::File::create(dir.join("rootless-user.lock")).expect("create the user lock file");
    lock.lock().expect("lock the user lock file"); // released when `lock` is dropped
    if lookup(USER).is_none() {
        run_ok(Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/bin/sh", USER]));
    }
    let range = format!("{SUB_START}-{}", SUB_START + SUB_COUNT - 1);
    let has = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{USER}:{SUB_START}:")))
    };
    if !has("/etc/subuid") || !has("/etc/subgid") {
        run_ok(Command::new("usermod").args(["--add-subuids", &range, "--add-subgids", &range, USER]));
    }
    lookup(USER).expect("the test user exists after useradd")
}

/// [`NO_RANGE_USER`], made now with no subordinate range; removed when the
/// returned guard is dropped.
fn make_user_without_range() -> (User, RemoveUser) {
    require_tool("setpriv", "util-linux");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&dir).expect("create the fixtures directory");
    let lock = std::fs::File::create(dir.join("rootless-nosub.lock")).expect("create the user lock file");
    lock.lock().expect("lock the user lock file"); // held until the guard is dropped
    if lookup(NO_RANGE_USER).is_none() {
        run_ok(Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/bin/sh", NO_RANGE_USER]));
    }
    let guard = RemoveUser { _lock: lock };
    // A range left by someone else is taken away again.
    for (file, flag) in [("/etc/subuid", "--del-subuids"), ("/etc/subgid", "--del-subgids")] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().filter(|l| l.starts_with(&format!("{NO_RANGE_USER}:"))) {
            let f: Vec<u64> = line.split(':').skip(1).filter_map(|x| x.parse().ok()).collect();
            if let [start, count] = f[..] {
                let range = format!("{start}-{}", start + count - 1);
                run_ok(Command::new("usermod").args([flag, &range, NO_RANGE_USER]));
            }
        }
    }
    (lookup(NO_RANGE_USER).expect("the user exists after useradd"), guard)
}

/// Removes [`NO_RANGE_USER`] when dropped.
struct RemoveUser {
    _lock: std::fs::File,
}

impl Drop for RemoveUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(NO_RANGE_USER).output();
    }
}

fn lookup(name: &str) -> Option<User> {
    let out = Command::new("id").args(["-u", name]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", name]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(User { uid, gid })
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A fresh home, runtime directory and store owned by the test user; berth
/// run as that user against them.
pub struct Rootless {
    dir: tempfile::TempDir,
    pub user: User,
    name: &'static str,
    /// Declared last: the user goes after its containers and holder.
    _remove_user: Option<RemoveUser>,
}

impl Rootless {
    pub fn new() -> Rootless {
        Rootless::for_user(user(), USER, None)
    }

    /// As [`NO_RANGE_USER`], who has no subordinate range (removed again
    /// when the test ends).
    pub fn without_range() -> Rootless {
        let (user, guard) = make_user_without_range();
        Rootless::for_user(user, NO_RANGE_USER, Some(guard))
    }

    fn for_user(user: User, name: &'static str, remove: Option<RemoveUser>) -> Rootless {
        let dir = tempfile::Builder::new().prefix("berth-rootless-").tempdir().expect("temp dir");
        for sub in ["", "home", "run"] {
            let path = dir.path().join(sub);
            std::fs::create_dir_all(&path).unwrap();
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).expect("chown to the test user");
        }
        std::fs::set_permissions(dir.path().join("run"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Rootless { dir, user, name, _remove_user: remove }
    }

    /// A fresh store holding the busybox test image as `busybox:latest`,
    /// imported as the test user.
    pub fn with_busybox() -> Rootless {
        let r = Rootless::new();
        r.run(&["import", busybox_tar().to_str().unwrap(), "busybox:latest"]).ok();
        r
    }

    /// A project directory in the user's home, owned by the user, holding
    /// `berth.toml` (`manifest`) and the busybox rootfs tar as `busybox.tar`.
    pub fn project(&self, name: &str, manifest: &str) -> PathBuf {
        let dir = self.home().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(busybox_tar(), dir.join("busybox.tar")).unwrap();
        std::fs::write(dir.join("berth.toml"), manifest).unwrap();
        for entry in [dir.clone(), dir.join("busybox.tar"), dir.join("berth.toml")] {
            std::os::unix::fs::chown(&entry, Some(self.user.uid), Some(self.user.gid)).unwrap();
        }
        dir
    }

    /// The user's home directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The store root passed to berth.
    pub fn store_root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `berth --root STORE ARGS…` run as the test user in `cwd`.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let output = self.command(cwd, args).output().expect("run berth as the test user");
        Run::from(output)
    }

    /// `berth ARGS…` run as the test user in the repository's root.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(&repo(), args)
    }

    /// The command [`Rootless::run_in`] runs, for tests that need to feed
    /// it input or read it as a stream.
    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", self.name, "--regid", self.name, "--init-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.store_root())
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.home())
            .env("USER", self.name)
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("NO_COLOR", "1");
        cmd
    }

    /// The shell command line that runs `berth --root STORE ARGS…` as the
    /// test user (for `support::stream::Terminal`); arguments are quoted.
    pub fn shell_line(&self, args: &[&str]) -> String {
        let cmd = self.command(&repo(), args);
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut line: Vec<String> = vec!["env".into(), "-i".into()];
        for (k, v) in cmd.get_envs() {
            let (k, v) = (k.to_string_lossy(), v.map(|v| v.to_string_lossy().into_owned()).unwrap_or_default());
            line.push(quote(&format!("{k}={v}")));
        }
        line.push(quote(&cmd.get_program().to_string_lossy()));
        line.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
        line.join(" ")
    }

    /// `berth run -d ARGS…` as the test user; returns the container id.
    #[track_caller]
    pub fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        self.run(&all).ok().trim().to_owned()
    }

    /// Waits until the log of `container` contains `needle`; returns the log.
    #[track_caller]
    pub fn wait_for_log(&self, container: &str, needle: &str) -> String {
        poll(&format!("{needle:?} in the log of {container}"), || {
            let logs = self.run(&["logs", container]);
            let text = format!("{}{}", logs.stdout, logs.stderr);
            text.contains(needle).then_some(text)
        })
    }

    /// The pid of the store's user-namespace holder, if one was recorded.
    pub fn holder_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.store_root().join("userns/pid")).ok()?.trim().parse().ok()
    }
}

/// The uid and gid owning `path` on the host.
pub fn owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.uid(), meta.gid())
}

impl Drop for Rootless {
    fn drop(&mut self) {
        if self.store_root().join("containers").exists() {
            let ids = self.run(&["ps", "-aq"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.run(&["rm", "-f", id]);
            }
        }
        // The holder was started (indirectly) by this test: end it by pid,
        // after checking the pid is still the holder's.
        if let Some(pid) = self.holder_pid() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "berth-userns" {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                let until = std::time::Instant::now() + PATIENCE;
                while Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}
