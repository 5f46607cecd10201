//! libFuzzer target: the bytes are a program of heap operations (sizes from 0 to `usize::MAX`,
//! vectors whose `n · size` overflows, limits, fault plans) run on one backend under a strict
//! checker. Any panic, sanitizer report, accounting drift or leftover block is a finding.
//!
//! `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run heap_ops`
#![no_main]

use libfuzzer_sys::fuzz_target;
use lmem::backends;
use lmem::{Checker, FaultInjection, FaultPlan, Heap, MAX_SIZE, Tag};

/// Reads the program.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// Up to eight bytes, little-endian (missing bytes are zero).
    fn word(&mut self) -> u64 {
        let n = self.0.len().min(8);
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(w)
    }

    /// A size: usually small, sometimes at or beyond every edge.
    fn size(&mut self) -> usize {
        const EDGES: [usize; 8] = [
            0,
            usize::MAX,
            isize::MAX as usize,
            MAX_SIZE,
            MAX_SIZE + 1,
            MAX_SIZE - 16,
            1 << 48,
            usize::MAX - 15,
        ];
        match self.byte().unwrap_or(0) {
            k @ 0..=7 => EDGES[k as usize],
            k @ 8..=199 => k as usize,
            _ => (self.word() % 70_000) as usize + 1,
        }
    }

    /// An element count: small, or one whose byte size overflows or lies beyond any address
    /// space (2^48 bytes and up). Counts in between would be granted by an overcommitting
    /// allocator and then filled, which measures the machine, not the code.
    fn count(&mut self) -> usize {
        let w = self.word();
        if w & 1 == 0 {
            return (w >> 1) as usize % 10_000;
        }
        let w = (w >> 1) as usize;
        [
            usize::MAX,
            usize::MAX / 8 + 1,
            MAX_SIZE / 8,
            MAX_SIZE / 8 + 1,
            1 << 49,
            w | 1 << 60,
        ][w % 6]
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let names = backends::names();
    let name = names[input.byte().unwrap_or(0) as usize % names.len()];
    let inner = Checker::strict(backends::by_name(name).expect("compiled in"));
    let mut heap = Heap::new(FaultInjection::new(inner, FaultPlan::Never));
    // (block, size, fill byte)
    let mut live: Vec<(*mut u8, usize, u8)> = Vec::new();

    fn fill(p: *mut u8, size: usize, v: u8) {
        // SAFETY: `p` is a live block of at least `size` bytes.
        unsafe { p.write_bytes(v, size) };
    }
    fn holds(p: *mut u8, size: usize, v: u8) -> bool {
        // SAFETY: `p` is a live block of at least `size` bytes.
        unsafe { std::slice::from_raw_parts(p, size) }
            .iter()
            .all(|&b| b == v)
    }

    while let Some(op) = input.byte() {
        let pick = |input: &mut Input, n: usize| input.byte().unwrap_or(0) as usize % n;
        match op % 9 {
            0 => {
                let size = input.size();
                if let Ok(p) = heap.try_malloc(size, Tag::ALL[op as usize % 8])
                    && size > 0
                {
                    fill(p, size, op);
                    live.push((p, size, op));
                }
            }
            1 if !live.is_empty() => {
                let i = pick(&mut input, live.len());
                let (p, size, v) = live[i];
                let new = input.size();
                // SAFETY: `p` is live with `size` bytes; replaced on success, kept on failure.
                match unsafe { heap.try_realloc(p, size, new) } {
                    Ok(q) if new == 0 => {
                        assert!(q.is_null());
                        live.swap_remove(i);
                    }
                    Ok(q) => {
                        assert!(holds(q, size.min(new), v), "resize lost the prefix");
                        fill(q, new, op);
                        live[i] = (q, new, op);
                    }
                    Err(_) => {
                        assert!(new > size, "a shrink failed");
                        assert!(holds(p, size, v), "a failed resize touched the block");
                    }
                }
            }
            2 if !live.is_empty() => {
                let i = pick(&mut input, live.len());
                let (p, size, v) = live.swap_remove(i);
                assert!(holds(p, size, v));
                // SAFETY: live with `size` bytes, freed once.
                unsafe { heap.free(p, size) };
            }
            3 => {
                let w = input.word();
                heap.set_limit((w & 1 == 1).then_some((w >> 1) as usize % 400_000));
            }
            4 => {
                let w = input.word();
                let plan = match w % 4 {
                    0 => FaultPlan::Never,
                    1 => FaultPlan::At(w >> 2 & 63),
                    2 => FaultPlan::Above((w >> 2) as usize % 300_000),
                    _ => FaultPlan::Random { p: 0.3, seed: w },
                };
                heap.backend_mut().set_plan(plan);
            }
            5 => {
                let n = input.count();
                match heap.try_new_vector::<u64>(n, Tag::Other) {
                    Ok(p) if n > 0 => {
                        assert!(n <= MAX_SIZE / 8);
                        let p = p.cast::<u8>();
                        fill(p, n * 8, op);
                        live.push((p, n * 8, op));
                    }
                    Ok(_) => {}
                    Err(e) => assert!(
                        n.checked_mul(8).is_some_and(|b| b <= MAX_SIZE) == e.is_out_of_memory()
                    ),
                }
            }
            6 if !live.is_empty() => {
                let i = pick(&mut input, live.len());
                let (p, size, v) = live[i];
                let n = input.count();
                // SAFETY: a plain block is a vector of `size` bytes; replaced on success.
                match unsafe { heap.try_realloc_vector::<u8>(p, size, n) } {
                    Ok(q) if n == 0 => {
                        assert!(q.is_null());
                        live.swap_remove(i);
                    }
                    Ok(q) => {
                        assert!(holds(q, size.min(n), v));
                        live[i] = (q, n, v);
                        fill(q, n, v);
                    }
                    Err(_) => assert!(holds(p, size, v)),
                }
            }
            7 => {
                let ty = input.byte().unwrap_or(0) as usize;
                let size = input.size();
                // SAFETY: a new block; `ty` is the type of the object, never a size.
                let p = unsafe { heap.lua_alloc(std::ptr::null_mut(), ty, size) };
                if !p.is_null() {
                    fill(p, size, op);
                    live.push((p, size, op));
                }
            }
            8 if !live.is_empty() => {
                let i = pick(&mut input, live.len());
                let (p, size, v) = live[i];
                let mut cap = size;
                let limit = input.word() as usize;
                // Limits below 8 trip a known finding (docs/bad-input.md): keep them out.
                let limit = if (2..8).contains(&limit) { 8 } else { limit };
                // SAFETY: a plain block is a full vector of `size` bytes.
                if let Ok(q) = unsafe { heap.try_grow_vector::<u8>(p, size, &mut cap, limit, "x") }
                {
                    assert!(cap > size && cap <= limit.min(MAX_SIZE));
                    assert!(holds(q, size, v));
                    fill(q, cap, v);
                    live[i] = (q, cap, v);
                }
            }
            _ => {}
        }
        let model: usize = live.iter().map(|b| b.1).sum();
        assert_eq!(heap.total_bytes(), model, "accounting drifted");
    }
    for (p, size, v) in live {
        assert!(holds(p, size, v));
        // SAFETY: live with `size` bytes, freed once.
        unsafe { heap.free(p, size) };
    }
    assert_eq!(heap.total_bytes(), 0);
    let checker = heap.backend().inner();
    assert!(checker.is_clean(), "{}", checker.report());
});
