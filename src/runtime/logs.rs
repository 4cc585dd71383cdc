//! (runtime::logs: being written.)
