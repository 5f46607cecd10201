//! The compact start: a new value carves its small blocks, of every class, out of cells (2 KiB
//! pieces of pages shared with other values) until it holds `COMPACT_CELLS` of them; only then
//! does it take pages of its own, one class per page.
use lmem_backend::rng::Rng;
use lmem_backend::{Backend, Ownership, Tag};
use lmem_slab::{CELL_SIZE, CLASS_OF, CLASS_SIZES, COMPACT_CELLS, MAX_SMALL, PAGE_SIZE, Slab};
use std::collections::HashSet;
use std::ptr::NonNull;

fn class_size(size: usize) -> usize {
    CLASS_SIZES[CLASS_OF[(size + 15) >> 4] as usize]
}

/// About what a Lua state with the standard libraries holds: some 400 blocks of many classes,
/// mostly up to 64 B, in all 28 KiB after class rounding.
fn small_state(b: &mut Slab) -> Vec<(NonNull<u8>, usize)> {
    let mut rng = Rng::new(12);
    let mut live = Vec::new();
    let mut bytes = 0;
    while bytes < 28 * 1024 {
        let size = rng.lua_size(MAX_SMALL);
        let p = b.allocate(size, Tag::Other).unwrap();
        // SAFETY: a fresh block of `size` bytes.
        unsafe { p.as_ptr().write_bytes(size as u8, size) };
        bytes += class_size(size);
        live.push((p, size));
    }
    live
}

/// Frees every block, checking that it kept its contents.
fn free_all(b: &mut Slab, live: Vec<(NonNull<u8>, usize)>) {
    for (p, size) in live {
        // SAFETY: a live block of `size` bytes, written by `small_state`, freed once.
        unsafe {
            assert!(
                std::slice::from_raw_parts(p.as_ptr(), size)
                    .iter()
                    .all(|&x| x == size as u8)
            );
            b.deallocate(p, size);
        }
    }
}

#[test]
fn a_small_state_holds_a_few_cells_and_no_page() {
    let mut b = Slab::new();
    assert!(b.is_compact());
    assert_eq!((b.cell_count(), b.page_count()), (0, 0));
    let live = small_state(&mut b);
    let classes: HashSet<_> = live.iter().map(|&(_, s)| class_size(s)).collect();
    let carved: usize = live.iter().map(|&(_, s)| class_size(s)).sum();
    // One page per class touched would be this many pages; the cells hold the blocks densely.
    assert!(classes.len() >= 15, "{}", classes.len());
    assert!(b.is_compact());
    assert_eq!(b.page_count(), 0);
    assert!(
        b.cell_count() <= carved.div_ceil(CELL_SIZE) + 1,
        "{}",
        b.cell_count()
    );
    let s = b.stats();
    assert_eq!(s.allocated, Some(carved));
    assert_eq!(s.blocks, Some(live.len()));
    assert_eq!(s.reserved, Some(b.cell_count() * CELL_SIZE));
    // A compact value caches nothing: trim has nothing to give back, and keeps the cells.
    assert_eq!(b.cached_blocks(), 0);
    let cells = b.cell_count();
    b.trim();
    assert_eq!((b.cell_count(), b.page_count()), (cells, 0));
    free_all(&mut b, live);
    let s = b.stats();
    assert_eq!((s.allocated, s.blocks), (Some(0), Some(0)));
}

#[test]
fn values_share_cell_pages_but_never_a_cell() {
    let (mut a, mut b) = (Slab::new(), Slab::new());
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // Interleaved, so that the two values' cells interleave in the same pages.
    for i in 0..1000 {
        let size = 16 + i % 100;
        ours.push((a.allocate(size, Tag::String).unwrap(), size));
        theirs.push((b.allocate(size, Tag::String).unwrap(), size));
    }
    let pages = |v: &[(NonNull<u8>, usize)]| -> HashSet<usize> {
        v.iter()
            .map(|&(p, _)| p.as_ptr() as usize & !(PAGE_SIZE - 1))
            .collect()
    };
    assert!(
        !pages(&ours).is_disjoint(&pages(&theirs)),
        "no page holds cells of both values"
    );
    for &(p, size) in &ours {
        assert_eq!(a.owns(p), Ownership::Owned);
        assert_eq!(b.owns(p), Ownership::Foreign);
        // SAFETY: a live block of `size` bytes.
        unsafe { p.as_ptr().write_bytes(1, size) };
    }
    for &(p, size) in &theirs {
        assert_eq!(b.owns(p), Ownership::Owned);
        assert_eq!(a.owns(p), Ownership::Foreign);
        // SAFETY: a live block of `size` bytes.
        unsafe { p.as_ptr().write_bytes(2, size) };
    }
    // Frees go to each value's own lists: what `a` frees, only `a` hands out again.
    for &(p, size) in ours.iter().step_by(2) {
        // SAFETY: a live block of `size`, freed once.
        unsafe { a.deallocate(p, size) };
    }
    for _ in 0..500 {
        let q = b.allocate(40, Tag::String).unwrap();
        assert_eq!(a.owns(q), Ownership::Foreign);
        theirs.push((q, 40));
        // SAFETY: a fresh block of 40 bytes.
        unsafe { q.as_ptr().write_bytes(2, 40) };
    }
    for &(p, size) in ours.iter().skip(1).step_by(2) {
        // SAFETY: a live block of `size`, written with 1s above.
        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
        assert!(bytes.iter().all(|&x| x == 1));
    }
    for (p, size) in theirs {
        // SAFETY: a live block of `size`, written with 2s above, freed once.
        unsafe {
            assert!(
                std::slice::from_raw_parts(p.as_ptr(), size)
                    .iter()
                    .all(|&x| x == 2)
            );
            b.deallocate(p, size);
        }
    }
    assert_eq!(b.stats().blocks, Some(0));
}

#[test]
fn freed_cell_blocks_are_reused_and_larger_ones_split() {
    let mut b = Slab::new();
    let big = b.allocate(512, Tag::Table).unwrap();
    let small = b.allocate(48, Tag::String).unwrap();
    // SAFETY: live blocks of their sizes, each freed once.
    unsafe {
        b.deallocate(small, 48);
        // The same class gets its block back...
        assert_eq!(b.allocate(40, Tag::String), Some(small));
        b.deallocate(big, 512);
    }
    // ...and a class with no free block splits a larger free one: its head, then its rest.
    let head = b.allocate(48, Tag::String).unwrap();
    assert_eq!(head, big);
    let rest = b.allocate(448, Tag::Table).unwrap();
    assert_eq!(rest.as_ptr() as usize, big.as_ptr() as usize + 48);
    let s = b.stats();
    // Live: `small` (48), `head` (48), `rest` (448); the 16 bytes left of `big` are free.
    assert_eq!((s.blocks, s.allocated), (Some(3), Some(48 + 48 + 448)));
    assert_eq!(b.cell_count(), 1);
    // SAFETY: live blocks of their sizes, each freed once.
    unsafe {
        b.deallocate(small, 40);
        b.deallocate(head, 48);
        b.deallocate(rest, 448);
    }
    assert_eq!(b.stats().blocks, Some(0));
}

#[test]
fn compact_ends_when_the_cells_are_full() {
    let mut b = Slab::new();
    let mut live = Vec::new();
    while b.cell_count() < COMPACT_CELLS || b.is_compact() {
        live.push(b.allocate(MAX_SMALL, Tag::Other).unwrap());
        assert_eq!(b.page_count(), usize::from(!b.is_compact()));
    }
    // The first block past the cells came from a page of its class.
    assert_eq!(live.len(), COMPACT_CELLS + 1);
    assert_eq!((b.cell_count(), b.page_count()), (COMPACT_CELLS, 1));
    let s = b.stats();
    assert_eq!(
        s.reserved,
        Some(COMPACT_CELLS * CELL_SIZE + PAGE_SIZE),
        "cells and one page"
    );
    // Paged, the hot cache serves: a freed block is the next one of its class handed out,
    // whether it lies in a page or in a cell.
    for p in [live[COMPACT_CELLS], live[3]] {
        // SAFETY: a live block of MAX_SMALL bytes; handed out again at once.
        unsafe { b.deallocate(p, MAX_SMALL) };
        assert_eq!(b.cached_blocks(), 1);
        assert_eq!(b.allocate(MAX_SMALL, Tag::Other), Some(p));
    }
    // A cell block freed past the hot cache is reused before any new page.
    let mut extra = Vec::new();
    for &p in &live[..10] {
        // SAFETY: live blocks of MAX_SMALL bytes, each freed once.
        unsafe { b.deallocate(p, MAX_SMALL) };
    }
    b.trim();
    assert_eq!(b.cached_blocks(), 0);
    for _ in 0..10 {
        extra.push(b.allocate(MAX_SMALL, Tag::Other).unwrap());
    }
    assert_eq!(
        b.page_count(),
        1,
        "a page was taken while cell blocks were free"
    );
    for p in live[10..].iter().chain(&extra) {
        // SAFETY: live blocks of MAX_SMALL bytes, each freed once.
        unsafe { b.deallocate(*p, MAX_SMALL) };
    }
    let s = b.stats();
    assert_eq!((s.allocated, s.blocks), (Some(0), Some(0)));
    // Reset gives the cells back too; the value stays paged.
    // SAFETY: no block is live.
    unsafe { b.reset() }.unwrap();
    assert_eq!((b.cell_count(), b.page_count()), (0, 0));
    assert_eq!(b.stats().reserved, Some(0));
    assert!(!b.is_compact());
}

#[test]
fn reset_of_a_compact_value_gives_its_cells_back() {
    let mut b = Slab::new();
    let _live = small_state(&mut b);
    assert!(b.cell_count() > 0);
    // SAFETY: none of the blocks is used again.
    unsafe { b.reset() }.unwrap();
    let s = b.stats();
    assert_eq!(
        (s.allocated, s.reserved, s.blocks),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(b.cell_count(), 0);
    assert!(b.is_compact());
    let live = small_state(&mut b);
    free_all(&mut b, live);
}
