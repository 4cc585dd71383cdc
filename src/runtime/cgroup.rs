//! (runtime::cgroup: being written.)
