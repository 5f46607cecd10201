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
