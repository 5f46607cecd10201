//! The conformance kit on the bump backend, one unlimited arena per test from the shared pool.
//!
//! The 10^5-operation random run allocates about 16 MiB without reuse (frees in the middle are
//! not reclaimed); it passes without a limit, and the arena goes back to the pool afterwards only
//! if it is small enough (it is not: it is dropped, so the footprint stays bounded).
lmem_backend::conformance_tests!(exact: lmem_bump::Bump::new());
