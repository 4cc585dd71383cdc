//! berth's cgroup-dependent end-to-end checks on a real cgroup-v2-only
//! kernel: Debian's `linux-image-amd64` under QEMU (TCG), booted once per
//! run with `cgroup_no_v1=all` and no systemd, the host's root shared
//! read-only so that the guest runs this very binary and the just-built
//! `berth` (see `vm/machine.rs` for how, `vm/init.sh` for the guest side).
//!
//! Each test below runs its check (`support::cgroups`, the same ones
//! `tests/limits.rs` runs on this host's v1) inside the guest, and on the
//! host passes or fails with the guest's outcome and output for it. The
//! guest also proves it is on pure v2, and the host checks that nothing the
//! checks made — cgroup, mount, process — outlived them.

mod support;
mod vm {
    pub mod initramfs;
    pub mod kernel;
    pub mod machine;
}

use support::cgroups;
use vm::machine::{in_guest, report};

/// Each `name => check;` becomes a test that runs `check` in the guest and
/// reports its outcome on the host.
macro_rules! in_the_v2_machine {
    ($($name:ident => $check:expr;)*) => {$(
        #[test]
        fn $name() {
            if in_guest() {
                $check();
            } else {
                report().assert_passed(stringify!($name));
            }
        }
    )*};
}

in_the_v2_machine! {
    the_machine_is_cgroup_v2_only => guest_is_cgroup_v2_only;
    v2_memory_hog_is_oom_killed_and_reported => cgroups::memory_hog_is_oom_killed;
    v2_fork_bomb_is_stopped_by_the_pids_limit => cgroups::fork_bomb_is_stopped_by_the_pids_limit;
    v2_limits_land_in_the_cgroup => cgroups::limits_land_in_the_cgroup;
    v2_cpu_quota_throttles_a_busy_loop => cgroups::cpu_quota_throttles_a_busy_loop;
    v2_exec_at_the_pids_limit_says_so => cgroups::exec_at_the_pids_limit_says_so;
    v2_commit_freezes_and_thaws_a_running_container => cgroups::commit_of_a_running_container_freezes_and_thaws_it;
    v2_up_applies_limits_and_down_removes_the_cgroup => cgroups::up_applies_the_manifest_limits_and_down_removes_the_cgroup;
    v2_removing_containers_leaves_no_cgroup => cgroups::removing_containers_leaves_no_cgroup;
    v2_stats_show_usage_and_limits => cgroups::stats_show_usage_and_limits;
}

/// In the guest: `/sys/fs/cgroup` is the unified hierarchy offering the
/// controllers berth uses, and no v1 hierarchy is mounted.
fn guest_is_cgroup_v2_only() {
    assert!(cgroups::unified(), "/sys/fs/cgroup is not a cgroup2 mount");
    let controllers = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap();
    for c in ["memory", "cpu", "pids"] {
        assert!(controllers.split_whitespace().any(|x| x == c), "{c} missing from {controllers}");
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.lines().any(|l| l.split_whitespace().nth(2) == Some("cgroup")), "a v1 hierarchy:\n{mounts}");
    assert_eq!(std::fs::read_to_string("/proc/self/cgroup").unwrap(), "0::/\n");
}

/// On the host, after the guest's run: no cgroup below the root, no mount
/// and no process the checks made is left.
#[test]
fn nothing_the_checks_made_is_left_in_the_machine() {
    if in_guest() {
        return;
    }
    let report = report();
    assert!(report.status.parse::<i32>().is_ok(), "the guest's setup failed: {}", report.status);
    assert_eq!(report.cgroups_left.trim(), "", "cgroups left behind");
    assert_eq!(report.mounts_after, report.mounts_before, "mounts left behind");
    assert_eq!(report.procs_left.trim(), "", "processes left behind");
}
