//! The `jemalloc` backend (being written).
