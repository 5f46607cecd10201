//! The shared page pool: empty pages go back to it, it stays bounded, and new backend values
//! take their pages from it. One test in its own binary, so the pool's counts are exact.
use lmem_backend::{Backend, Tag};
use lmem_slab::{PAGE_SIZE, POOL_RETAIN, Slab, pool_pages, pool_trim};

#[test]
fn pages_return_to_a_bounded_pool() {
    let cap = POOL_RETAIN / PAGE_SIZE;
    pool_trim();
    assert_eq!(pool_pages(), 0);

    // Twice the pool's bound in 64-byte blocks, then all freed: every page but the current
    // one goes back, and the pool keeps no more than its bound.
    let mut b = Slab::new();
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
    let q: Vec<_> = (0..PAGE_SIZE / 16 + 1)
        .map(|_| c.allocate(16, Tag::String).unwrap())
        .collect();
    assert_eq!(c.page_count(), 2);
    assert_eq!(pool_pages(), cap - 2);

    // Dropping a value returns its pages (the pool stays bounded).
    drop(b);
    assert_eq!(pool_pages(), cap - 1);
    drop(q);
    drop(c);
    assert_eq!(pool_pages(), cap);
    pool_trim();
    assert_eq!(pool_pages(), 0);
}
