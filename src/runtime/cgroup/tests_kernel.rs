//! Tests against the real kernel: limits enforced, freezing, killing and
//! removal, on whichever hierarchy this host has (v1 on the development
//! machines).
//!
//! They need root and skip themselves otherwise. Each test works in its own
//! `berth-test-<random>/<name>` cgroup, and a [`Fixture`] kills its
//! processes and removes its cgroups when dropped, also when an assertion
//! fails. Nothing outside those cgroups is touched: the test process itself
//! never joins one; its children join while they wait on a pipe.

use std::collections::BTreeSet;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// One test's cgroup and the processes it started.
struct Fixture {
    cgroup: Cgroup,
    children: Vec<Child>,
}

impl Fixture {
    /// Creates `berth-test-<random>/<name>` with `resources`, or `None` (the
    /// test is skipped) when not running as root.
    fn new(name: &str, resources: &Resources) -> Option<Fixture> {
        if sys::euid() != 0 {
            eprintln!("skipped: cgroup tests against the kernel need root");
            return None;
        }
        Fixture::new_in(&detect().unwrap(), name, resources)
    }

    /// Like [`Fixture::new`], in a given hierarchy.
    fn new_in(hierarchy: &Hierarchy, name: &str, resources: &Resources) -> Option<Fixture> {
        if sys::euid() != 0 {
            eprintln!("skipped: cgroup tests against the kernel need root");
            return None;
        }
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let path = CgroupPath::new(&format!("berth-test-{random:016x}/{name}")).unwrap();
        let cgroup = Cgroup::create(hierarchy, &path, resources).unwrap();
        Some(Fixture { cgroup, children: Vec::new() })
    }

    /// Starts `sh -c script` inside the cgroup: the shell waits on its stdin
    /// until it has been moved in, so nothing of the script runs outside.
    /// Returns the child's index.
    fn spawn(&mut self, script: &str) -> usize {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ || exit 99\n{script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.children.push(child);
        let index = self.children.len() - 1;
        let child = &mut self.children[index];
        self.cgroup.add_process(pid_of(child)).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        index
    }

    /// Waits for child `index` (at most 60 s, then fails) and returns its
    /// status, stdout and stderr.
    fn wait(&mut self, index: usize) -> (ExitStatus, String, String) {
        let child = &mut self.children[index];
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "child {index} still running after 60 s");
            thread::sleep(Duration::from_millis(20));
        };
        let (mut out, mut err) = (String::new(), String::new());
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (status, out, err)
    }

    /// The cgroup directory of `controller` (v1) or the only one (v2).
    fn dir(&self, controller: &str) -> PathBuf {
        match &self.cgroup.layout {
            Layout::V1(dirs) => {
                let dir = dirs.iter().find(|d| d.has(controller)).unwrap();
                self.cgroup.path.under(&dir.mount)
            }
            Layout::V2 { root } => self.cgroup.path.under(root),
            Layout::None { .. } => panic!("the kernel tests run as root, with a cgroup"),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Errors cannot be returned from here; a failed cleanup shows up as
        // a leftover berth-test-* directory.
        let _ = self.cgroup.destroy();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap()
}

#[test]
fn memory_hog_is_oom_killed() {
    let limit = Resources { memory: Some(64 << 20), ..Resources::default() };
    let Some(mut f) = Fixture::new("oom", &limit) else { return };
    assert_eq!(f.cgroup.stats().unwrap().memory_limit, Some(64 << 20));
    assert_eq!(f.cgroup.oom_kills().unwrap(), 0);
    // dd's 200 MiB buffer is filled from /dev/zero, so every page is touched.
    let hog = f.spawn("exec dd if=/dev/zero of=/dev/null bs=200M count=1");
    let (status, _, err) = f.wait(hog);
    assert_eq!(status.signal(), Some(9), "dd was not SIGKILLed: {status:?}, stderr {err:?}");
    assert!(f.cgroup.oom_kills().unwrap() >= 1);
    assert_eq!(f.cgroup.stats().unwrap().oom_kills, Some(f.cgroup.oom_kills().unwrap()));
}

#[test]
fn fork_bomb_stops_at_the_pids_limit_and_is_killed() {
    let limit = Resources { pids: Some(20), ..Resources::default() };
    let Some(mut f) = Fixture::new("forkbomb", &limit) else { return };
    let bomb = f.spawn("i=0; while [ $i -lt 100 ]; do sleep 600 >/dev/null 2>&1 & i=$((i+1)); done; echo all forked");
    let (status, out, err) = f.wait(bomb);
    assert!(!out.contains("all forked"), "100 forks succeeded under pids.max=20");
    assert!(!status.success(), "the shell should fail to fork: {status:?} {err:?}");
    let sleepers = f.cgroup.procs().unwrap();
    assert!(!sleepers.is_empty() && sleepers.len() <= 20, "{} processes", sleepers.len());
    assert!(f.cgroup.stats().unwrap().pids_current.unwrap() <= 20);
    let events = fs::read_to_string(f.dir("pids").join("pids.events")).unwrap();
    let refused = fsio::keyed(Path::new("pids.events"), &events, "max").unwrap().unwrap();
    assert!(refused >= 1, "pids.events: {events}");

    f.cgroup.kill_all().unwrap();
    assert_eq!(f.cgroup.procs().unwrap(), Vec::<i32>::new());
    // Dead is not reaped: the killed sleepers count in pids.current until
    // their new parent (init, or a subreaper) has waited for them.
    let reaped = fsio::poll_until(Duration::from_secs(10), || Ok(f.cgroup.stats()?.pids_current == Some(0)));
    assert!(reaped.unwrap(), "{:?}", f.cgroup.stats());
}

#[test]
fn cpu_quota_throttles_a_busy_loop() {
    let limit = Resources { cpu: Some(CpuMax::from_cpus(0.2).unwrap()), ..Resources::default() };
    let Some(mut f) = Fixture::new("cpu", &limit) else { return };
    // Well over one period's 20 ms of CPU time, however fast the machine.
    let busy = f.spawn("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done");
    let (status, _, err) = f.wait(busy);
    assert!(status.success(), "{status:?} {err}");
    let stats = f.cgroup.stats().unwrap();
    assert!(stats.cpu_throttled_periods.unwrap() > 0, "{stats:?}");
    assert!(stats.cpu_usage_us.unwrap() > 0, "{stats:?}");
}

#[test]
fn freeze_stops_progress_and_thaw_resumes_it() {
    let Some(mut f) = Fixture::new("freeze", &Resources::default()) else { return };
    freeze_thaw_kill(&mut f);
}

/// The unified mount of this host, if any (on a hybrid host it has none of
/// the limit controllers, but freezing, killing and removal are core v2
/// files and can be tested there).
fn cgroup2_mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = text.lines().find(|l| l.contains(" - cgroup2 "))?;
    line.split(' ').nth(4).map(PathBuf::from)
}

#[test]
fn v2_core_files_work_even_without_controllers() {
    let Some(root) = cgroup2_mount() else { return };
    let v2 = Hierarchy::V2 { root: root.clone() };
    let Some(mut f) = Fixture::new_in(&v2, "v2core", &Resources::default()) else { return };
    assert!(!f.cgroup.devices_enforced());
    freeze_thaw_kill(&mut f);
    let dir = f.cgroup.paths()[0].clone();
    f.cgroup.remove().unwrap();
    assert!(!dir.exists() && !dir.parent().unwrap().exists());
    assert!(root.is_dir());

    let offered = fs::read_to_string(root.join("cgroup.controllers")).unwrap();
    if !offered.split_whitespace().any(|c| c == "pids") {
        let path = CgroupPath::new("berth-test-never/made").unwrap();
        let limit = Resources { pids: Some(5), ..Resources::default() };
        let err = Cgroup::create(&v2, &path, &limit).unwrap_err();
        assert!(matches!(err, CgroupError::ControllerMissing { controller: "pids", .. }), "{err}");
        assert!(!root.join("berth-test-never").exists());
    }
}

/// A counting process stops while frozen, continues when thawed, and a
/// frozen cgroup can be killed entirely.
fn freeze_thaw_kill(f: &mut Fixture) {
    let tmp = tempfile::tempdir().unwrap();
    let counter = tmp.path().join("counter");
    fs::write(&counter, "").unwrap();
    let script = format!("i=0; while :; do i=$((i+1)); echo $i > '{}'; sleep 0.01; done", counter.display());
    f.spawn(&script);
    let read = || fs::read_to_string(&counter).unwrap();
    let moving = fsio::poll_until(Duration::from_secs(10), || Ok(read().trim().parse::<u32>().is_ok_and(|n| n > 3)));
    assert!(moving.unwrap(), "the counter never started");

    f.cgroup.freeze().unwrap();
    assert!(f.cgroup.is_frozen().unwrap());
    let before = read();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), before, "a frozen process made progress");

    f.cgroup.thaw().unwrap();
    assert!(!f.cgroup.is_frozen().unwrap());
    let resumed = fsio::poll_until(Duration::from_secs(10), || Ok(read() != before));
    assert!(resumed.unwrap(), "no progress after thawing");

    f.cgroup.freeze().unwrap();
    f.cgroup.kill_all().unwrap();
    assert!(f.cgroup.procs().unwrap().is_empty());
}

#[test]
fn destroy_leaves_nothing_behind() {
    let limit = Resources { memory: Some(64 << 20), pids: Some(50), ..Resources::default() };
    let Some(mut f) = Fixture::new("remove", &limit) else { return };
    f.spawn("sleep 600 & sleep 600 & wait");
    let dirs = f.cgroup.paths();
    let parents: Vec<PathBuf> = dirs.iter().map(|d| d.parent().unwrap().to_path_buf()).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    let err = f.cgroup.remove().unwrap_err();
    assert!(matches!(err, CgroupError::Busy { .. }), "{err}");

    f.cgroup.destroy().unwrap();
    for dir in dirs.iter().chain(&parents) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    f.cgroup.remove().unwrap();
    f.cgroup.destroy().unwrap();
}

#[test]
fn processes_join_every_hierarchy() {
    let Some(mut f) = Fixture::new("join", &Resources::default()) else { return };
    let shown = f.spawn("cat /proc/self/cgroup");
    let (_, out, _) = f.wait(shown);
    let suffix = format!("/{}", f.cgroup.path());
    let joined = out.lines().filter(|l| l.ends_with(&suffix)).count();
    assert_eq!(joined, f.cgroup.paths().len(), "{out}");

    // A Joiner opened beforehand moves a process by id, and the kernel
    // takes 0 as "the writer itself" (what a child does before exec).
    let joiner = f.cgroup.joiner().unwrap();
    let mut waiting = Command::new("sh")
        .args(["-c", "read _; cat /proc/self/cgroup"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let joined = joiner.join(pid_of(&waiting));
    f.children.push(waiting);
    joined.unwrap();
    let index = f.children.len() - 1;
    waiting = f.children.remove(index);
    drop(waiting.stdin.take());
    let out = waiting.wait_with_output().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.lines().filter(|l| l.ends_with(&suffix)).count(), f.cgroup.paths().len(), "{out}");

    let procs = f.cgroup.paths()[0].join("cgroup.procs");
    let script = format!("echo 0 > '{}' && cat /proc/self/cgroup", procs.display());
    let own = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(String::from_utf8(own.stdout).unwrap().lines().any(|l| l.ends_with(&suffix)));
}

#[test]
fn v1_devices_allow_only_the_default_list() {
    let Some(mut f) = Fixture::new("devices", &Resources::default()) else { return };
    if !f.cgroup.devices_enforced() {
        assert!(matches!(f.cgroup.layout, Layout::V2 { .. }));
        return;
    }
    let list = fs::read_to_string(f.dir("devices").join("devices.list")).unwrap();
    let got: BTreeSet<&str> = list.lines().collect();
    let want: BTreeSet<&str> = v1::DEFAULT_DEVICES.into_iter().collect();
    assert_eq!(got, want);

    let allowed = f.spawn("exec 3</dev/null && exec 4</dev/urandom");
    assert!(f.wait(allowed).0.success());
    let denied = f.spawn("exec 3</dev/kmsg");
    let (status, _, err) = f.wait(denied);
    assert!(!status.success(), "/dev/kmsg could be opened");
    assert!(err.contains("ermission denied") || err.contains("not permitted"), "{err}");
}

#[test]
fn cpuset_is_inherited_and_narrowed() {
    let one_cpu = Resources { cpuset_cpus: Some(CpuList::new("0").unwrap()), ..Resources::default() };
    let Some(mut f) = Fixture::new("cpuset", &one_cpu) else { return };
    let dir = f.dir("cpuset");
    assert_eq!(fs::read_to_string(dir.join("cpuset.cpus")).unwrap().trim(), "0");
    assert!(!fs::read_to_string(dir.join("cpuset.mems")).unwrap().trim().is_empty());
    let shown = f.spawn("grep Cpus_allowed_list /proc/self/status");
    let (_, out, _) = f.wait(shown);
    assert_eq!(out.split_whitespace().last(), Some("0"), "{out}");
}

#[test]
fn open_finds_a_created_cgroup() {
    let limit = Resources { pids: Some(7), ..Resources::default() };
    let Some(f) = Fixture::new("open", &limit) else { return };
    let opened = Cgroup::open(&detect().unwrap(), f.cgroup.path()).unwrap();
    assert_eq!(opened, f.cgroup);
    assert_eq!(opened.stats().unwrap().pids_limit, Some(7));
    let again = Cgroup::create(&detect().unwrap(), f.cgroup.path(), &limit).unwrap_err();
    assert!(matches!(again, CgroupError::AlreadyExists { .. }), "{again}");
}
