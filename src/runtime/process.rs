//! (runtime::process: being written.)
