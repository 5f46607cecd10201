//! Helpers shared by the fuzz test binaries.
#![allow(dead_code)]

use lmem::wrap::GUARD;
use lmem::{MAX_SIZE, Tag};
use proptest::prelude::*;

/// The case count: `PROPTEST_CASES` when set, else `default` (chosen so that the whole file runs
/// in well under a minute in a debug build).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An index into a list of `len > 0` items, from any number.
pub fn pick(i: &usize, len: usize) -> usize {
    *i % len
}

/// Sizes no backend can serve, around every edge the code tests: `usize::MAX`, `isize::MAX`,
/// `MAX_SIZE ± 1`, the checker's `MAX_SIZE - GUARD`, and sizes beyond any address space.
pub const ABSURD: [usize; 14] = [
    usize::MAX,
    usize::MAX - 1,
    usize::MAX - 15,
    usize::MAX / 2 + 7,
    isize::MAX as usize,
    isize::MAX as usize + 1,
    MAX_SIZE,
    MAX_SIZE + 1,
    MAX_SIZE - 1,
    MAX_SIZE - GUARD,
    MAX_SIZE - GUARD + 1,
    1 << 62,
    1 << 56,
    1 << 48,
];

/// Smallest size counted as absurd: nothing at or above it can be served on this machine, and
/// nothing below it is absurd (the strategies never make sizes between 2^20 and 2^48).
pub const ABSURD_FLOOR: usize = 1 << 40;

/// Any Lua type tag.
pub fn tag() -> impl Strategy<Value = Tag> {
    prop::sample::select(Tag::ALL.to_vec())
}
