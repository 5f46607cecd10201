//! A quick speed check, not a benchmark suite: ns per allocate/free pair at 16, 64 and 512 B, a
//! batch pattern and a Lua-like mix, against the system backend; plus two mimalloc heaps used
//! alternately on one thread. Run with
//! `cargo test --release -p lmem-mimalloc --test speed -- --ignored --nocapture`.
use lmem_backend::conformance::Rng;
use lmem_backend::{Backend, Tag};
use lmem_mimalloc::Mimalloc;
use lmem_system::System;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Instant;

/// Median of `runs` timings of `f`, in ns per operation (`f` returns its operation count).
fn median_ns(runs: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let n = f();
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[runs / 2]
}

/// Allocate and free one block of `size` bytes, `n` times: the allocator's fast paths.
fn pairs<B: Backend>(b: &mut B, size: usize, n: usize) -> usize {
    for _ in 0..n {
        let p = b.allocate(size, Tag::String).unwrap();
        black_box(p);
        // SAFETY: live block of `size` bytes.
        unsafe { b.deallocate(p, size) };
    }
    n
}

/// Allocate 1024 blocks of `size`, then free them in order, `rounds` times.
fn batches<B: Backend>(b: &mut B, size: usize, rounds: usize) -> usize {
    let mut v = Vec::with_capacity(1024);
    for _ in 0..rounds {
        for _ in 0..1024 {
            v.push(b.allocate(size, Tag::Table).unwrap());
        }
        for p in v.drain(..) {
            // SAFETY: live block of `size` bytes.
            unsafe { b.deallocate(p, size) };
        }
    }
    rounds * 1024
}

/// A Lua-like mix: 50% allocations, 20% resizes, 30% frees over a live set of up to 20 000
/// blocks, sizes mostly ≤ 64 B; everything freed at the end. Counts every call.
fn lua_mix<B: Backend>(b: &mut B, n: usize) -> usize {
    let mut rng = Rng::new(7);
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    for _ in 0..n {
        let r = rng.below(10);
        if r < 5 || live.is_empty() {
            let s = rng.lua_size(4096);
            live.push((b.allocate(s, Tag::ALL[r % 8]).unwrap(), s));
        } else if r < 7 {
            let i = rng.below(live.len());
            let (p, s) = live[i];
            let ns = rng.lua_size(4096);
            // SAFETY: live block of `s` bytes.
            live[i] = (unsafe { b.resize(p, s, ns) }.unwrap(), ns);
        } else {
            let (p, s) = live.swap_remove(rng.below(live.len()));
            // SAFETY: live block of `s` bytes.
            unsafe { b.deallocate(p, s) };
        }
        if live.len() > 20_000 {
            let (p, s) = live.swap_remove(rng.below(live.len()));
            // SAFETY: live block of `s` bytes.
            unsafe { b.deallocate(p, s) };
        }
    }
    let calls = n + live.len();
    for (p, s) in live {
        // SAFETY: live block of `s` bytes.
        unsafe { b.deallocate(p, s) };
    }
    calls
}

/// Prints every scenario for one backend, so backends are compared in the same run.
fn report<B: Backend>(b: &mut B) {
    let name = b.name().to_owned();
    for size in [16, 64, 512] {
        let ns = median_ns(7, || pairs(b, size, 1_000_000));
        println!("{name:>9} pair {size:>4} B: {ns:6.2} ns/pair");
    }
    for size in [16, 64, 512] {
        let ns = median_ns(7, || batches(b, size, 300));
        println!("{name:>9} batch {size:>3} B: {ns:6.2} ns/pair");
    }
    let ns = median_ns(7, || lua_mix(b, 1_000_000));
    println!("{name:>9} lua mix:     {ns:6.2} ns/call");
}

/// The backend against the system malloc, same process, same scenarios.
#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn speed_against_system() {
    report(&mut System::new());
    report(&mut Mimalloc::new());
}

/// Two heaps used alternately on one thread (two Lua states driven by one host thread): mimalloc
/// 3.x caches one thread-local heap, so this shows what switching costs.
#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn two_heaps_alternating() {
    let mut a = Mimalloc::new();
    let mut b = Mimalloc::new();
    for size in [16, 64, 512] {
        let ns = median_ns(7, || {
            let mut n = 0;
            for _ in 0..500_000 {
                n += pairs(&mut a, size, 1) + pairs(&mut b, size, 1);
            }
            n
        });
        println!(" mimalloc 2 heaps alternating {size:>4} B: {ns:6.2} ns/pair");
    }
}
