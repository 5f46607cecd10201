//! Four threads open and close many states that share the global arena pool; every block's
//! content is checked against a model, so an arena handed to two states at once, or handed out
//! before its previous state let go of it, shows up as a changed byte.
use lmem_backend::Backend;
use lmem_backend::conformance::{Model, Rng, Step, random_step};
use lmem_bump::{Bump, PoolLimits, pool_stats, set_pool_limits};
use std::thread;

const THREADS: u64 = 4;
const STATES_PER_THREAD: u64 = 300;
const OPS_PER_STATE: usize = 400;

/// One thread's work: states opened and closed one after another, some limited, each running
/// random operations against a model. Returns how many requests the limits refused.
fn worker(seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let mut refused = 0;
    for state in 0..STATES_PER_THREAD {
        let limited = state % 3 == 0;
        let mut b = if limited {
            Bump::with_limit(32 * 1024)
        } else {
            Bump::new()
        };
        let mut model = Model::default();
        for step in 0..OPS_PER_STATE {
            let op = random_step(&mut rng, 8 * 1024);
            if !model.step(&mut b, op, limited) {
                refused += 1;
            }
            if model.live.len() > 256 {
                model.step(&mut b, Step::Free(rng.below(1 << 20)), false);
            }
            if step % 64 == 0 {
                model.verify_all();
            }
        }
        model.verify_all();
        // Half the states free everything, half close with blocks still live (Lua's close frees
        // everything, but a host may drop a state whose blocks it no longer needs).
        if state % 2 == 0 {
            model.free_all(&mut b);
            assert_eq!(b.stats().blocks, Some(0));
        }
        drop(b);
    }
    refused
}

#[test]
fn four_threads_share_the_pool() {
    // A small pool, so arenas are pooled, handed out and dropped under contention.
    set_pool_limits(PoolLimits {
        arenas: 3,
        arena_bytes: 512 * 1024,
    });
    let handles: Vec<_> = (0..THREADS)
        .map(|t| thread::spawn(move || worker(0xb0b0 + t * 7919)))
        .collect();
    let refused: usize = handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .sum();
    let pool = pool_stats();
    assert!(pool.arenas <= 3, "pool holds {} arenas", pool.arenas);
    assert!(pool.bytes <= 3 * 512 * 1024);
    assert!(refused > 0, "the limited states never reached their limit");
    eprintln!("threads: {refused} requests refused by limits; pool {pool:?}");
}
