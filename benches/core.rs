//! The core layer's overhead: the same work through `Heap<System>` and on the raw `System`
//! backend, in the same run. Target (a benchmark, not a test): the heap adds at most 5%.
//!
//! `cargo bench --bench core`

#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lmem::backends::System;
use lmem::{Backend, Basic, Heap, Tag};
use std::hint::black_box;

/// What both sides do: allocate/free and resize through one interface.
trait Calls {
    fn alloc(&mut self, n: usize) -> *mut u8;
    fn resize(&mut self, p: *mut u8, o: usize, n: usize) -> *mut u8;
    fn free(&mut self, p: *mut u8, n: usize);
}

impl<B: Backend, A: lmem::Accounting> Calls for Heap<B, A> {
    #[inline]
    fn alloc(&mut self, n: usize) -> *mut u8 {
        self.try_malloc(n, Tag::Table).unwrap()
    }
    #[inline]
    fn resize(&mut self, p: *mut u8, o: usize, n: usize) -> *mut u8 {
        // SAFETY: the benchmark passes live blocks with their sizes.
        unsafe { self.try_realloc(p, o, n) }.unwrap()
    }
    #[inline]
    fn free(&mut self, p: *mut u8, n: usize) {
        // SAFETY: the benchmark passes live blocks with their sizes.
        unsafe { Heap::free(self, p, n) }
    }
}

/// The raw backend, with nothing in between.
struct Raw<B>(B);

impl<B: Backend> Calls for Raw<B> {
    #[inline]
    fn alloc(&mut self, n: usize) -> *mut u8 {
        self.0.allocate(n, Tag::Table).unwrap().as_ptr()
    }
    #[inline]
    fn resize(&mut self, p: *mut u8, o: usize, n: usize) -> *mut u8 {
        let p = std::ptr::NonNull::new(p).unwrap();
        // SAFETY: the benchmark passes live blocks with their sizes.
        unsafe { self.0.resize(p, o, n) }.unwrap().as_ptr()
    }
    #[inline]
    fn free(&mut self, p: *mut u8, n: usize) {
        // SAFETY: the benchmark passes live blocks with their sizes.
        unsafe { self.0.deallocate(std::ptr::NonNull::new(p).unwrap(), n) }
    }
}

/// One allocate/free pair of a Lua-sized block.
fn pair<C: Calls>(c: &mut C) {
    let p = c.alloc(black_box(48));
    c.free(black_box(p), 48);
}

/// A small resize chain: 16 → 32 → 64 → 128 → 256, then free (a growing string buffer).
fn chain<C: Calls>(c: &mut C) {
    let mut p = c.alloc(16);
    let mut n = 16;
    while n < 256 {
        p = c.resize(black_box(p), n, n * 2);
        n *= 2;
    }
    c.free(p, n);
}

fn bench(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("pair");
    g.bench_function(BenchmarkId::new("pair", "raw-system"), |b| {
        let mut c = Raw(System::new());
        b.iter(|| pair(&mut c))
    });
    g.bench_function(BenchmarkId::new("pair", "heap-basic-system"), |b| {
        let mut c: Heap<System, Basic> = Heap::with_accounting(System::new());
        b.iter(|| pair(&mut c))
    });
    g.bench_function(BenchmarkId::new("pair", "heap-detailed-system"), |b| {
        let mut c = Heap::new(System::new());
        b.iter(|| pair(&mut c))
    });
    g.finish();
    let mut g = cr.benchmark_group("resize-chain");
    g.bench_function(BenchmarkId::new("resize-chain", "raw-system"), |b| {
        let mut c = Raw(System::new());
        b.iter(|| chain(&mut c))
    });
    g.bench_function(BenchmarkId::new("resize-chain", "heap-basic-system"), |b| {
        let mut c: Heap<System, Basic> = Heap::with_accounting(System::new());
        b.iter(|| chain(&mut c))
    });
    g.bench_function(
        BenchmarkId::new("resize-chain", "heap-detailed-system"),
        |b| {
            let mut c = Heap::new(System::new());
            b.iter(|| chain(&mut c))
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
