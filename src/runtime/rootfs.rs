//! (runtime::rootfs: being written.)
