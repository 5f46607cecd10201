//! The shared page pool: empty pages go back to it, it stays bounded, and new backend values
//! take their pages from it. One test in its own binary, so the pool's counts are exact.
use lmem_backend::{Backend, Tag};
use lmem_slab::{BIG_PAGES, PAGE_SIZE, POOL_RETAIN, Slab, pool_pages, pool_stats, pool_trim};
use std::collections::HashSet;

#[test]
fn pages_return_to_a_bounded_pool() {
    let cap = POOL_RETAIN / PAGE_SIZE;
    pool_trim();
    assert_eq!(pool_pages(), 0);

    // Twice the pool's bound in 64-byte blocks, then all freed: every page but the current
    // one goes back, and the pool keeps no more than its bound.
    let mut b = Slab::new();
    assert!(b.leave_compact());
    let n = 2 * POOL_RETAIN / 64;
    let blocks: Vec<_> = (0..n)
        .map(|_| b.allocate(64, Tag::Table).unwrap())
        .collect();
    let held = b.page_count();
    assert!(held > cap);
    assert!(pool_pages() <= cap);
    for p in blocks {
        // SAFETY: live block of 64 bytes.
        unsafe { b.deallocate(p, 64) };
    }
    // The hot cache keeps the first blocks freed, and so their page, until trimmed.
    assert!(b.page_count() <= 2);
    b.trim();
    assert_eq!(b.page_count(), 1);
    assert_eq!(
        pool_pages(),
        cap,
        "the pool fills to its bound and no further"
    );

    // A new value takes its pages from the pool.
    let mut c = Slab::new();
    assert!(c.leave_compact());
    let q: Vec<_> = (0..PAGE_SIZE / 16 + 1)
        .map(|_| c.allocate(16, Tag::String).unwrap())
        .collect();
    assert_eq!(c.page_count(), 2);
    assert_eq!(pool_pages(), cap - 2);

    // Dropping a value returns its pages (the pool stays bounded). `b` held more than
    // BIG_PAGES pages, so its last one lies in a huge region, and goes back there.
    assert!(b.page_count() == 1 && BIG_PAGES < held);
    let regions = pool_stats().region_resident;
    drop(b);
    assert_eq!(pool_pages(), cap - 2);
    assert_eq!(pool_stats().region_resident, regions + 1);
    drop(q);
    drop(c);
    assert_eq!(pool_pages(), cap);
    pool_trim();
    assert_eq!(pool_pages(), 0);

    // Compact values take cells from shared cell pages, not pages of their own; when the last
    // cell of a page comes back, the page goes back to the pool.
    let mut values: Vec<Slab> = (0..8).map(|_| Slab::new()).collect();
    let mut cell_pages = HashSet::new();
    for i in 0..3000 {
        let v = &mut values[i % 8];
        let size = 16 + (i * 7) % 200;
        let p = v.allocate(size, Tag::String).unwrap();
        cell_pages.insert(p.as_ptr() as usize & !(PAGE_SIZE - 1));
    }
    assert!(values.iter().all(|v| v.is_compact() && v.page_count() == 0));
    let cells: usize = values.iter().map(|v| v.cell_count()).sum();
    assert!(cell_pages.len() * 8 >= cells && cell_pages.len() <= cells.div_ceil(6));
    assert_eq!(
        pool_pages(),
        0,
        "cell pages came from the pool's decommitted pages"
    );
    // Dropped with their blocks live (a closed state may leave no block, but reset and drop
    // need none freed).
    values.truncate(4);
    assert!(
        pool_pages() < cell_pages.len(),
        "no page is empty while others hold cells in it"
    );
    drop(values);
    assert_eq!(pool_pages(), cell_pages.len());
    pool_trim();
    assert_eq!(pool_pages(), 0);
}
