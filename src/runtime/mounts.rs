//! (runtime::mounts: being written.)
