//! A quick, ignored measurement (not a benchmark: the lead's criterion benches are those) of
//! what the backend costs over a bare pointer bump. Run it in release:
//!
//! `cargo test --release -p lmem-bump --test speed -- --ignored --nocapture`
use lmem_backend::conformance::Rng;
use lmem_backend::{Backend, Tag};
use lmem_bump::Bump;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Instant;

/// The floor: a downward pointer bump over one buffer, freeing only the last block, with the same
/// 16-byte rounding and the same "full?" check, and nothing else.
struct Bare {
    start: usize,
    ptr: usize,
}

impl Bare {
    #[inline]
    fn allocate(&mut self, size: usize) -> Option<usize> {
        let rounded = (size + 15) & !15;
        let p = self.ptr.checked_sub(rounded).filter(|&p| p >= self.start)?;
        self.ptr = p;
        Some(p)
    }
    #[inline]
    fn deallocate(&mut self, p: usize, size: usize) {
        if p == self.ptr {
            self.ptr += (size + 15) & !15;
        }
    }
}

/// Nanoseconds per iteration of `f`, the best of five runs of `n` iterations.
fn ns_per_op(n: usize, mut f: impl FnMut(usize)) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn allocate_free_pairs_vs_a_bare_bump() {
    const N: usize = 10_000_000;
    let mut buf = vec![0u8; 64 << 20];
    let start = buf.as_mut_ptr() as usize;
    let mut bare = Bare {
        start,
        ptr: (start + buf.len()) & !15,
    };
    let bare_pair = ns_per_op(N, |_| {
        let p = bare.allocate(black_box(32)).unwrap();
        bare.deallocate(black_box(p), 32);
    });

    let mut b = Bump::new();
    let bump_pair = ns_per_op(N, |_| {
        let p = b.allocate(black_box(32), Tag::Table).unwrap();
        // SAFETY: `p` is the live block just made, of 32 bytes.
        unsafe { b.deallocate(black_box(p), black_box(32)) };
    });

    // Allocation only, Lua's size mix, 100k blocks then a reset (what a state's lifetime is).
    const BATCH: usize = 100_000;
    let mut rng = Rng::new(7);
    let sizes: Vec<usize> = (0..BATCH).map(|_| rng.lua_size(1024)).collect();
    let bare_alloc = ns_per_op(BATCH, |i| {
        if i == 0 {
            bare.ptr = (start + buf.len()) & !15;
        }
        black_box(bare.allocate(sizes[i]).unwrap());
    });
    let bump_alloc = ns_per_op(BATCH, |i| {
        if i == 0 {
            // SAFETY: the blocks of the previous run are never used again.
            unsafe { b.reset() }.unwrap();
        }
        black_box(b.allocate(sizes[i], Tag::Other).unwrap());
    });

    // The global allocator (glibc malloc here) for scale.
    let layout = std::alloc::Layout::from_size_align(32, 16).unwrap();
    let malloc_pair = ns_per_op(N, |_| {
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { std::alloc::alloc(black_box(layout)) };
        let p = NonNull::new(p).expect("malloc");
        // SAFETY: `p` came from `alloc` with `layout`.
        unsafe { std::alloc::dealloc(black_box(p.as_ptr()), layout) };
    });

    eprintln!(
        "allocate+free 32 B pair: bump {bump_pair:.2} ns, bare bump {bare_pair:.2} ns, \
               global allocator {malloc_pair:.2} ns"
    );
    eprintln!(
        "allocate only (Lua mix, 10^5 then reset): bump {bump_alloc:.2} ns/op, \
               bare bump {bare_alloc:.2} ns/op"
    );
    drop(buf);
}
