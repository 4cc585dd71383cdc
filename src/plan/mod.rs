//! (plan: to be written)
