//! (runtime::init: being written.)
