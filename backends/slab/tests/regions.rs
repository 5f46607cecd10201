//! Huge regions: a value that holds `BIG_PAGES` pages takes its further pages from 2 MiB regions
//! marked for transparent huge pages; small values never touch them; empty region pages stay
//! resident up to a bound, and beyond it go back to the OS, a wholly empty region at once. One
//! test in its own binary, so the pool's counts are exact.
use lmem_backend::{Backend, Tag};
use lmem_slab::{
    BIG_PAGES, PAGE_SIZE, PAGES_PER_REGION, POOL_RETAIN, REGION_SIZE, Slab, pool_stats, pool_trim,
};
use std::collections::HashSet;
use std::ptr::NonNull;

/// Allocates 64-byte blocks until `b` holds `pages` pages.
fn fill(b: &mut Slab, pages: usize) -> Vec<NonNull<u8>> {
    let mut blocks = Vec::new();
    while b.page_count() < pages {
        blocks.push(b.allocate(64, Tag::Table).unwrap());
    }
    blocks
}

fn free(b: &mut Slab, blocks: &[NonNull<u8>]) {
    for &p in blocks {
        // SAFETY: live blocks of 64 bytes, each freed once.
        unsafe { b.deallocate(p, 64) };
    }
}

#[test]
fn big_values_take_region_pages_and_small_ones_never_do() {
    pool_trim();
    let start = pool_stats();
    assert_eq!(
        (start.resident, start.region_used, start.region_resident),
        (0, 0, 0)
    );

    // Small values, compact or paged, take no region page.
    let mut small: Vec<Slab> = (0..50).map(|_| Slab::new()).collect();
    let mut kept = Vec::new();
    for v in &mut small {
        for i in 0..300 {
            kept.push((v.allocate(16 + i % 200, Tag::String).unwrap(), 16 + i % 200));
        }
    }
    let mut medium = Slab::new();
    assert!(medium.leave_compact());
    let medium_blocks = fill(&mut medium, BIG_PAGES - 1);
    assert_eq!(pool_stats().region_used, 0);
    assert_eq!(pool_stats().regions, 0);

    // A big value: every page past its first BIG_PAGES lies in a region, and regions are
    // filled densely, lowest address first.
    let mut big = Slab::new();
    assert!(big.leave_compact());
    let extra = 3 * PAGES_PER_REGION / 2;
    let blocks = fill(&mut big, BIG_PAGES + extra);
    let s = pool_stats();
    assert_eq!(s.region_used, extra);
    assert_eq!(s.regions, extra.div_ceil(PAGES_PER_REGION));
    let late: HashSet<usize> = blocks[blocks.len() - extra * 100..]
        .iter()
        .map(|p| p.as_ptr() as usize & !(REGION_SIZE - 1))
        .collect();
    assert!(late.len() <= s.regions, "region pages outside the regions");

    // Freed, its region pages stay resident up to the bound, then go back (whole regions
    // first); the pages outside regions go to the ordinary pool.
    free(&mut big, &blocks);
    big.trim();
    // Only the current page (a region page) stays with the value.
    assert_eq!((big.page_count(), pool_stats().region_used), (1, 1));
    drop(big);
    let s = pool_stats();
    assert_eq!(s.region_used, 0);
    assert!(
        s.region_resident <= POOL_RETAIN / PAGE_SIZE,
        "{} resident",
        s.region_resident
    );
    assert!(s.resident <= POOL_RETAIN / PAGE_SIZE);

    // A new big value reuses the regions: none is mapped anew.
    let mut again = Slab::new();
    assert!(again.leave_compact());
    let blocks = fill(&mut again, BIG_PAGES + extra);
    assert_eq!(pool_stats().regions, s.regions);
    assert_eq!(pool_stats().region_used, extra);

    // Trim gives back every resident empty page, in regions too; the regions stay mapped.
    free(&mut again, &blocks);
    drop(again);
    free(&mut medium, &medium_blocks);
    drop(medium);
    for (v, chunk) in small.iter_mut().zip(kept.chunks(300)) {
        for &(p, size) in chunk {
            // SAFETY: live blocks of their sizes, each freed once.
            unsafe { v.deallocate(p, size) };
        }
    }
    drop(small);
    pool_trim();
    let s = pool_stats();
    assert_eq!((s.resident, s.region_used, s.region_resident), (0, 0, 0));
    assert!(s.regions > 0);
}
