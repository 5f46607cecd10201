//! The backends side by side on the same scenarios, in the same run: one generic function per
//! scenario, grouped `scenario/backend`.
//!
//! `cargo bench --bench backends --features all-backends`
//!
//! Targets (benchmarks, not tests): slab at most 0.6× mimalloc's time per operation on the
//! Lua-like mix; bump within 2× of a bare pointer bump.
//!
//! Two Lua-like mixes, with the same sizes (mostly ≤ 64 B) and random free order:
//!
//! - `lua-mix` visits random slots of a table and frees or allocates at each, so every step is
//!   a coin flip between the two. Its loop costs as much as a fast allocator: two reference
//!   rows, measured in the same run, show how much. `floor` replays recorded block addresses and
//!   does no allocator work at all (the harness alone); `minimal` is the least an allocator can
//!   do here (one LIFO list per 16-byte size, memory never returned). A backend's row minus
//!   `floor` approximates its own time; on a shared machine `floor` itself moves by a third
//!   between runs, so the ratios between backend rows are the figures to quote.
//! - `lua-gc` has the shape of a Lua program under its collector: bursts of allocations (the
//!   mutator) alternate with bursts of frees of random live blocks (a sweep). Its loops do not
//!   branch on the operation, so the allocator's time dominates.

#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lmem::backends::{Bump, Jemalloc, Mimalloc, Slab, System};
use lmem::wrap::CallKind;
use lmem::{Backend, Rng, Tag, Tracking};
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

/// The least an allocator can do on the mix: one LIFO free list per 16-byte size, blocks
/// carved from one buffer and never given back. A reference row, not a backend.
struct Minimal {
    free: [*mut u8; 129],
    top: usize,
    end: usize,
    _buf: Vec<u128>,
}

impl Minimal {
    fn new() -> Self {
        let mut buf = vec![0u128; (32 << 20) / 16];
        let top = buf.as_mut_ptr() as usize;
        Minimal {
            free: [std::ptr::null_mut(); 129],
            top,
            end: top + buf.len() * 16,
            _buf: buf,
        }
    }
}

// SAFETY: blocks are disjoint 16-aligned ranges of `_buf` of at least the requested size, carved
// once and recycled only after their sized free; sizes over 2048 B or past the buffer fail.
unsafe impl Backend for Minimal {
    fn name(&self) -> &str {
        "minimal"
    }
    #[inline]
    fn allocate(&mut self, size: usize, _: Tag) -> Option<NonNull<u8>> {
        let class = size.div_ceil(16);
        let b = *self.free.get(class)?;
        if !b.is_null() {
            // SAFETY: `b` is a free block of ours; its first word links to the next one.
            self.free[class] = unsafe { b.cast::<*mut u8>().read() };
            return NonNull::new(b);
        }
        let need = class.max(1) * 16;
        if self.end - self.top < need {
            return None;
        }
        let b = self.top;
        self.top += need;
        NonNull::new(b as *mut u8)
    }
    #[inline]
    unsafe fn deallocate(&mut self, p: NonNull<u8>, size: usize) {
        let class = size.div_ceil(16);
        // SAFETY: `p` is a live block of ours (caller), at least 16 bytes: its first word is ours.
        unsafe { p.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = p.as_ptr();
    }
}

/// The harness alone: hands out, in order, the addresses another backend returned on the same
/// stream, and frees nothing. The blocks are `Minimal`'s, so the harness touches the same compact
/// memory. Not a backend anyone could use (it ignores sizes); it prices the loop.
struct Floor {
    addrs: Vec<NonNull<u8>>,
    next: usize,
    _owner: Minimal,
}

impl Floor {
    /// Records the addresses `Minimal` returns on one pass of the mix (from a warm state, as the
    /// benchmark runs it: the blocks of a pass are the free blocks of the previous one).
    fn new(mix: &Mix) -> Self {
        let mut owner = Minimal::new();
        let mut slots = vec![None; 4096];
        lua_mix(&mut owner, mix, &mut slots);
        let mut rec = Tracking::with_log(&mut owner);
        lua_mix(&mut rec, mix, &mut slots);
        let addrs = rec
            .take_log()
            .into_iter()
            .filter(|e| matches!(e.op, CallKind::Allocate(_)))
            .map(|e| NonNull::new(e.result as *mut u8).expect("the mix never fails"))
            .collect();
        Floor {
            addrs,
            next: 0,
            _owner: owner,
        }
    }
}

// SAFETY: only for the mix it was recorded on: there, every address handed out is a block of
// `_owner` that no other live block of the pass overlaps, and passes repeat exactly.
unsafe impl Backend for Floor {
    fn name(&self) -> &str {
        "floor"
    }
    #[inline]
    fn allocate(&mut self, _: usize, _: Tag) -> Option<NonNull<u8>> {
        let p = self.addrs[self.next];
        self.next += 1;
        if self.next == self.addrs.len() {
            self.next = 0;
        }
        Some(p)
    }
    unsafe fn deallocate(&mut self, _: NonNull<u8>, _: usize) {}
}

/// One round of the GC-shaped stream: the burst's (slot, size) allocations, then the slots the
/// sweep frees.
type Round = (Vec<(u16, u32)>, Vec<u16>);

/// A precomputed GC-shaped stream over 8192 slots: each round allocates a burst of blocks into
/// empty slots, then frees a random part of the live ones in random order (a sweep).
struct Gc {
    rounds: Vec<Round>,
    /// Allocations and frees in one pass (every block allocated is freed once).
    ops: u64,
}

impl Gc {
    fn new() -> Self {
        const SLOTS: usize = 8192;
        let mut rng = Rng::new(0x6c75_6167);
        let mut empty: Vec<u16> = (0..SLOTS as u16).rev().collect();
        let mut live: Vec<u16> = Vec::new();
        let (mut rounds, mut allocated) = (Vec::new(), 0);
        while allocated < 1 << 15 {
            // A burst: up to half the table, never more than the empty slots.
            let n = (256 + rng.below(2048)).min(empty.len());
            let allocs: Vec<(u16, u32)> = (0..n)
                .map(|_| {
                    let slot = empty.swap_remove(rng.below(empty.len()));
                    live.push(slot);
                    (slot, rng.lua_size(2048) as u32)
                })
                .collect();
            // A sweep: 40-90% of the live blocks die, freed in random order.
            let dead = live.len() * (40 + rng.below(51)) / 100;
            let frees: Vec<u16> = (0..dead)
                .map(|_| {
                    let slot = live.swap_remove(rng.below(live.len()));
                    empty.push(slot);
                    slot
                })
                .collect();
            allocated += allocs.len() as u64;
            rounds.push((allocs, frees));
        }
        Gc {
            rounds,
            ops: 2 * allocated,
        }
    }
}

/// Runs the GC-shaped stream, then frees what is left.
fn lua_gc<B: Backend>(b: &mut B, gc: &Gc, slots: &mut [(usize, usize)]) {
    for (allocs, frees) in &gc.rounds {
        for &(slot, size) in allocs {
            let n = size as usize;
            let p = b.allocate(n, Tag::ALL[n % 8]).unwrap();
            // SAFETY: a fresh block of `n` bytes: touch it as Lua would.
            unsafe { p.as_ptr().write(n as u8) };
            slots[slot as usize] = (p.as_ptr() as usize, n);
        }
        for &slot in frees {
            let (p, n) = slots[slot as usize];
            // SAFETY: the stream frees only slots it filled and has not freed since.
            unsafe { b.deallocate(NonNull::new_unchecked(p as *mut u8), n) };
            slots[slot as usize].0 = 0;
        }
    }
    for s in slots.iter_mut() {
        if s.0 != 0 {
            // SAFETY: a block still live from the stream.
            unsafe { b.deallocate(NonNull::new_unchecked(s.0 as *mut u8), s.1) };
        }
        *s = (0, 0);
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
    g.bench_function(BenchmarkId::new("lua-mix", "minimal"), |bn| {
        let mut b = Minimal::new();
        bn.iter(|| lua_mix(&mut b, &mix, &mut slots))
    });
    g.bench_function(BenchmarkId::new("lua-mix", "floor"), |bn| {
        let mut b = Floor::new(&mix);
        bn.iter(|| lua_mix(&mut b, &mix, &mut slots))
    });
    g.finish();

    let gc = Gc::new();
    let mut slots = vec![(0, 0); 8192];
    let mut g = c.benchmark_group("lua-gc");
    g.throughput(Throughput::Elements(gc.ops));
    each_backend!(g, "lua-gc", |b| lua_gc(&mut b, &gc, &mut slots));
    g.bench_function(BenchmarkId::new("lua-gc", "minimal"), |bn| {
        let mut b = Minimal::new();
        bn.iter(|| lua_gc(&mut b, &gc, &mut slots))
    });
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
