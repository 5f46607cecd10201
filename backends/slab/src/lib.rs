//! The `slab` backend (being written).
