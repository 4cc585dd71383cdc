//! Layers from a step's upper dir (being written).
