//! (runtime::restart: being written.)
