//! The wrapper backends: each passes the conformance kit, and each does its own job.

use lmem::backends::System;
use lmem::wrap::{CallKind, Complaint, GUARD};
use lmem::{Backend, Checker, FaultInjection, FaultPlan, Monitor, Registry, Tag, Tracking};
use lmem_backend::Ownership;

mod tracking {
    lmem_backend::conformance_tests!(lmem::Tracking::with_log(lmem::backends::System::new()));
}
mod monitor {
    lmem_backend::conformance_tests!(exact: lmem::Monitor::new(lmem::backends::System::new()));
}
mod checker {
    lmem_backend::conformance_tests!(exact: lmem::Checker::strict(lmem::backends::System::new()));
}
mod fault_injection_never {
    lmem_backend::conformance_tests!(lmem::FaultInjection::new(
        lmem::backends::System::new(),
        lmem::FaultPlan::Never
    ));
}
mod registry {
    lmem_backend::conformance_tests!(exact: lmem::Registry::new(lmem::backends::System::new()));
}
mod composed {
    lmem_backend::conformance_tests!(lmem::Checker::strict(lmem::Tracking::new(
        lmem::Monitor::new(lmem::backends::System::new())
    )));
}

#[test]
fn tracking_counts_and_logs_every_call() {
    let mut t = Tracking::with_log(System::new());
    let p = t.allocate(10, Tag::String).unwrap();
    // SAFETY: live blocks with their sizes.
    let q = unsafe { t.resize(p, 10, 100) }.unwrap();
    // SAFETY: `q` is live with 100 bytes; the absurd grow fails and leaves it live.
    assert!(unsafe { t.resize(q, 100, usize::MAX) }.is_none());
    // SAFETY: `q` is live with 100 bytes.
    unsafe { t.deallocate(q, 100) };
    let s = t.stats();
    assert_eq!(
        (s.allocations, s.resizes, s.frees, s.failures),
        (1, 1, 1, 1)
    );
    assert_eq!((s.live, s.peak), (0, 100));
    let log = t.log();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].op, CallKind::Allocate(Tag::String));
    assert_eq!(log[0].result, p.as_ptr() as usize);
    assert_eq!((log[1].old_size, log[1].new_size), (10, 100));
    assert_eq!(log[2].result, 0, "a failure logs no result");
    assert_eq!(
        (log[3].op, log[3].ptr),
        (CallKind::Free, q.as_ptr() as usize)
    );
    assert_eq!(t.take_log().len(), 4);
    assert!(t.log().is_empty());
}

#[test]
fn monitor_matches_frees_by_pointer_and_reports_leaks() {
    let mut m = Monitor::new(System::new());
    // Two blocks of the same size: freeing the second must not forget the first (the design
    // notes' monitor matched the first record instead of the freed pointer).
    let a = m.allocate(32, Tag::Table).unwrap();
    let b = m.allocate(32, Tag::Table).unwrap();
    let c = m.allocate(2000, Tag::String).unwrap();
    // SAFETY: `b` is live with 32 bytes.
    unsafe { m.deallocate(b, 32) };
    assert_eq!(m.record(a).map(|r| r.seq), Some(1));
    assert!(m.record(b).is_none());
    let report = m.report();
    assert_eq!(report.allocations, 3);
    assert_eq!(report.leaks.len(), 2);
    assert_eq!(report.leaks[0].0, a.as_ptr() as usize, "oldest first");
    assert_eq!(report.leaked_bytes(), 2032);
    assert_eq!(report.sizes[Tag::Table.index()].coarse(), [2, 0, 0]);
    assert_eq!(report.sizes[Tag::String.index()].coarse(), [0, 0, 1]);
    let text = report.to_string();
    assert!(text.contains("2 blocks leaked, 2032 B"), "{text}");
    // SAFETY: live blocks with their sizes.
    unsafe {
        m.deallocate(a, 32);
        m.deallocate(c, 2000);
    }
    assert!(m.report().leaks.is_empty());
    assert!(m.report().to_string().contains("no leaks"));
}

#[test]
fn checker_catches_wrong_osize_double_free_foreign_pointer_overrun_and_leaks() {
    let mut c = Checker::new(System::new());
    let p = c.allocate(24, Tag::Other).unwrap();
    // New memory is filled, not zero.
    // SAFETY: 24 readable bytes.
    let fresh = unsafe { std::slice::from_raw_parts(p.as_ptr(), 24) };
    assert!(fresh.iter().all(|&b| b == 0xCD));
    // Wrong osize on resize: caught, and the recorded size is used.
    // SAFETY: `p` is live (with 24 bytes, not 20: that is the point).
    let p = unsafe { c.resize(p, 20, 48) }.unwrap();
    assert!(matches!(
        c.complaints()[0],
        Complaint::WrongSize {
            recorded: 24,
            given: 20,
            op: "resize",
            ..
        }
    ));
    // Overrun: write one byte past the end.
    // SAFETY: the checker's block has GUARD bytes after the 48 we own.
    unsafe { p.as_ptr().add(48).write(0) };
    // SAFETY: `p` is live with 48 bytes.
    unsafe { c.deallocate(p, 48) };
    assert!(matches!(
        c.complaints()[1],
        Complaint::GuardOverwritten {
            size: 48,
            at: 0,
            ..
        }
    ));
    // Double free: caught and not passed on (the process would crash otherwise).
    // SAFETY: deliberately wrong; the checker refuses it without touching memory.
    unsafe { c.deallocate(p, 48) };
    assert!(matches!(
        c.complaints()[2],
        Complaint::UnknownBlock { op: "free", .. }
    ));
    // Foreign pointer.
    let mut local = [0u8; 64];
    let foreign = std::ptr::NonNull::from(&mut local).cast::<u8>();
    // SAFETY: deliberately wrong; refused.
    unsafe { c.deallocate(foreign, 64) };
    assert!(matches!(c.complaints()[3], Complaint::UnknownBlock { .. }));
    assert_eq!(c.owns(foreign), Ownership::Foreign);
    // Leaks.
    let leak = c.allocate(100, Tag::Proto).unwrap();
    assert_eq!(c.owns(leak), Ownership::Owned);
    assert_eq!(c.leaks().len(), 1);
    assert_eq!(c.live_bytes(), 100);
    let report = c.report();
    assert_eq!(report.lines().count(), 5, "{report}");
    assert!(report.contains("leak #2 of 100 B (proto)"), "{report}");
    assert!(!c.is_clean());
    // SAFETY: live with 100 bytes.
    unsafe { c.deallocate(leak, 100) };
    assert_eq!(c.leaks().len(), 0);
}

#[test]
fn checker_fills_grown_memory_and_moves_the_guard() {
    let mut c = Checker::new(System::new());
    let p = c.allocate(64, Tag::Other).unwrap();
    // SAFETY: 64 writable bytes.
    unsafe { p.as_ptr().write_bytes(0x11, 64) };
    // SAFETY: live with 64 bytes.
    let q = unsafe { c.resize(p, 64, 128) }.unwrap();
    // SAFETY: 128 readable bytes: 64 kept, 64 new (filled).
    let s = unsafe { std::slice::from_raw_parts(q.as_ptr(), 128) };
    assert!(s[..64].iter().all(|&b| b == 0x11));
    assert!(
        s[64..].iter().all(|&b| b == 0xCD),
        "grown memory is filled as new"
    );
    // SAFETY: the guard follows the 128 bytes.
    let guard = unsafe { std::slice::from_raw_parts(q.as_ptr().add(128), GUARD) };
    assert!(guard.iter().all(|&b| b == 0xFD));
    // SAFETY: live with 128 bytes.
    unsafe { c.deallocate(q, 128) };
    assert!(c.is_clean());
}

#[test]
fn fault_injection_plans() {
    // The N-th request only.
    let mut f = FaultInjection::fail_at(System::new(), 3);
    let got: Vec<bool> = (0..5)
        .map(|_| match f.allocate(8, Tag::Other) {
            Some(p) => {
                // SAFETY: a live block of 8 bytes.
                unsafe { f.deallocate(p, 8) };
                true
            }
            None => false,
        })
        .collect();
    assert_eq!(got, [true, true, false, true, true]);
    assert_eq!((f.requests(), f.injected()), (5, 1));
    // From the N-th on.
    let mut g = FaultInjection::new(System::new(), FaultPlan::From(2));
    let a = g.allocate(8, Tag::Other).unwrap();
    assert!(g.allocate(8, Tag::Other).is_none());
    // SAFETY: `a` is live with 8 bytes: a grow fails, a shrink does not (by default).
    assert!(unsafe { g.resize(a, 8, 16) }.is_none());
    // SAFETY: as above.
    let a = unsafe { g.resize(a, 8, 4) }.expect("shrinks do not fail by default");
    // SAFETY: live with 4 bytes; frees never fail.
    unsafe { g.deallocate(a, 4) };
    // Shrinks too, when asked.
    let mut h = FaultInjection::new(System::new(), FaultPlan::From(2)).fail_shrinks(true);
    let a = h.allocate(64, Tag::Other).unwrap();
    // SAFETY: live with 64 bytes.
    assert!(unsafe { h.resize(a, 64, 8) }.is_none());
    // SAFETY: live with 64 bytes.
    unsafe { h.deallocate(a, 64) };
    // Above a byte limit.
    let mut l = FaultInjection::fail_above(System::new(), 100);
    let a = l.allocate(60, Tag::Other).unwrap();
    assert!(l.allocate(41, Tag::Other).is_none());
    let b = l.allocate(40, Tag::Other).unwrap();
    // SAFETY: live blocks with their sizes.
    unsafe {
        l.deallocate(a, 60);
        l.deallocate(b, 40);
    }
    // Random, deterministic from the seed.
    let run = |seed| {
        let mut r = FaultInjection::fail_randomly(System::new(), 0.3, seed);
        let v: Vec<bool> = (0..200)
            .map(|_| match r.allocate(16, Tag::Other) {
                Some(p) => {
                    // SAFETY: live with 16 bytes.
                    unsafe { r.deallocate(p, 16) };
                    true
                }
                None => false,
            })
            .collect();
        (v, r.injected())
    };
    let (a, na) = run(7);
    assert_eq!(a, run(7).0, "same seed, same failures");
    assert_ne!(a, run(8).0);
    assert!((30..=90).contains(&na), "about 30% of 200 fail: {na}");
}

#[test]
fn registry_makes_ownership_exact() {
    let mut sys = System::new();
    let p = sys.allocate(16, Tag::Other).unwrap();
    assert_eq!(sys.owns(p), Ownership::Unknown);
    let mut r = Registry::new(System::new());
    let q = r.allocate(16, Tag::Other).unwrap();
    assert_eq!(r.owns(q), Ownership::Owned);
    assert_eq!(r.owns(p), Ownership::Foreign);
    // SAFETY: live blocks of their own backends.
    let q2 = unsafe { r.resize(q, 16, 5000) }.unwrap();
    assert_eq!(r.owns(q2), Ownership::Owned);
    // SAFETY: live blocks of their own backends.
    unsafe {
        r.deallocate(q2, 5000);
        sys.deallocate(p, 16);
    }
    assert_eq!(r.live_blocks(), 0);
}
