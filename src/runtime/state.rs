//! (runtime::state: being written.)
