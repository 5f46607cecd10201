//! The `bump` backend (being written).
