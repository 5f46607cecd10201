//! Many threads, each making and dropping many backend values, all sharing the page pool;
//! every block's content is checked against a model.
use lmem_backend::Backend;
use lmem_backend::conformance::{Model, Rng, Step, random_step};
use lmem_slab::{PAGE_SIZE, POOL_RETAIN, Slab, pool_pages, pool_trim};

#[test]
fn threads_share_the_page_pool() {
    const THREADS: u64 = 4;
    let (values, ops) = if cfg!(debug_assertions) {
        (40, 3000)
    } else {
        (200, 10_000)
    };
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng::new(0x7_0000 + t);
                for v in 0..values {
                    let mut b = Slab::new();
                    let mut model = Model::default();
                    for _ in 0..ops {
                        let op = random_step(&mut rng, 4096);
                        model.step(&mut b, op, false);
                        if model.live.len() > 2000 {
                            model.step(&mut b, Step::Free(rng.below(1 << 20)), false);
                        }
                    }
                    model.verify_all();
                    match v % 3 {
                        // Free everything, then drop.
                        0 => model.free_all(&mut b),
                        // Reset with blocks live.
                        1 => {
                            model.live.clear();
                            // SAFETY: the model forgot every block; none is used again.
                            unsafe { b.reset() }.unwrap();
                            assert_eq!(b.stats().blocks, Some(0));
                        }
                        // Drop with blocks live (moved to another thread first, sometimes).
                        _ => {
                            model.live.clear();
                            if v % 7 == 2 {
                                std::thread::spawn(move || drop(b)).join().unwrap();
                            }
                        }
                    }
                    if v % 17 == 16 {
                        pool_trim();
                    }
                    assert!(pool_pages() <= POOL_RETAIN / PAGE_SIZE);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(pool_pages() <= POOL_RETAIN / PAGE_SIZE);
}

/// Compact values on many threads take and give back cells of the same cell pages at once, and
/// are handed to other threads with their blocks live: every block keeps its contents, and a
/// value's frees (on whatever thread) never touch another value's cells.
#[test]
fn compact_values_share_cell_pages_across_threads() {
    const THREADS: u64 = 4;
    let values = if cfg!(debug_assertions) { 100 } else { 1000 };
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng::new(0xce11 + t);
                for v in 0..values {
                    let mut b = Slab::new();
                    let mut model = Model::default();
                    // Small enough that the value stays compact.
                    for _ in 0..300 {
                        let op = random_step(&mut rng, 256);
                        model.step(&mut b, op, false);
                    }
                    assert!(b.is_compact());
                    if v % 3 == 0 {
                        // On another thread for a while, where it allocates and frees too.
                        b = std::thread::spawn(move || {
                            let mut m = Model::default();
                            let mut rng = Rng::new(v);
                            for _ in 0..200 {
                                m.step(&mut b, random_step(&mut rng, 256), false);
                            }
                            m.free_all(&mut b);
                            b
                        })
                        .join()
                        .unwrap();
                    }
                    model.verify_all();
                    if v % 4 == 0 {
                        // Dropped on another thread with its blocks live.
                        model.live.clear();
                        std::thread::spawn(move || drop(b)).join().unwrap();
                    } else {
                        model.free_all(&mut b);
                        assert_eq!(b.stats().blocks, Some(0));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(pool_pages() <= POOL_RETAIN / PAGE_SIZE);
}

/// Big values on two threads take and give back pages of huge regions at once: every block
/// keeps its contents.
#[test]
fn big_values_share_huge_regions_across_threads() {
    let handles: Vec<_> = (0..2u8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut b = Slab::new();
                assert!(b.leave_compact());
                let mut blocks = Vec::new();
                for round in 0..3 {
                    while b.page_count() < lmem_slab::BIG_PAGES + 200 {
                        let p = b.allocate(64, lmem_backend::Tag::Table).unwrap();
                        // SAFETY: a fresh block of 64 bytes.
                        unsafe { p.as_ptr().write_bytes(t, 64) };
                        blocks.push(p);
                    }
                    // Free all but every third block: pages empty and go back to regions.
                    let mut kept = Vec::new();
                    for (i, p) in blocks.drain(..).enumerate() {
                        // SAFETY: a live block of 64 bytes, written with `t`.
                        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), 64) };
                        assert!(bytes.iter().all(|&x| x == t), "round {round}");
                        if i % 3 == 0 {
                            kept.push(p);
                        } else {
                            // SAFETY: a live block of 64 bytes, freed once.
                            unsafe { b.deallocate(p, 64) };
                        }
                    }
                    blocks = kept;
                }
                for p in blocks {
                    // SAFETY: a live block of 64 bytes, freed once.
                    unsafe { b.deallocate(p, 64) };
                }
                assert_eq!(b.stats().blocks, Some(0));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
