//! (runtime::ports: being written.)
