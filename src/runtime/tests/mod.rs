//! End-to-end tests of the container core against the real kernel: each
//! launches real containers from a busybox image in a temp dir (root
//! needed; skipped with a message otherwise) and cleans up after itself.

pub(crate) mod fixture;
mod launch;
mod more;
