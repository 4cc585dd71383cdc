//! Input hashing of copied trees (to be written).
