//! (manifest: to be written)
