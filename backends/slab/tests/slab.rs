//! Slab-specific behaviour: classes, in-place resize, page release, reset, stats, ownership and
//! the large-block fallback.
use lmem_backend::{ALIGN, Backend, Ownership, Tag};
use lmem_slab::{
    CELL_SIZE, CLASS_COUNT, CLASS_OF, CLASS_SIZES, HOT_CAP, HOT_SLOTS, MAX_SMALL, PAGE_SIZE, Slab,
};
use lmem_system::System;
use std::ptr::NonNull;

fn class_size(size: usize) -> usize {
    CLASS_SIZES[CLASS_OF[(size + 15) >> 4] as usize]
}

/// A value past its compact start: its small blocks come from pages of their class, with the
/// hot cache.
fn paged() -> Slab {
    let mut b = Slab::new();
    assert!(b.leave_compact());
    assert!(!b.is_compact());
    b
}

#[test]
fn backend_is_send() {
    fn send<T: Send>() {}
    send::<Slab>();
    send::<Slab<Counting>>();
}

#[test]
fn resize_within_a_class_keeps_the_block() {
    let mut b = Slab::new();
    let mut lo = 1;
    for &hi in &CLASS_SIZES {
        let p = b.allocate(lo, Tag::String).unwrap();
        let mut size = lo;
        for new in (lo..=hi).rev().chain(lo..=hi) {
            // SAFETY: `p` is live with size `size`.
            let q = unsafe { b.resize(p, size, new) }.unwrap();
            assert_eq!(
                q, p,
                "resize {size} -> {new} within class {hi} moved the block"
            );
            size = new;
        }
        // SAFETY: live with size `size`.
        unsafe { b.deallocate(p, size) };
        lo = hi + 1;
    }
}

#[test]
fn every_size_frees_into_its_class() {
    let mut b = paged();
    for size in 1..=MAX_SMALL + 1 {
        let p = b.allocate(size, Tag::Other).unwrap();
        assert_eq!(p.as_ptr() as usize % ALIGN, 0);
        // SAFETY: live block of `size`.
        let usable = unsafe { b.usable_size(p, size) };
        if size <= MAX_SMALL {
            assert_eq!(
                usable,
                class_size(size),
                "size {size} landed in the wrong class"
            );
        } else {
            assert!(usable >= size);
        }
        // A neighbour of every class, so that a wrong free would show up as a reuse.
        let others: Vec<_> = CLASS_SIZES
            .iter()
            .map(|&c| (b.allocate(c, Tag::Other).unwrap(), c))
            .collect();
        // SAFETY: live block of `size`.
        unsafe { b.deallocate(p, size) };
        // The page-local free list is LIFO: the same size gets the same block back...
        let q = b.allocate(size, Tag::Other).unwrap();
        if size <= MAX_SMALL {
            assert_eq!(q, p, "size {size}: freed block not reused by its class");
        }
        // ...and its page has no block for any other class.
        for &c in CLASS_SIZES
            .iter()
            .filter(|&&c| size > MAX_SMALL || c != class_size(size))
        {
            let r = b.allocate(c, Tag::Other).unwrap();
            assert_ne!(
                r.as_ptr() as usize & !(PAGE_SIZE - 1),
                q.as_ptr() as usize & !(PAGE_SIZE - 1)
            );
            // SAFETY: live block of `c`.
            unsafe { b.deallocate(r, c) };
        }
        // SAFETY: live blocks with their sizes.
        unsafe {
            b.deallocate(q, size);
            for (o, c) in others {
                b.deallocate(o, c);
            }
        }
    }
    assert_eq!(b.stats().blocks, Some(0));
}

#[test]
fn empty_pages_leave_the_backend() {
    let mut b = paged();
    let n = 20 * PAGE_SIZE / 48;
    let blocks: Vec<_> = (0..n)
        .map(|_| b.allocate(48, Tag::Table).unwrap())
        .collect();
    assert!(b.page_count() >= 20);
    // Free every other block: no page empties, all pages become partial.
    for p in blocks.iter().step_by(2) {
        // SAFETY: live block of 48.
        unsafe { b.deallocate(*p, 48) };
    }
    let pages = b.page_count();
    assert!(pages >= 20);
    // Refill: the partial pages' holes are used before any new page.
    let again: Vec<_> = (0..n / 2)
        .map(|_| b.allocate(48, Tag::Table).unwrap())
        .collect();
    assert_eq!(
        b.page_count(),
        pages,
        "partially free pages must be reused first"
    );
    for p in blocks.iter().skip(1).step_by(2).chain(&again) {
        // SAFETY: live blocks of 48, each freed once.
        unsafe { b.deallocate(*p, 48) };
    }
    // The hot cache keeps the last blocks freed (and so their page); trimmed, every page but
    // the current one has left.
    b.trim();
    assert_eq!(b.page_count(), 1, "only the current page stays");
    assert_eq!(b.stats().reserved, Some(PAGE_SIZE));
}

#[test]
fn a_freed_block_is_the_next_one_handed_out() {
    let mut b = paged();
    let keep: Vec<_> = (0..100)
        .map(|_| b.allocate(40, Tag::String).unwrap())
        .collect();
    for i in [10, 50, 90] {
        // SAFETY: live block of 40, freed once.
        unsafe { b.deallocate(keep[i], 40) };
    }
    assert_eq!(b.cached_blocks(), 3);
    // Another class does not see them.
    let other = b.allocate(16, Tag::String).unwrap();
    assert!(!keep.contains(&other));
    // Any size of the class (33..=48) gets them back, the last freed first.
    for (size, i) in [(33, 90), (48, 50), (40, 10)] {
        assert_eq!(b.allocate(size, Tag::String), Some(keep[i]));
    }
    assert_eq!(b.cached_blocks(), 0);
    let fresh = b.allocate(40, Tag::String).unwrap();
    assert!(!keep.contains(&fresh));
    // SAFETY: live blocks with their sizes, each freed once.
    unsafe {
        b.deallocate(other, 16);
        b.deallocate(fresh, 40);
        b.deallocate(keep[90], 33);
        b.deallocate(keep[50], 48);
        for (i, &p) in keep.iter().enumerate() {
            if ![50, 90].contains(&i) {
                b.deallocate(p, 40);
            }
        }
    }
    assert_eq!(b.stats().blocks, Some(0));
}

#[test]
fn the_hot_cache_is_bounded_and_trim_empties_it() {
    let mut b = paged();
    // Four pages of the 16 B class, all freed in allocation order.
    let blocks: Vec<_> = (0..4 * PAGE_SIZE / 16)
        .map(|_| b.allocate(16, Tag::String).unwrap())
        .collect();
    assert!(b.page_count() >= 4);
    for &p in &blocks {
        // SAFETY: live block of 16, freed once.
        unsafe { b.deallocate(p, 16) };
    }
    // The cache took the first HOT_CAP[0] frees, the rest went to their pages; pages with
    // nothing cached emptied and left.
    assert_eq!(b.cached_blocks(), HOT_CAP[0] as usize);
    let s = b.stats();
    assert_eq!((s.blocks, s.allocated), (Some(0), Some(0)));
    assert!(
        b.page_count() <= 2,
        "the current page and the cached blocks' page"
    );
    b.trim();
    assert_eq!(b.cached_blocks(), 0);
    assert_eq!(b.page_count(), 1);

    // Every class full: the caches hold HOT_SLOTS blocks, no more.
    let mut live = Vec::new();
    for (class, &size) in CLASS_SIZES.iter().enumerate() {
        for _ in 0..HOT_CAP[class] as usize + 5 {
            live.push((b.allocate(size, Tag::Other).unwrap(), size));
        }
    }
    for &(p, size) in &live {
        // SAFETY: live block of `size`, freed once.
        unsafe { b.deallocate(p, size) };
    }
    assert_eq!(b.cached_blocks(), HOT_SLOTS);
    assert_eq!(b.stats().blocks, Some(0));
    b.trim();
    assert_eq!(b.cached_blocks(), 0);
    assert!(b.page_count() <= CLASS_COUNT);
}

#[test]
fn reset_releases_everything() {
    let mut b = Slab::new();
    for i in 0..10_000 {
        let s = 1 + i % 1500;
        b.allocate(s, Tag::ALL[i % 8]).unwrap();
    }
    assert!(b.page_count() > 0);
    // SAFETY: none of the blocks is used again.
    unsafe { b.reset() }.unwrap();
    let s = b.stats();
    assert_eq!(
        (s.allocated, s.reserved, s.blocks),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(b.page_count(), 0);
    // Still usable.
    let p = b.allocate(40, Tag::Upvalue).unwrap();
    assert_eq!(b.owns(p), Ownership::Owned);
    // SAFETY: live block of 40.
    unsafe { b.deallocate(p, 40) };
}

#[test]
fn stats_follow_the_blocks() {
    // Compact (blocks in cells) and paged (blocks in pages) alike.
    for mut b in [Slab::new(), paged()] {
        stats_of(&mut b);
    }
}

fn stats_of(b: &mut Slab) {
    assert_eq!(b.stats().reserved, Some(0));
    let sizes = [
        1, 16, 17, 40, 56, 64, 100, 257, 1000, 1024, 1025, 5000, 100_000,
    ];
    let live: Vec<_> = sizes
        .iter()
        .map(|&s| (b.allocate(s, Tag::Other).unwrap(), s))
        .collect();
    let s = b.stats();
    let small: Vec<_> = sizes.iter().copied().filter(|&s| s <= MAX_SMALL).collect();
    let large: usize = sizes.iter().copied().filter(|&s| s > MAX_SMALL).sum();
    let requested: usize = sizes.iter().sum();
    assert_eq!(s.blocks, Some(sizes.len()));
    assert_eq!(
        s.allocated,
        Some(small.iter().map(|&s| class_size(s)).sum::<usize>() + large)
    );
    assert_eq!(
        s.reserved,
        Some(b.page_count() * PAGE_SIZE + b.cell_count() * CELL_SIZE + large)
    );
    // Requested sizes are the layer's to count (it fills `wasted` as reserved - live).
    assert_eq!(s.wasted, None);
    assert!(s.reserved.unwrap() >= requested);
    // A resize in place changes the requested bytes, not the allocation.
    let (p, _) = live[3];
    // SAFETY: live block of 40.
    assert_eq!(unsafe { b.resize(p, 40, 48) }, Some(p));
    let t = b.stats();
    assert_eq!((t.allocated, t.reserved), (s.allocated, s.reserved));
    for (i, (p, size)) in live.into_iter().enumerate() {
        let size = if i == 3 { 48 } else { size };
        // SAFETY: live block of `size`.
        unsafe { b.deallocate(p, size) };
    }
    let s = b.stats();
    assert_eq!((s.allocated, s.blocks, s.wasted), (Some(0), Some(0), None));
}

#[test]
fn owns_small_large_and_foreign() {
    let mut b = Slab::new();
    let mut other = Slab::new();
    let small = b.allocate(24, Tag::String).unwrap();
    let large = b.allocate(70_000, Tag::Table).unwrap();
    assert_eq!(b.owns(small), Ownership::Owned);
    assert_eq!(b.owns(large), Ownership::Owned);
    let theirs = other.allocate(24, Tag::String).unwrap();
    let theirs_large = other.allocate(3000, Tag::String).unwrap();
    let mut sys = System::new();
    let malloced = sys.allocate(24, Tag::Other).unwrap();
    let on_stack = [0u8; 32];
    for p in [
        theirs,
        theirs_large,
        malloced,
        NonNull::from(&on_stack).cast(),
    ] {
        assert_eq!(b.owns(p), Ownership::Foreign, "{p:p}");
    }
    assert_eq!(other.owns(small), Ownership::Foreign);
    assert_eq!(other.owns(large), Ownership::Foreign);
    // SAFETY: live blocks with their sizes, each freed once.
    unsafe {
        b.deallocate(large, 70_000);
        assert_eq!(
            b.owns(large),
            Ownership::Foreign,
            "a freed large block is not ours"
        );
        b.deallocate(small, 24);
        other.deallocate(theirs, 24);
        other.deallocate(theirs_large, 3000);
        sys.deallocate(malloced, 24);
    }
}

/// A fallback that counts what reaches it.
#[derive(Default)]
struct Counting {
    allocs: usize,
    frees: usize,
    resizes: usize,
    inner: System,
}

// SAFETY: forwards to `System`, which upholds the contract; the counters change nothing.
unsafe impl Backend for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        self.allocs += 1;
        self.inner.allocate(size, tag)
    }
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        self.frees += 1;
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.deallocate(ptr, size) }
    }
    unsafe fn resize(&mut self, p: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
        self.resizes += 1;
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.resize(p, old, new) }
    }
}

#[test]
fn large_blocks_go_through_the_fallback() {
    let mut b = Slab::with_fallback(Counting::default());
    let small = b.allocate(MAX_SMALL, Tag::Other).unwrap();
    assert_eq!(b.fallback().allocs, 0, "a small block reached the fallback");
    let p = b.allocate(MAX_SMALL + 1, Tag::Other).unwrap();
    assert_eq!(b.fallback().allocs, 1);
    // SAFETY: live blocks with their sizes; each resize result replaces its block.
    unsafe {
        std::ptr::write_bytes(p.as_ptr(), 0xab, MAX_SMALL + 1);
        let q = b.resize(p, MAX_SMALL + 1, 50_000).unwrap();
        assert_eq!(
            b.fallback().resizes,
            1,
            "large to large is the fallback's resize"
        );
        assert_eq!(b.owns(q), Ownership::Owned);
        // Large to small: a page block; the fallback frees the old one.
        let r = b.resize(q, 50_000, 100).unwrap();
        assert_eq!(b.fallback().frees, 1);
        assert_eq!(
            std::slice::from_raw_parts(r.as_ptr(), 100),
            &[0xab; 100][..]
        );
        assert_eq!(b.usable_size(r, 100), 112);
        // Small to large: the fallback again.
        let s = b.resize(r, 100, 4000).unwrap();
        assert_eq!(b.fallback().allocs, 2);
        assert_eq!(
            std::slice::from_raw_parts(s.as_ptr(), 100),
            &[0xab; 100][..]
        );
        b.deallocate(s, 4000);
        assert_eq!(b.fallback().frees, 2);
        b.deallocate(small, MAX_SMALL);
    }
    let live = b.allocate(9000, Tag::Other).unwrap();
    assert_eq!(b.owns(live), Ownership::Owned);
    // Reset frees the live large block through the fallback.
    // SAFETY: `live` is not used again.
    unsafe { b.reset() }.unwrap();
    assert_eq!(b.fallback().frees, 3);
}

#[test]
fn shrink_to_a_smaller_class_moves_and_keeps_the_prefix() {
    let mut b = Slab::new();
    let p = b.allocate(1000, Tag::Other).unwrap();
    // SAFETY: live block of 1000 bytes; `q` replaces it.
    unsafe {
        for i in 0..1000 {
            *p.as_ptr().add(i) = i as u8;
        }
        let q = b.resize(p, 1000, 20).unwrap();
        assert_ne!(q, p);
        assert_eq!(b.usable_size(q, 20), 32);
        assert!((0..20).all(|i| *q.as_ptr().add(i) == i as u8));
        b.deallocate(q, 20);
    }
}

#[test]
fn a_full_page_with_a_free_block_is_reused_before_a_new_page() {
    let mut b = paged();
    let mut blocks = Vec::new();
    while b.page_count() < 3 {
        blocks.push(b.allocate(64, Tag::Table).unwrap());
    }
    // One free in the first (full) page: far less than the eighth that would make it partial.
    let first = blocks.swap_remove(0);
    // SAFETY: live block of 64 bytes.
    unsafe { b.deallocate(first, 64) };
    // When the current page runs out, that block is reused before any new page is taken.
    let mut reused = false;
    for _ in 0..2 * PAGE_SIZE / 64 {
        let p = b.allocate(64, Tag::Table).unwrap();
        blocks.push(p);
        if p == first {
            reused = true;
            break;
        }
    }
    assert!(reused, "the free block of a full page was never reused");
    assert_eq!(
        b.page_count(),
        3,
        "a new page was taken while a block was free"
    );
    for p in blocks {
        // SAFETY: live blocks of 64 bytes.
        unsafe { b.deallocate(p, 64) };
    }
    assert_eq!(b.stats().blocks, Some(0));
}
