//! Fuzzing the `Checker`: deliberately wrong `osize`, double frees, foreign and interior pointers
//! and overruns handed to a `Checker::new` over every backend: each is one exact complaint,
//! nothing crashes, nothing leaks. `PROPTEST_CASES` raises the case count.

use lmem::backends::{self};
use lmem::wrap::{Complaint, GUARD};
use lmem::{ALIGN, Backend, Checker, Tag};
use proptest::prelude::*;
use std::ptr::{self, NonNull};
mod common;
use common::{ABSURD, ABSURD_FLOOR, cases, pick, tag};

// ---------------------------------------------------------------------------------------------
// Hostile calls to a checker.

#[derive(Clone, Debug)]
enum Hostile {
    Alloc(usize, Tag),
    Free(usize),
    Resize(usize, usize),
    /// Free with `osize` off by a nonzero amount (wrapping).
    WrongFree(usize, usize),
    /// Resize with `osize` off by a nonzero amount, to this size.
    WrongResize(usize, usize, usize),
    /// Free a block freed before (skipped if the address is live again).
    DoubleFree(usize),
    /// Resize a block freed before.
    DoubleResize(usize, usize),
    /// An address this checker never gave out: a stack buffer, another backend's block, or a
    /// plain number; freed or resized.
    Foreign(u8, usize, bool),
    /// A pointer into the middle of a live block.
    Interior(usize, usize, bool),
    /// A byte written into the guard after a block.
    Overrun(usize, usize),
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let small = 1usize..3000;
    prop_oneof![
        6 => (small.clone(), tag()).prop_map(|(s, t)| Hostile::Alloc(s, t)),
        3 => any::<usize>().prop_map(Hostile::Free),
        3 => (any::<usize>(), prop_oneof![4 => small.clone(), 1 => prop::sample::select(ABSURD.to_vec())])
            .prop_map(|(i, s)| Hostile::Resize(i, s)),
        2 => (any::<usize>(), prop_oneof![1usize..64, Just(usize::MAX), Just(1 << 40)])
            .prop_map(|(i, d)| Hostile::WrongFree(i, d)),
        2 => (any::<usize>(), 1usize..64, small.clone())
            .prop_map(|(i, d, s)| Hostile::WrongResize(i, d, s)),
        2 => any::<usize>().prop_map(Hostile::DoubleFree),
        1 => (any::<usize>(), small.clone()).prop_map(|(i, s)| Hostile::DoubleResize(i, s)),
        2 => (0u8..3, any::<usize>(), any::<bool>()).prop_map(|(k, a, r)| Hostile::Foreign(k, a, r)),
        1 => (any::<usize>(), any::<usize>(), any::<bool>())
            .prop_map(|(i, o, r)| Hostile::Interior(i, o, r)),
        2 => (any::<usize>(), 0usize..GUARD).prop_map(|(i, at)| Hostile::Overrun(i, at)),
    ]
}

/// A block the checker gave out, as the hostile test tracks it.
#[derive(Clone, Copy, Debug)]
struct Live {
    p: NonNull<u8>,
    size: usize,
    /// First guard byte overwritten since the guard was last written.
    overrun: Option<usize>,
}

/// Runs hostile calls on `Checker::new(inner)`; returns the complaints (all expected).
fn hostile_run<B: Backend>(inner: B, calls: &[Hostile]) -> Vec<Complaint> {
    let mut c = Checker::new(inner);
    let mut other = backends::System::new();
    let foreign_block = other.allocate(64, Tag::Other).unwrap();
    let mut stack = [0u8; 64];
    let stack_ptr = NonNull::from(&mut stack).cast::<u8>();
    let mut live: Vec<Live> = Vec::new();
    // The guard bytes' value, read from the first block (the checker does not export it).
    let mut guard = 0u8;
    let mut freed: Vec<(NonNull<u8>, usize)> = Vec::new();
    let mut expected: Vec<Complaint> = Vec::new();

    // The complaints a check of block `b` with `osize` makes (`check` in the checker).
    fn on_check(b: &Live, osize: usize, op: &'static str, out: &mut Vec<Complaint>) {
        let ptr = b.p.as_ptr() as usize;
        if osize != b.size {
            out.push(Complaint::WrongSize {
                ptr,
                recorded: b.size,
                given: osize,
                op,
            });
        }
        if let Some(at) = b.overrun {
            out.push(Complaint::GuardOverwritten {
                ptr,
                size: b.size,
                at,
            });
        }
    }

    let is_live = |live: &[Live], p: NonNull<u8>| live.iter().any(|b| b.p == p);

    for call in calls {
        match *call {
            Hostile::Alloc(size, tag) => {
                let p = c.allocate(size, tag).expect("small allocations succeed");
                assert_eq!(p.as_ptr() as usize % ALIGN, 0);
                // SAFETY: a checker block has `GUARD` readable guard bytes after its `size`.
                guard = unsafe { p.as_ptr().add(size).read() };
                live.push(Live {
                    p,
                    size,
                    overrun: None,
                });
            }
            Hostile::Free(ref i) | Hostile::WrongFree(ref i, _) if !live.is_empty() => {
                let b = live.swap_remove(pick(i, live.len()));
                let osize = match *call {
                    Hostile::WrongFree(_, d) => b.size.wrapping_add(d),
                    _ => b.size,
                };
                on_check(&b, osize, "free", &mut expected);
                // SAFETY: `b.p` is a live block of `c`; `osize` may be wrong on purpose, which
                // the checker catches (it frees with the recorded size).
                unsafe { c.deallocate(b.p, osize) };
                freed.push((b.p, b.size));
            }
            Hostile::Resize(ref i, nsize) | Hostile::WrongResize(ref i, _, nsize)
                if !live.is_empty() =>
            {
                let k = pick(i, live.len());
                let b = live[k];
                let osize = match *call {
                    Hostile::WrongResize(_, d, _) => b.size.wrapping_add(d),
                    _ => b.size,
                };
                on_check(&b, osize, "resize", &mut expected);
                // SAFETY: `b.p` is a live block of `c` (the osize may be wrong on purpose).
                match unsafe { c.resize(b.p, osize, nsize) } {
                    Some(q) => {
                        assert!(nsize < ABSURD_FLOOR, "resize to {nsize} succeeded");
                        if q != b.p {
                            freed.push((b.p, b.size));
                        }
                        live[k] = Live {
                            p: q,
                            size: nsize,
                            overrun: None,
                        };
                    }
                    None => assert!(nsize >= ABSURD_FLOOR, "resize to {nsize} failed"),
                }
            }
            Hostile::DoubleFree(ref i) | Hostile::DoubleResize(ref i, _) if !freed.is_empty() => {
                let (p, size) = freed[pick(i, freed.len())];
                if is_live(&live, p) {
                    continue; // the address was handed out again: not a double free now
                }
                let addr = p.as_ptr() as usize;
                if let Hostile::DoubleResize(_, nsize) = *call {
                    expected.push(Complaint::UnknownBlock {
                        ptr: addr,
                        op: "resize",
                    });
                    // SAFETY: deliberately wrong; the checker refuses it without touching `p`.
                    assert!(unsafe { c.resize(p, size, nsize) }.is_none());
                } else {
                    expected.push(Complaint::UnknownBlock {
                        ptr: addr,
                        op: "free",
                    });
                    // SAFETY: deliberately wrong; refused without touching `p`.
                    unsafe { c.deallocate(p, size) };
                }
            }
            Hostile::Foreign(kind, addr, resize) => {
                let p = match kind {
                    0 => stack_ptr,
                    1 => foreign_block,
                    // Any address at all: never dereferenced by the checker.
                    _ => match NonNull::new(ptr::without_provenance_mut::<u8>(addr)) {
                        Some(p) => p,
                        None => continue,
                    },
                };
                if is_live(&live, p) {
                    continue;
                }
                let op = if resize { "resize" } else { "free" };
                expected.push(Complaint::UnknownBlock {
                    ptr: p.as_ptr() as usize,
                    op,
                });
                if resize {
                    // SAFETY: deliberately wrong; refused without touching `p`.
                    assert!(unsafe { c.resize(p, 64, 128) }.is_none());
                } else {
                    // SAFETY: deliberately wrong; refused without touching `p`.
                    unsafe { c.deallocate(p, 64) };
                }
            }
            Hostile::Interior(ref i, ref off, resize) if !live.is_empty() => {
                let b = live[pick(i, live.len())];
                if b.size < 2 {
                    continue;
                }
                let off = 1 + pick(off, b.size - 1);
                // SAFETY: `off < size`: inside the block.
                let p = unsafe { b.p.add(off) };
                let op = if resize { "resize" } else { "free" };
                expected.push(Complaint::UnknownBlock {
                    ptr: p.as_ptr() as usize,
                    op,
                });
                if resize {
                    // SAFETY: deliberately wrong; refused without touching the block.
                    assert!(unsafe { c.resize(p, b.size - off, 8) }.is_none());
                } else {
                    // SAFETY: deliberately wrong; refused without touching the block.
                    unsafe { c.deallocate(p, b.size - off) };
                }
            }
            Hostile::Overrun(ref i, at) if !live.is_empty() => {
                let k = pick(i, live.len());
                let b = &mut live[k];
                // SAFETY: the checker's block has `GUARD` bytes after the `size` we own: this
                // writes inside memory it allocated, which is the overrun it must detect.
                // Any value but the guard's: two overruns of one byte must not restore it.
                unsafe { b.p.as_ptr().add(b.size + at).write(!guard) };
                b.overrun = Some(b.overrun.map_or(at, |a| a.min(at)));
            }
            _ => {}
        }
        assert_eq!(c.complaints(), &expected[..], "complaints after {call:?}");
    }
    for b in live {
        on_check(&b, b.size, "free", &mut expected);
        // SAFETY: live with its size.
        unsafe { c.deallocate(b.p, b.size) };
    }
    assert_eq!(c.complaints(), &expected[..]);
    assert!(c.leaks().is_empty(), "{}", c.report());
    assert_eq!(c.live_bytes(), 0);
    assert_eq!(c.report().lines().count(), expected.len());
    // SAFETY: allocated above from `other` with 64 bytes.
    unsafe { other.deallocate(foreign_block, 64) };
    expected
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    #[test]
    fn checker_reports_every_hostile_call_on_every_backend(
        calls in prop::collection::vec(hostile(), 1..120),
    ) {
        for name in backends::names() {
            hostile_run(backends::AnyBackend::by_name(name).expect("compiled in"), &calls);
        }
    }
}

/// The hostile property finds complaints of every kind (so that it tests something).
#[test]
fn hostile_calls_cover_every_complaint() {
    let x = 0;
    let calls = [
        Hostile::Alloc(40, Tag::Table),
        Hostile::Alloc(8, Tag::String),
        Hostile::Overrun(x, 3),
        Hostile::WrongResize(x, 5, 100),
        Hostile::WrongFree(x, usize::MAX),
        Hostile::DoubleFree(x),
        Hostile::Foreign(0, 0, false),
        Hostile::Foreign(1, 0, true),
        Hostile::Foreign(2, usize::MAX, false),
        Hostile::Interior(x, x, false),
    ];
    let got = hostile_run(backends::System::new(), &calls);
    let has = |f: fn(&Complaint) -> bool| got.iter().any(f);
    assert!(has(|c| matches!(
        c,
        Complaint::WrongSize { op: "resize", .. }
    )));
    assert!(has(|c| matches!(
        c,
        Complaint::WrongSize { op: "free", .. }
    )));
    assert!(has(|c| matches!(
        c,
        Complaint::GuardOverwritten { at: 3, .. }
    )));
    assert!(has(|c| matches!(
        c,
        Complaint::UnknownBlock { op: "free", .. }
    )));
    assert!(has(|c| matches!(
        c,
        Complaint::UnknownBlock { op: "resize", .. }
    )));
    assert!(got.len() >= 8, "{got:?}");
}
