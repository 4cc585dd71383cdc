//! The on-disk store (to be written).
