//! (runtime::spec: being written.)
