//! The global arena pool: arenas come back reset, the pool stays bounded, oversized arenas are
//! trimmed, and a limited state only takes an arena under its limit.
//!
//! The pool is process-wide, so this binary's tests take turns (`SERIAL`) and each starts from an
//! empty pool with the default bounds.
use lmem_backend::{Backend, Tag};
use lmem_bump::{Bump, PoolLimits, clear_pool, pool_limits, pool_stats, set_pool_limits};
use parking_lot::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` alone, from an empty pool with the default bounds, and restores them afterwards.
fn alone(f: impl FnOnce()) {
    let _turn = SERIAL.lock();
    set_pool_limits(PoolLimits::default());
    clear_pool();
    f();
    set_pool_limits(PoolLimits::default());
    clear_pool();
}

/// Makes a state, allocates `bytes` in 1 KiB blocks, and drops it (returning its arena).
fn use_and_drop(bytes: usize) {
    let mut b = Bump::new();
    for _ in 0..bytes / 1024 {
        b.allocate(1024, Tag::Other).expect("allocation");
    }
}

#[test]
fn the_pool_hands_back_reset_arenas() {
    alone(|| {
        let (first, reserved) = {
            let mut b = Bump::new();
            assert_eq!(
                b.stats().reserved,
                Some(0),
                "an empty pool gives a new, empty arena"
            );
            let p = b.allocate(64, Tag::Table).expect("allocation");
            b.allocate(64, Tag::Table).expect("allocation");
            (p, b.stats().reserved.unwrap())
        };
        assert_eq!(
            pool_stats().arenas,
            1,
            "the dropped state's arena is pooled"
        );
        assert_eq!(pool_stats().bytes, reserved);
        let mut b = Bump::new();
        assert_eq!(pool_stats().arenas, 0, "the pooled arena is handed out");
        let s = b.stats();
        assert_eq!(s.reserved, Some(reserved), "the arena comes back warm");
        assert_eq!((s.blocks, s.allocated), (Some(0), Some(0)), "... and reset");
        let p = b.allocate(64, Tag::Table).expect("allocation");
        assert_eq!(
            p, first,
            "the reset arena starts over where the first state started"
        );
    });
}

#[test]
fn the_pool_stays_bounded() {
    alone(|| {
        set_pool_limits(PoolLimits {
            arenas: 3,
            ..PoolLimits::default()
        });
        assert_eq!(pool_limits().arenas, 3);
        let states: Vec<Bump> = (0..10)
            .map(|_| {
                let mut b = Bump::new();
                b.allocate(100, Tag::Other).expect("allocation");
                b
            })
            .collect();
        drop(states);
        assert_eq!(
            pool_stats().arenas,
            3,
            "at most `arenas` idle arenas are kept"
        );
        // Lowering the bound trims at once.
        set_pool_limits(PoolLimits {
            arenas: 1,
            ..PoolLimits::default()
        });
        assert_eq!(pool_stats().arenas, 1);
        // Zero disables pooling.
        set_pool_limits(PoolLimits {
            arenas: 0,
            ..PoolLimits::default()
        });
        assert_eq!(pool_stats().arenas, 0);
        use_and_drop(4096);
        assert_eq!(pool_stats().arenas, 0);
    });
}

#[test]
fn oversized_arenas_are_trimmed() {
    alone(|| {
        set_pool_limits(PoolLimits {
            arena_bytes: 64 * 1024,
            ..PoolLimits::default()
        });
        use_and_drop(1 << 20);
        assert_eq!(
            pool_stats().arenas,
            0,
            "an arena that grew past the bound is dropped"
        );
        use_and_drop(8 * 1024);
        let small = pool_stats();
        assert_eq!(small.arenas, 1, "a small arena is kept");
        assert!(small.bytes <= 64 * 1024);
        // Raising the bound keeps a large one (the small arena, taken and grown); lowering the
        // bound again trims it from the pool.
        set_pool_limits(PoolLimits {
            arena_bytes: 4 << 20,
            ..PoolLimits::default()
        });
        use_and_drop(1 << 20);
        let big = pool_stats();
        assert_eq!(big.arenas, 1);
        assert!(big.bytes > 64 * 1024);
        set_pool_limits(PoolLimits {
            arena_bytes: 64 * 1024,
            ..PoolLimits::default()
        });
        assert_eq!(
            pool_stats().arenas,
            0,
            "lowering the bound drops the big idle arena"
        );
    });
}

#[test]
fn a_limited_state_only_takes_an_arena_under_its_limit() {
    alone(|| {
        use_and_drop(256 * 1024);
        let big = pool_stats();
        assert_eq!(big.arenas, 1);
        assert!(big.bytes > 16 * 1024);
        {
            let b = Bump::with_limit(16 * 1024);
            assert_eq!(
                b.stats().reserved,
                Some(0),
                "the big arena would break the limit"
            );
            assert_eq!(pool_stats(), big, "it stays in the pool");
        }
        assert_eq!(
            pool_stats(),
            big,
            "an arena that never got a chunk is not pooled"
        );
        // A limited state that used its arena gives it back without its limit.
        {
            let mut b = Bump::with_limit(8 * 1024);
            b.allocate(1024, Tag::Other).expect("under the limit");
        }
        assert_eq!(pool_stats().arenas, 2);
        let mut unlimited = Bump::new();
        assert!(
            unlimited.stats().reserved.unwrap() <= 8 * 1024,
            "the warmest arena first"
        );
        unlimited
            .allocate(1 << 20, Tag::Other)
            .expect("no limit inherited from the pool");
    });
}
