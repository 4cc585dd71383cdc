//! Unit tests against fake hierarchies in temporary directories.
//!
//! A temporary directory is not a cgroupfs: the kernel does not fill new
//! directories with control files, and a written file keeps only the latest
//! value. So these tests pre-create the control files where the kernel would
//! have them and check final values; what only the kernel can show (the
//! whole device list, limits being enforced) is in `tests_kernel`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn path(p: &str) -> CgroupPath {
    CgroupPath::new(p).unwrap()
}

/// A v1 hierarchy with each of `names` mounted at `<tmp>/<name>`, or
/// co-mounted where a name holds a comma (`cpu,cpuacct`).
fn fake_v1(tmp: &Path, names: &[&str]) -> Hierarchy {
    let mut controllers = BTreeMap::new();
    for name in names {
        let mount = tmp.join(name);
        fs::create_dir_all(&mount).unwrap();
        for controller in name.split(',') {
            controllers.insert(controller.to_owned(), mount.clone());
        }
    }
    Hierarchy::V1 { controllers }
}

/// Creates `files` (name, content) in `dir`, making the directory first.
fn files(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(path).unwrap()
}

fn limits() -> Resources {
    Resources {
        memory: Some(64 << 20),
        cpu: Some(CpuMax::new(20_000, 100_000).unwrap()),
        pids: Some(20),
        ..Resources::default()
    }
}

fn v1_dirs(h: &Hierarchy, p: &CgroupPath) -> Vec<v1::Dir> {
    let Hierarchy::V1 { controllers } = h else { panic!("v1 expected") };
    v1::existing(controllers, p)
}

#[test]
fn v1_writes_each_limit_into_its_controller() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory", "cpu", "pids", "devices"]);
    let p = path("berth/c1");
    let t = tmp.path();
    files(&t.join("memory/berth/c1"), &[("memory.limit_in_bytes", ""), ("memory.memsw.limit_in_bytes", "")]);
    files(&t.join("cpu/berth/c1"), &[("cpu.cfs_period_us", ""), ("cpu.cfs_quota_us", "")]);
    files(&t.join("pids/berth/c1"), &[("pids.max", "")]);
    files(&t.join("devices/berth/c1"), &[("devices.deny", ""), ("devices.allow", "")]);

    v1::apply(&p, &v1_dirs(&h, &p), &limits()).unwrap();

    assert_eq!(read(t.join("memory/berth/c1/memory.limit_in_bytes")), "67108864");
    assert_eq!(read(t.join("memory/berth/c1/memory.memsw.limit_in_bytes")), "67108864");
    assert_eq!(read(t.join("cpu/berth/c1/cpu.cfs_period_us")), "100000");
    assert_eq!(read(t.join("cpu/berth/c1/cpu.cfs_quota_us")), "20000");
    assert_eq!(read(t.join("pids/berth/c1/pids.max")), "20");
    assert_eq!(read(t.join("devices/berth/c1/devices.deny")), "a");
    // Only the last rule survives in a plain file; the kernel test reads
    // the whole list back from devices.list.
    assert_eq!(read(t.join("devices/berth/c1/devices.allow")), "c 136:* rwm");
}

#[test]
fn v1_without_swap_accounting_writes_no_memsw() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory"]);
    let p = path("berth/c1");
    let leaf = tmp.path().join("memory/berth/c1");
    files(&leaf, &[("memory.limit_in_bytes", "")]);
    let only_memory = Resources { memory: Some(64 << 20), ..Resources::default() };
    v1::apply(&p, &v1_dirs(&h, &p), &only_memory).unwrap();
    assert_eq!(read(leaf.join("memory.limit_in_bytes")), "67108864");
    assert!(!leaf.join("memory.memsw.limit_in_bytes").exists());
}

#[test]
fn v1_co_mounted_controllers_share_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["cpu,cpuacct", "memory", "name=systemd"]);
    let p = path("berth/c1");
    fs::create_dir_all(tmp.path().join("cpu,cpuacct/berth/c1")).unwrap();
    fs::create_dir_all(tmp.path().join("memory/berth/c1")).unwrap();
    let cgroup = Cgroup::open(&h, &p).unwrap();
    let mut dirs = cgroup.paths();
    dirs.sort();
    assert_eq!(dirs, [tmp.path().join("cpu,cpuacct/berth/c1"), tmp.path().join("memory/berth/c1")]);
    assert!(!cgroup.devices_enforced());
}

#[test]
fn v1_missing_controller_for_a_limit_is_refused_before_any_mkdir() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory", "cpu"]);
    let err = Cgroup::create(&h, &path("berth/c1"), &limits()).unwrap_err();
    assert!(matches!(err, CgroupError::ControllerMissing { controller: "pids", .. }), "{err}");
    assert!(!tmp.path().join("memory/berth").exists());
}

#[test]
fn failed_create_removes_what_it_made() {
    // Plain directories have no control files, so the first write fails,
    // as it would on a cgroupfs where the controller was unusable.
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory", "cpu", "pids", "devices", "freezer"]);
    let err = Cgroup::create(&h, &path("berth/c1"), &limits()).unwrap_err();
    assert!(matches!(&err, CgroupError::Write { path, .. } if path.ends_with("devices.deny")), "{err}");
    for controller in ["memory", "cpu", "pids", "devices", "freezer"] {
        let mount = tmp.path().join(controller);
        assert!(mount.is_dir());
        assert!(!mount.join("berth").exists(), "{controller}/berth left behind");
    }
}

#[test]
fn existing_cgroup_is_not_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory"]);
    let leaf = tmp.path().join("memory/berth/c1");
    fs::create_dir_all(&leaf).unwrap();
    let err = Cgroup::create(&h, &path("berth/c1"), &Resources::default()).unwrap_err();
    assert!(matches!(&err, CgroupError::AlreadyExists { path } if *path == leaf), "{err}");
    assert!(leaf.is_dir(), "the existing cgroup must be left alone");
}

#[test]
fn v2_writes_limits_in_one_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = tmp.path().join("berth/c1");
    let names = ["memory.max", "memory.swap.max", "cpu.max", "pids.max", "cpuset.cpus"];
    files(&leaf, &names.map(|n| (n, "")));
    let r = Resources { cpuset_cpus: Some(CpuList::new("0-1").unwrap()), ..limits() };
    v2::apply(&leaf, &r).unwrap();
    assert_eq!(read(leaf.join("memory.max")), "67108864");
    assert_eq!(read(leaf.join("memory.swap.max")), "0");
    assert_eq!(read(leaf.join("cpu.max")), "20000 100000");
    assert_eq!(read(leaf.join("pids.max")), "20");
    assert_eq!(read(leaf.join("cpuset.cpus")), "0-1");
}

#[test]
fn v2_delegates_only_controllers_not_yet_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let control = tmp.path().join("cgroup.subtree_control");
    fs::write(&control, "cpu memory pids\n").unwrap();
    v2::delegate(tmp.path(), &["memory", "cpu", "pids"]).unwrap();
    assert_eq!(read(control.clone()), "cpu memory pids\n", "nothing to write");
    fs::write(&control, "cpu memory\n").unwrap();
    v2::delegate(tmp.path(), &["memory", "cpu", "pids"]).unwrap();
    assert_eq!(read(control), "+pids");
}

#[test]
fn v2_limit_without_its_controller_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cgroup.controllers"), "cpu io\n").unwrap();
    let h = Hierarchy::V2 { root: tmp.path().to_path_buf() };
    let err = Cgroup::create(&h, &path("berth/c1"), &limits()).unwrap_err();
    assert!(matches!(err, CgroupError::ControllerMissing { controller: "memory", .. }), "{err}");
    assert!(!tmp.path().join("berth").exists());
}

#[test]
fn oom_kill_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let h1 = fake_v1(tmp.path(), &["memory"]);
    let p = path("c1");
    let memory = tmp.path().join("memory/c1");
    files(&memory, &[("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")]);
    assert_eq!(Cgroup::open(&h1, &p).unwrap().oom_kills().unwrap(), 2);
    // Before Linux 4.13 there is no counter, and memory.failcnt is no
    // substitute: it counts failed charges, not kills, and Linux 6.18 left
    // it at 0 through a real OOM kill. So the absence is an error.
    files(&memory, &[("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")]);
    let err = Cgroup::open(&h1, &p).unwrap().oom_kills().unwrap_err();
    assert!(matches!(err, CgroupError::Parse { .. }), "{err}");

    let root = tmp.path().join("unified");
    let events = "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n";
    files(&root.join("c1"), &[("memory.events", events)]);
    let h2 = Hierarchy::V2 { root };
    assert_eq!(Cgroup::open(&h2, &p).unwrap().oom_kills().unwrap(), 1);
}

#[test]
fn stats_read_what_is_there() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory", "pids", "cpuacct"]);
    let t = tmp.path();
    files(
        &t.join("memory/c1"),
        &[
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.stat", "cache 2048\ninactive_file 100\ntotal_inactive_file 1024\n"),
        ],
    );
    files(&t.join("pids/c1"), &[("pids.current", "2\n"), ("pids.max", "20\n")]);
    files(&t.join("cpuacct/c1"), &[("cpuacct.usage", "5000000\n")]);
    let stats = Cgroup::open(&h, &path("c1")).unwrap().stats().unwrap();
    let want = Stats {
        memory_usage: Some(4096),
        memory_inactive_file: Some(1024),
        memory_limit: None,
        pids_current: Some(2),
        pids_limit: Some(20),
        cpu_usage_us: Some(5_000),
        ..Stats::default()
    };
    assert_eq!(stats, want);

    let root = t.join("unified");
    let events = "max 4\noom_kill 1\n";
    let cpu = "usage_usec 777\nnr_periods 10\nnr_throttled 4\n";
    let v2_files = [
        ("memory.current", "8192\n"),
        ("memory.max", "max\n"),
        ("memory.events", events),
        ("memory.stat", "anon 4096\ninactive_file 512\n"),
        ("cpu.stat", cpu),
    ];
    files(&root.join("c1"), &v2_files);
    let stats = Cgroup::open(&Hierarchy::V2 { root }, &path("c1")).unwrap().stats().unwrap();
    let want = Stats {
        memory_usage: Some(8192),
        memory_inactive_file: Some(512),
        oom_kills: Some(1),
        cpu_usage_us: Some(777),
        cpu_throttled_periods: Some(4),
        ..Stats::default()
    };
    assert_eq!(stats, want);
}

#[test]
fn procs_are_the_union_over_hierarchies_and_child_cgroups() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory", "pids"]);
    files(&tmp.path().join("memory/c1"), &[("cgroup.procs", "30\n10\n")]);
    files(&tmp.path().join("memory/c1/sub"), &[("cgroup.procs", "40\n")]);
    files(&tmp.path().join("pids/c1"), &[("cgroup.procs", "10\n30\n0\n")]);
    let cgroup = Cgroup::open(&h, &path("c1")).unwrap();
    assert_eq!(cgroup.procs().unwrap(), [10, 30, 40]);
}

#[test]
fn remove_is_idempotent_and_keeps_a_shared_parent_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &["memory", "pids"]);
    for c in ["memory", "pids"] {
        fs::create_dir_all(tmp.path().join(c).join("berth/a/nested")).unwrap();
        fs::create_dir_all(tmp.path().join(c).join("berth/b")).unwrap();
    }
    let a = Cgroup::open(&h, &path("berth/a")).unwrap();
    let b = Cgroup::open(&h, &path("berth/b")).unwrap();
    a.remove().unwrap();
    a.remove().unwrap();
    for c in ["memory", "pids"] {
        assert!(!tmp.path().join(c).join("berth/a").exists());
        assert!(tmp.path().join(c).join("berth/b").is_dir(), "sibling removed");
    }
    b.destroy().unwrap();
    for c in ["memory", "pids"] {
        assert!(!tmp.path().join(c).join("berth").exists(), "empty parent left behind");
        assert!(tmp.path().join(c).is_dir(), "hierarchy root removed");
    }
    assert!(matches!(Cgroup::open(&h, &path("berth/a")), Err(CgroupError::NotFound { .. })));
}
