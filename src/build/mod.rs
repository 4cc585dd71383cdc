//! The builder: executes layer-graph nodes — base sources, packages, copy
//! and run steps — and turns each into a layer in the store. It never
//! decides *whether* to build; the plan does.

pub mod base;
pub mod copy;
pub mod engine;
pub mod image;
pub mod layer;
pub mod packages;
pub mod step;
