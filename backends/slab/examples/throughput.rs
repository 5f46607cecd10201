//! A quick throughput check (not the project's benches): ns per operation of a Lua-like
//! allocation mix on `slab`, `system` (libc malloc) and a mimalloc heap, in the same run.
//!
//! ```text
//! cargo run --release -p lmem-slab --example throughput            # timings, medians of 5
//! cargo run --release -p lmem-slab --example throughput -- rss slab # peak RSS of one backend
//! cargo run --release -p lmem-slab --example throughput -- one slab gc 5 # one backend, one scenario
//! ```
use lmem_backend::conformance::Rng;
use lmem_backend::{Backend, Tag};
use lmem_slab::Slab;
use lmem_system::System;
use std::ptr::NonNull;

/// A clock of this thread's CPU time, so that time spent preempted on a busy machine is not
/// counted (shared machines: other builds run alongside).
struct Instant(u64);

impl Instant {
    fn now() -> Self {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-parameter.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Instant(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
    fn elapsed_ns(&self) -> u64 {
        Instant::now().0 - self.0
    }
}

/// A mimalloc heap per value, sized free: what a mimalloc-heap backend does. Sizes are rounded
/// to 16 so that mimalloc's bins give 16-aligned blocks.
struct MiHeap(*mut libmimalloc_sys::mi_heap_t);

impl MiHeap {
    fn new() -> Self {
        // SAFETY: no preconditions.
        MiHeap(unsafe { libmimalloc_sys::mi_heap_new() })
    }
}

impl Drop for MiHeap {
    fn drop(&mut self) {
        // SAFETY: the heap is ours and its blocks are not used afterwards.
        unsafe { libmimalloc_sys::mi_heap_destroy(self.0) }
    }
}

// SAFETY: forwards to mimalloc, whose blocks of 16-multiple sizes are 16-aligned and disjoint;
// realloc keeps the prefix and leaves the block on failure.
unsafe impl Backend for MiHeap {
    fn name(&self) -> &str {
        "mimalloc-heap"
    }
    #[inline]
    fn allocate(&mut self, size: usize, _: Tag) -> Option<NonNull<u8>> {
        // SAFETY: a live heap of this thread.
        NonNull::new(unsafe { libmimalloc_sys::mi_heap_malloc(self.0, size.next_multiple_of(16)) })
            .map(NonNull::cast)
    }
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: a live mimalloc block of (rounded) size `size`.
        unsafe { libmimalloc_sys::mi_free_size(ptr.as_ptr().cast(), size.next_multiple_of(16)) }
    }
    #[inline]
    unsafe fn resize(&mut self, ptr: NonNull<u8>, _: usize, new: usize) -> Option<NonNull<u8>> {
        // SAFETY: a live block of this heap.
        let q = unsafe {
            libmimalloc_sys::mi_heap_realloc(self.0, ptr.as_ptr().cast(), new.next_multiple_of(16))
        };
        NonNull::new(q).map(NonNull::cast)
    }
}

/// The harness floor: a ring of 16 MiB handed out in order, frees ignored. Its time per op is
/// what the loop itself costs; subtract it to see an allocator's own cost.
struct Null(Vec<u8>, usize);

// SAFETY: not a real backend (blocks are reused round-robin); only the throughput loop uses
// it, which never reads back what it wrote.
unsafe impl Backend for Null {
    fn name(&self) -> &str {
        "null"
    }
    #[inline]
    fn allocate(&mut self, size: usize, _: Tag) -> Option<NonNull<u8>> {
        if self.1 + size + 16 > self.0.len() {
            self.1 = 0;
        }
        let p = NonNull::new(self.0[self.1..].as_mut_ptr())?;
        self.1 = (self.1 + size).next_multiple_of(16);
        Some(p)
    }
    #[inline]
    unsafe fn deallocate(&mut self, _: NonNull<u8>, _: usize) {}
    #[inline]
    unsafe fn resize(&mut self, _: NonNull<u8>, _: usize, new: usize) -> Option<NonNull<u8>> {
        self.allocate(new, Tag::Other)
    }
}

/// A size from Lua 5.4's object mix: strings 25..64, closures/upvalues 40/48, tables 56,
/// CallInfo 64, some mid-size vectors, rare big ones. Averages about 48 bytes.
fn lua_size(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0..=349 => 25 + rng.below(40),
        350..=509 => 40,
        510..=609 => 48,
        610..=759 => 56,
        760..=839 => 32,
        840..=919 => 64,
        920..=984 => 65 + rng.below(192),
        985..=998 => 257 + rng.below(768),
        _ => 1025 + rng.below(16 * 1024),
    }
}

#[derive(Clone, Copy)]
enum Op {
    Alloc(usize),
    Free(usize),
    Resize(usize, usize),
}

/// `n` operations keeping about `live` blocks: allocations and random frees balance around the
/// target, with 5% resizes.
fn script(seed: u64, n: usize, live: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut count = 0usize;
    (0..n)
        .map(|_| {
            let r = rng.below(100);
            if count > 0 && r < 5 {
                Op::Resize(rng.below(count), lua_size(&mut rng))
            } else if count == 0 || (count < live && r < 55) || (count >= live && r < 45) {
                count += 1;
                Op::Alloc(lua_size(&mut rng))
            } else {
                count -= 1;
                Op::Free(rng.below(count + 1))
            }
        })
        .collect()
}

/// Runs `ops` on `b`; every new block gets its first bytes written, as Lua initialises an
/// object. Returns ns per op.
fn run<B: Backend>(b: &mut B, ops: &[Op]) -> f64 {
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::with_capacity(1 << 20);
    let t = Instant::now();
    for &op in ops {
        match op {
            Op::Alloc(s) => {
                let p = b.allocate(s, Tag::Other).unwrap();
                // SAFETY: fresh block of at least `s` bytes.
                unsafe { p.as_ptr().write_bytes(0, s.min(64)) };
                live.push((p, s));
            }
            Op::Free(i) => {
                let (p, s) = live.swap_remove(i);
                // SAFETY: live block of size `s`.
                unsafe { b.deallocate(p, s) };
            }
            Op::Resize(i, n) => {
                let (p, s) = live[i];
                // SAFETY: live block of size `s`.
                let q = unsafe { b.resize(p, s, n) }.unwrap();
                live[i] = (q, n);
            }
        }
    }
    for (p, s) in live.drain(..) {
        // SAFETY: live block of size `s`.
        unsafe { b.deallocate(p, s) };
    }
    t.elapsed_ns() as f64 / ops.len() as f64
}

/// A GC-like cycle: a burst of new objects, then a sweep that frees most of them in creation
/// order, survivors accumulating up to a cap (which then dies wholesale, like a full cycle).
fn gc_like<B: Backend>(b: &mut B, rounds: usize) -> f64 {
    let mut rng = Rng::new(77);
    let mut old: Vec<(NonNull<u8>, usize)> = Vec::new();
    let mut young: Vec<(NonNull<u8>, usize)> = Vec::with_capacity(20_000);
    let mut ops = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for _ in 0..20_000 {
            let s = lua_size(&mut rng);
            let p = b.allocate(s, Tag::Other).unwrap();
            // SAFETY: fresh block of at least `s` bytes.
            unsafe { p.as_ptr().write_bytes(0, s.min(64)) };
            young.push((p, s));
        }
        for (p, s) in young.drain(..) {
            if rng.below(10) == 0 {
                old.push((p, s));
            } else {
                // SAFETY: live block of size `s`.
                unsafe { b.deallocate(p, s) };
            }
        }
        ops += 40_000;
        if old.len() > 200_000 {
            ops += old.len();
            for (p, s) in old.drain(..) {
                // SAFETY: live block of size `s`.
                unsafe { b.deallocate(p, s) };
            }
        }
    }
    for (p, s) in old.drain(..) {
        // SAFETY: live block of size `s`.
        unsafe { b.deallocate(p, s) };
    }
    t.elapsed_ns() as f64 / ops as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_kib() -> i64 {
    // SAFETY: `ru` is a valid out-parameter.
    unsafe {
        let mut ru: libc_rusage = std::mem::zeroed();
        getrusage(0, &mut ru);
        ru.maxrss
    }
}

#[repr(C)]
struct libc_rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    rest: [i64; 13],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let churn = script(1, 2_000_000, 2_000);
    let big = script(2, 3_000_000, 500_000);
    if args.get(1).map(String::as_str) == Some("one") {
        // One backend, one scenario (churn, big or gc), for a profiler or a script that
        // alternates builds.
        let scenario = args.get(3).map(String::as_str).unwrap_or("churn");
        let ops = if scenario == "big" { &big } else { &churn };
        let reps: usize = args.get(4).and_then(|r| r.parse().ok()).unwrap_or(1);
        let mut t = 0.0;
        for _ in 0..reps {
            t += match (args.get(2).map(String::as_str), scenario) {
                (Some("slab"), "gc") => gc_like(&mut Slab::new(), 100),
                (Some("system"), "gc") => gc_like(&mut System::new(), 100),
                (Some("null"), "gc") => gc_like(&mut Null(vec![1; 16 << 20], 0), 100),
                (_, "gc") => gc_like(&mut MiHeap::new(), 100),
                (Some("slab"), _) => run(&mut Slab::new(), ops),
                (Some("system"), _) => run(&mut System::new(), ops),
                (Some("null"), _) => run(&mut Null(vec![1; 16 << 20], 0), ops),
                _ => run(&mut MiHeap::new(), ops),
            } / reps as f64;
        }
        println!("{t:.2} ns/op");
        return;
    }
    if args.get(1).map(String::as_str) == Some("rss") {
        let base = peak_rss_kib();
        let name = args.get(2).map(String::as_str).unwrap_or("slab");
        // Both scenarios by default; `big` or `gc` as a third argument for one of them.
        let which = args.get(3).map(String::as_str).unwrap_or("both");
        let (do_big, do_gc) = (which != "gc", which != "big");
        let t = match name {
            "slab" => {
                (if do_big {
                    run(&mut Slab::new(), &big)
                } else {
                    0.0
                }) + (if do_gc {
                    gc_like(&mut Slab::new(), 100)
                } else {
                    0.0
                })
            }
            "system" => {
                (if do_big {
                    run(&mut System::new(), &big)
                } else {
                    0.0
                }) + (if do_gc {
                    gc_like(&mut System::new(), 100)
                } else {
                    0.0
                })
            }
            _ => {
                (if do_big {
                    run(&mut MiHeap::new(), &big)
                } else {
                    0.0
                }) + (if do_gc {
                    gc_like(&mut MiHeap::new(), 100)
                } else {
                    0.0
                })
            }
        };
        println!(
            "{name}: peak RSS {} KiB above the scripts ({t:.1})",
            peak_rss_kib() - base
        );
        return;
    }
    let scenarios: [(&str, &dyn Fn(usize) -> f64); 3] = [
        ("churn (2k live)", &|k| match k {
            0 => run(&mut Slab::new(), &churn),
            1 => run(&mut System::new(), &churn),
            2 => run(&mut MiHeap::new(), &churn),
            _ => run(&mut Null(vec![1; 16 << 20], 0), &churn),
        }),
        ("large heap (500k live)", &|k| match k {
            0 => run(&mut Slab::new(), &big),
            1 => run(&mut System::new(), &big),
            2 => run(&mut MiHeap::new(), &big),
            _ => run(&mut Null(vec![1; 16 << 20], 0), &big),
        }),
        ("gc-like sweep", &|k| match k {
            0 => gc_like(&mut Slab::new(), 100),
            1 => gc_like(&mut System::new(), 100),
            2 => gc_like(&mut MiHeap::new(), 100),
            _ => gc_like(&mut Null(vec![1; 16 << 20], 0), 100),
        }),
    ];
    for (name, f) in scenarios {
        let mut times = [vec![], vec![], vec![], vec![]];
        for _ in 0..5 {
            for (k, t) in times.iter_mut().enumerate() {
                t.push(f(k));
            }
        }
        let [s, sys, mi, null] = times.map(median);
        println!(
            "{name:24} slab {s:6.2} ns/op  system {sys:6.2}  mimalloc-heap {mi:6.2}  (loop {null:5.2})  \
             slab/mimalloc {:.2}  slab/system {:.2}  less the loop: slab/mimalloc {:.2}",
            s / mi,
            s / sys,
            (s - null) / (mi - null)
        );
    }
}
