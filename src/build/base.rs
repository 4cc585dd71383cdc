//! Base sources (being written).
