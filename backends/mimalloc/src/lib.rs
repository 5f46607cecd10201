//! The `mimalloc` backend (being written).
