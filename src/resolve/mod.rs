//! Resolver: turns a checked manifest into a layer graph and container specs.
//! (Overview written with the graph code.)

pub mod key;
pub mod tree;

pub use key::{CacheKey, KeyHasher};
