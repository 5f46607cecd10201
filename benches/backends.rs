//! The backends side by side on the same scenarios, in the same run: one generic function per
//! scenario, grouped `scenario/backend`.
//!
//! `cargo bench --bench backends --features all-backends`
//!
//! Targets (benchmarks, not tests): slab at most 0.6× mimalloc's time per operation on the
//! Lua-like mix; bump within 2× of a bare pointer bump.

#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lmem::backends::{Bump, Jemalloc, Mimalloc, Slab, System};
use lmem::{Backend, Rng, Tag};
use std::hint::black_box;
use std::ptr::NonNull;

/// One allocate/free pair of `size` bytes.
fn pair<B: Backend>(b: &mut B, size: usize) {
    let p = b.allocate(black_box(size), Tag::Table).unwrap();
    // SAFETY: `p` is a live block of `size` bytes.
    unsafe { b.deallocate(black_box(p), size) };
}

/// A block grown by doubling from 16 B to 64 KiB, then freed (a string buffer, a table part).
fn resize_chain<B: Backend>(b: &mut B) {
    let mut size = 16;
    let mut p = b.allocate(size, Tag::Other).unwrap();
    while size < 64 * 1024 {
        // SAFETY: `p` is a live block of `size` bytes.
        p = unsafe { b.resize(p, size, size * 2) }.unwrap();
        size *= 2;
    }
    // SAFETY: live with `size` bytes.
    unsafe { b.deallocate(p, size) };
}

/// A precomputed Lua-like stream: each step visits a slot of a 4096-slot table; an empty slot
/// gets a new block (sizes mostly ≤ 64 B), a full one is freed. Frees come in random order.
struct Mix {
    steps: Vec<(u16, u32)>,
}

impl Mix {
    fn new() -> Self {
        let mut rng = Rng::new(0x51ab);
        let steps = (0..1 << 16)
            .map(|_| (rng.below(4096) as u16, rng.lua_size(2048) as u32))
            .collect();
        Mix { steps }
    }
}

/// Runs the whole mix (65 536 operations), leaving nothing allocated.
fn lua_mix<B: Backend>(b: &mut B, mix: &Mix, slots: &mut [Option<(NonNull<u8>, usize)>]) {
    for &(slot, size) in &mix.steps {
        let s = &mut slots[slot as usize];
        match s.take() {
            // SAFETY: the slot holds a live block with its size.
            Some((p, n)) => unsafe { b.deallocate(p, n) },
            None => {
                let n = size as usize;
                let p = b.allocate(n, Tag::ALL[n % 8]).unwrap();
                // SAFETY: a fresh block of `n` bytes: touch it as Lua would.
                unsafe { p.as_ptr().write(n as u8) };
                *s = Some((p, n));
            }
        }
    }
    for s in slots.iter_mut() {
        if let Some((p, n)) = s.take() {
            // SAFETY: live with its size.
            unsafe { b.deallocate(p, n) };
        }
    }
}

/// 4096 allocations of Lua sizes, then everything released at once (a short-lived state).
fn fill_and_reset<B: Backend>(b: &mut B, sizes: &[usize]) {
    for &n in sizes {
        black_box(b.allocate(n, Tag::Other).unwrap());
    }
    // SAFETY: no block is used afterwards.
    unsafe { b.reset() }.expect("the backend resets");
}

/// The floor for `bump`: a bare downward pointer bump in one fixed buffer, nothing else.
struct Bare {
    buf: Vec<u128>,
    top: usize,
}

impl Bare {
    fn new() -> Self {
        let buf = vec![0u128; (8 << 20) / 16];
        let top = buf.len() * 16;
        Bare { buf, top }
    }
}

// SAFETY: blocks are disjoint 16-aligned ranges of `buf` (a u128 buffer), carved downwards and
// handed out once until `reset`; requests that do not fit fail; frees do nothing.
unsafe impl Backend for Bare {
    fn name(&self) -> &str {
        "bare"
    }
    #[inline]
    fn allocate(&mut self, size: usize, _: Tag) -> Option<NonNull<u8>> {
        let need = (size + 15) & !15;
        self.top = self.top.checked_sub(need)?;
        // SAFETY: `top <= len * 16`, so the offset stays within (or one past) the buffer.
        NonNull::new(unsafe { self.buf.as_mut_ptr().cast::<u8>().add(self.top) })
    }
    unsafe fn deallocate(&mut self, _: NonNull<u8>, _: usize) {}
    unsafe fn reset(&mut self) -> Result<(), lmem::ResetUnsupported> {
        self.top = self.buf.len() * 16;
        Ok(())
    }
}

macro_rules! each_backend {
    ($g:expr, $id:expr, |$b:ident| $body:expr) => {{
        $g.bench_function(BenchmarkId::new($id, "system"), |bn| {
            let mut $b = System::new();
            bn.iter(|| $body)
        });
        $g.bench_function(BenchmarkId::new($id, "jemalloc"), |bn| {
            let mut $b = Jemalloc::new();
            bn.iter(|| $body)
        });
        $g.bench_function(BenchmarkId::new($id, "mimalloc"), |bn| {
            let mut $b = Mimalloc::new();
            bn.iter(|| $body)
        });
        $g.bench_function(BenchmarkId::new($id, "bump"), |bn| {
            let mut $b = Bump::new();
            bn.iter(|| $body)
        });
        $g.bench_function(BenchmarkId::new($id, "slab"), |bn| {
            let mut $b = Slab::new();
            bn.iter(|| $body)
        });
    }};
}

fn benches(c: &mut Criterion) {
    for size in [16, 32, 64, 128, 512, 4096] {
        let id = format!("pair-{size}");
        let mut g = c.benchmark_group(&id);
        each_backend!(g, &id, |b| pair(&mut b, size));
        g.finish();
    }

    let mut g = c.benchmark_group("resize-chain");
    each_backend!(g, "resize-chain", |b| resize_chain(&mut b));
    g.finish();

    let mix = Mix::new();
    let mut slots = vec![None; 4096];
    let mut g = c.benchmark_group("lua-mix");
    g.throughput(Throughput::Elements(mix.steps.len() as u64));
    each_backend!(g, "lua-mix", |b| lua_mix(&mut b, &mix, &mut slots));
    g.finish();

    let mut rng = Rng::new(7);
    let sizes: Vec<usize> = (0..4096).map(|_| rng.lua_size(1024)).collect();
    let mut g = c.benchmark_group("fill-reset");
    g.throughput(Throughput::Elements(sizes.len() as u64));
    g.bench_function(BenchmarkId::new("fill-reset", "bare"), |bn| {
        let mut b = Bare::new();
        bn.iter(|| fill_and_reset(&mut b, &sizes))
    });
    g.bench_function(BenchmarkId::new("fill-reset", "bump"), |bn| {
        let mut b = Bump::new();
        bn.iter(|| fill_and_reset(&mut b, &sizes))
    });
    g.bench_function(BenchmarkId::new("fill-reset", "slab"), |bn| {
        let mut b = Slab::new();
        bn.iter(|| fill_and_reset(&mut b, &sizes))
    });
    g.finish();
}

criterion_group!(backends, benches);
criterion_main!(backends);
