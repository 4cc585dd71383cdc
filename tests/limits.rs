//! Resource limits through cgroups, on this host's hierarchy (v1
//! controllers here; v2 where that is what `/sys/fs/cgroup` is): memory with
//! OOM kills reported, pids against fork bombs, CPU quota throttling,
//! freezing for `commit`, limits from berth.toml, and no cgroup left
//! behind. The same checks (`support::cgroups`) run inside a cgroup-v2-only
//! kernel in `tests/vm.rs`.

mod support;

use support::cgroups;

#[test]
fn a_memory_hog_is_killed_and_reported_as_oom_killed() {
    cgroups::memory_hog_is_oom_killed();
}

#[test]
fn a_fork_bomb_is_stopped_by_the_pids_limit() {
    cgroups::fork_bomb_is_stopped_by_the_pids_limit();
}

#[test]
fn limits_land_in_the_cgroup() {
    cgroups::limits_land_in_the_cgroup();
}

#[test]
fn a_cpu_quota_throttles_a_busy_loop() {
    cgroups::cpu_quota_throttles_a_busy_loop();
}

#[test]
fn exec_into_a_container_at_its_pids_limit_says_so() {
    cgroups::exec_at_the_pids_limit_says_so();
}

#[test]
fn commit_of_a_running_container_freezes_and_thaws_it() {
    cgroups::commit_of_a_running_container_freezes_and_thaws_it();
}

#[test]
fn up_applies_the_manifest_limits_and_down_removes_the_cgroup() {
    cgroups::up_applies_the_manifest_limits_and_down_removes_the_cgroup();
}

#[test]
fn removing_containers_leaves_no_cgroup() {
    cgroups::removing_containers_leaves_no_cgroup();
}

#[test]
fn stats_show_usage_and_limits() {
    cgroups::stats_show_usage_and_limits();
}
