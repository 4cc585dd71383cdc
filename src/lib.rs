//! berth: a daemonless, declarative environment tool for Linux.
//!
//! A team writes its environments into `berth.toml`; berth resolves them into
//! a graph of cached layers ([`resolve`]), compares that with what the
//! [`store`] holds ([`plan`]) and makes the machine match. The module map and
//! the data flow are in `DESIGN.md`; each module's own `//!` page says what it
//! owns.
//!
//! The library never prints and never exits: the `berth` binary (`src/main.rs`
//! and `src/cli/`) parses arguments, calls in here, and formats the results.

pub mod build;
pub mod compose;
pub mod dockerfile;
pub mod maintain;
pub mod manifest;
pub mod oci;
pub mod plan;
pub mod registry;
pub mod resolve;
pub mod runtime;
pub mod store;
pub mod sys;
pub mod tools;
