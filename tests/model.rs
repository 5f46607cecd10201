//! Property tests: random allocate / resize / free sequences through the heap, against a model,
//! over the system backend and each wrapper; the heap's accounting equals the model after every
//! step, and every block keeps its content.

use lmem::backends::System;
use lmem::{
    Backend, Checker, FaultInjection, FaultPlan, Heap, Monitor, Registry, Swap, Tag, Tracking,
};
use lmem_backend::conformance::{Step, fill, ops, verify};
use proptest::prelude::*;
use std::ptr::NonNull;

/// Runs `ops` through a heap over `backend`, checking accounting after every step. A limit makes
/// some requests fail; failures must change nothing.
fn run<B: Backend>(backend: B, ops: &[Step], limit: Option<usize>) -> Heap<B> {
    let mut heap = Heap::new(backend);
    heap.set_limit(limit);
    let mut live: Vec<(*mut u8, usize, u64)> = Vec::new();
    let (mut allocs, mut frees, mut resizes, mut failures, mut peak) = (0u64, 0u64, 0u64, 0u64, 0);
    let mut by_tag = [0u64; Tag::COUNT];
    for (seed, &op) in ops.iter().enumerate() {
        let seed = seed as u64;
        match op {
            Step::Alloc(n, tag) => match heap.try_malloc(n, tag) {
                Ok(p) => {
                    // SAFETY: a fresh block of `n` bytes.
                    unsafe { fill(NonNull::new(p).unwrap(), n, seed) };
                    live.push((p, n, seed));
                    allocs += 1;
                    by_tag[tag.index()] += 1;
                }
                Err(e) => {
                    assert!(limit.is_some(), "unexpected failure {e}");
                    failures += 1;
                }
            },
            Step::Resize(i, n) if !live.is_empty() => {
                let i = i % live.len();
                let (p, o, s) = live[i];
                // SAFETY: `p` is live with `o` bytes.
                match unsafe { heap.try_realloc(p, o, n) } {
                    Ok(q) => {
                        let q = NonNull::new(q).unwrap();
                        // SAFETY: `q` keeps min(o, n) bytes and has `n`.
                        unsafe {
                            verify(q, o.min(n), s, "resize keeps the prefix");
                            fill(q, n, s);
                        }
                        live[i] = (q.as_ptr(), n, s);
                        resizes += 1;
                    }
                    Err(_) => {
                        assert!(
                            limit.is_some() && n > o,
                            "only a grow under a limit may fail"
                        );
                        // SAFETY: the failed resize left `p` untouched.
                        unsafe { verify(NonNull::new(p).unwrap(), o, s, "failed resize") };
                        failures += 1;
                    }
                }
            }
            Step::Free(i) if !live.is_empty() => {
                let (p, o, s) = live.swap_remove(i % live.len());
                // SAFETY: `p` is live with `o` bytes, freed once.
                unsafe {
                    verify(NonNull::new(p).unwrap(), o, s, "content at free");
                    heap.free(p, o);
                }
                frees += 1;
            }
            _ => {}
        }
        let bytes: usize = live.iter().map(|b| b.1).sum();
        peak = peak.max(bytes);
        let st = heap.stats();
        assert_eq!(st.live, bytes, "live bytes after {op:?}");
        assert_eq!(st.peak, peak);
        assert_eq!(
            (st.allocations(), st.frees, st.resizes, st.failures),
            (allocs, frees, resizes, failures)
        );
        assert_eq!(st.live_blocks(), live.len() as u64);
        for t in Tag::ALL {
            assert_eq!(st.by_tag[t.index()].count, by_tag[t.index()]);
        }
        if let Some(l) = limit {
            assert!(st.live <= l, "the limit holds");
        }
    }
    for (p, o, _) in live {
        // SAFETY: live with `o` bytes.
        unsafe { heap.free(p, o) };
    }
    assert_eq!(heap.stats().live, 0);
    heap
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn heap_over_system(ops in ops(70_000, 400), limit in proptest::option::of(0usize..200_000)) {
        run(System::new(), &ops, limit);
    }

    #[test]
    fn heap_over_tracking(ops in ops(70_000, 400)) {
        let heap = run(Tracking::new(System::new()), &ops, None);
        prop_assert_eq!(heap.backend().stats().live, 0);
        prop_assert_eq!(heap.backend().stats().peak, heap.stats().peak);
    }

    #[test]
    fn heap_over_monitor(ops in ops(70_000, 400)) {
        let heap = run(Monitor::new(System::new()), &ops, None);
        prop_assert!(heap.backend().report().leaks.is_empty());
        prop_assert_eq!(heap.backend().report().allocations, heap.stats().allocations());
    }

    #[test]
    fn heap_over_checker(ops in ops(70_000, 400), limit in proptest::option::of(0usize..200_000)) {
        let heap = run(Checker::new(System::new()), &ops, limit);
        prop_assert!(heap.backend().is_clean(), "{}", heap.backend().report());
    }

    #[test]
    fn heap_over_fault_injection_never(ops in ops(70_000, 400)) {
        run(FaultInjection::new(System::new(), FaultPlan::Never), &ops, None);
    }

    #[test]
    fn heap_over_registry_and_swap(ops in ops(70_000, 400)) {
        let heap = run(Swap::new(lmem::AnyBackend::exact(Registry::new(System::new()))), &ops, None);
        prop_assert_eq!(heap.backend().swaps(), 0);
    }
}

/// Fault injection fails requests the model cannot predict from sizes, so it gets its own run:
/// whatever fails, accounting equals what succeeded and the Checker finds nothing.
#[test]
fn heap_over_random_faults_stays_exact() {
    for seed in 0..20 {
        let backend = Checker::strict(FaultInjection::fail_randomly(System::new(), 0.2, seed));
        let mut heap = Heap::new(backend);
        let mut rng = lmem::Rng::new(seed);
        let mut live = Vec::new();
        for _ in 0..3000 {
            match lmem_backend::conformance::random_step(&mut rng, 8192) {
                Step::Alloc(n, t) => {
                    if let Ok(p) = heap.try_malloc(n, t) {
                        live.push((p, n));
                    }
                }
                Step::Resize(i, n) if !live.is_empty() => {
                    let i = i % live.len();
                    // SAFETY: live with its size.
                    if let Ok(q) = unsafe { heap.try_realloc(live[i].0, live[i].1, n) } {
                        live[i] = (q, n);
                    }
                }
                Step::Free(i) if !live.is_empty() => {
                    let (p, n) = live.swap_remove(i % live.len());
                    // SAFETY: live with its size.
                    unsafe { heap.free(p, n) };
                }
                _ => {}
            }
            assert_eq!(heap.stats().live, live.iter().map(|b| b.1).sum::<usize>());
        }
        assert!(heap.stats().failures > 0);
        for (p, n) in live {
            // SAFETY: live with its size.
            unsafe { heap.free(p, n) };
        }
        assert!(heap.backend().is_clean(), "{}", heap.backend().report());
    }
}
