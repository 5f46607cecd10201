//! `replay`: a trace performed through a heap, timed.

use super::reader::{Op, Trace};
use crate::heap::Heap;
use crate::lua_alloc::LuaAlloc;
use crate::stats::{Accounting, TagStats};
use lmem_backend::{Backend, BackendStats, Tag};
use std::ffi::c_void;
use std::fmt;
use std::ptr;
use std::time::Instant;

/// What a replay did and how long it took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayResult {
    /// The backend's name.
    pub backend: String,
    /// Heap calls made in the timed loop (including calls that failed).
    pub ops: u64,
    /// Nanoseconds spent in the timed loop.
    pub elapsed_ns: u64,
    /// New blocks made (the heap's count during the loop).
    pub allocations: u64,
    /// Blocks resized.
    pub resizes: u64,
    /// Blocks freed by trace events (not counting [`ReplayResult::freed_at_end`]).
    pub frees: u64,
    /// The heap's peak live bytes after the loop ([`Stats::peak`](crate::Stats::peak): 0 under
    /// [`Basic`](crate::Basic) accounting, and the heap's own history if it was used before).
    pub peak_bytes: usize,
    /// New blocks and their bytes per Lua type, during the loop.
    pub by_tag: [TagStats; Tag::COUNT],
    /// Events that had failed when recorded, and were not replayed.
    pub skipped_failed: u64,
    /// Calls that succeeded when recorded but failed on replay (a limit, a smaller machine).
    pub failures: u64,
    /// Resizes and frees skipped because their block's allocation had failed on replay.
    pub orphaned: u64,
    /// Blocks still live when the trace ended, freed after the timed loop.
    pub freed_at_end: u64,
    /// What the backend said about its memory at the end of the loop, before that final free.
    pub backend_stats: BackendStats,
}

impl ReplayResult {
    /// Mean nanoseconds per heap call (0 for an empty trace).
    pub fn ns_per_op(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            self.elapsed_ns as f64 / self.ops as f64
        }
    }
}

impl fmt::Display for ReplayResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} ops in {:.3} ms, {:.1} ns/op, peak {} B",
            self.backend,
            self.ops,
            self.elapsed_ns as f64 / 1e6,
            self.ns_per_op(),
            self.peak_bytes
        )?;
        writeln!(
            f,
            "  allocations {}   resizes {}   frees {}   freed at end {}",
            self.allocations, self.resizes, self.frees, self.freed_at_end
        )?;
        if self.failures + self.orphaned + self.skipped_failed > 0 {
            writeln!(
                f,
                "  failed on replay {}   orphaned {}   failed when recorded (skipped) {}",
                self.failures, self.orphaned, self.skipped_failed
            )?;
        }
        for tag in Tag::ALL {
            let t = self.by_tag[tag.index()];
            if t.count > 0 {
                writeln!(
                    f,
                    "  {:<9} {:>10} blocks {:>12} B",
                    tag.name(),
                    t.count,
                    t.bytes
                )?;
            }
        }
        Ok(())
    }
}

/// What a replay calls: a heap's entry points, or a `lua_Alloc` function pair.
trait Target {
    /// A new block, or null.
    fn alloc(&mut self, size: usize, tag: Tag) -> *mut u8;
    /// The block resized, or null (then `p` is untouched).
    ///
    /// # Safety
    ///
    /// `p` is a live block of the target of size `osize`; `nsize > 0`.
    unsafe fn resize(&mut self, p: *mut u8, osize: usize, nsize: usize) -> *mut u8;
    /// # Safety
    ///
    /// `p` is a live block of the target of size `osize`, not used afterwards.
    unsafe fn free(&mut self, p: *mut u8, osize: usize);
}

impl<B: Backend, A: Accounting> Target for Heap<B, A> {
    #[inline]
    fn alloc(&mut self, size: usize, tag: Tag) -> *mut u8 {
        self.try_malloc(size, tag).unwrap_or(ptr::null_mut())
    }
    #[inline]
    unsafe fn resize(&mut self, p: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        unsafe { self.try_realloc(p, osize, nsize) }.unwrap_or(ptr::null_mut())
    }
    #[inline]
    unsafe fn free(&mut self, p: *mut u8, osize: usize) {
        // SAFETY: forwarded caller contract.
        unsafe { Heap::free(self, p, osize) }
    }
}

/// A `lua_Alloc` function and its `ud`, called exactly as Lua calls it.
struct Function(LuaAlloc, *mut c_void);

impl Target for Function {
    #[inline]
    fn alloc(&mut self, size: usize, tag: Tag) -> *mut u8 {
        // SAFETY: a null `ptr` with the Lua type as `osize` is a valid request for any pair
        // (`replay_function`'s contract).
        unsafe { (self.0)(self.1, ptr::null_mut(), tag.to_lua(), size) }.cast()
    }
    #[inline]
    unsafe fn resize(&mut self, p: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        // SAFETY: `p` is a live block of the pair of size `osize` (caller).
        unsafe { (self.0)(self.1, p.cast(), osize, nsize) }.cast()
    }
    #[inline]
    unsafe fn free(&mut self, p: *mut u8, osize: usize) {
        // SAFETY: `p` is a live block of the pair of size `osize` (caller).
        unsafe { (self.0)(self.1, p.cast(), osize, 0) };
    }
}

/// What the timed loop counted.
#[derive(Default)]
struct Counts {
    ops: u64,
    allocations: u64,
    resizes: u64,
    frees: u64,
    skipped_failed: u64,
    failures: u64,
    orphaned: u64,
    freed_at_end: u64,
    by_tag: [TagStats; Tag::COUNT],
    elapsed_ns: u64,
}

/// The loop itself. Each block lives in a table slot indexed by its id (the trace was
/// validated, so ids are in range), holding the block's pointer and the size the *replay* gave
/// it. `before_end` runs after the timed loop, before the blocks left live are freed.
fn run_events<T: Target>(trace: &Trace, t: &mut T, before_end: impl FnOnce(&mut T)) -> Counts {
    let mut slots: Vec<(*mut u8, usize)> = vec![(ptr::null_mut(), 0); trace.block_ids()];
    let mut c = Counts::default();
    let start = Instant::now();
    for e in trace.events() {
        if e.failed {
            c.skipped_failed += 1;
            continue;
        }
        // Sizes above `usize` (a trace from a wider machine) fail like any impossible size.
        let size = usize::try_from(e.size).unwrap_or(usize::MAX);
        let slot = &mut slots[e.id as usize];
        match e.op {
            Op::Alloc(tag) => {
                debug_assert!(slot.0.is_null(), "trace: alloc into a live slot");
                c.ops += 1;
                let p = t.alloc(size, tag);
                if p.is_null() {
                    c.failures += 1;
                } else {
                    // SAFETY: `p` is a new block of `size >= 1` bytes (the reader rejects size
                    // 0), owned by us; its first byte is writable.
                    unsafe { p.write(e.id as u8) };
                    *slot = (p, size);
                    c.allocations += 1;
                    let s = &mut c.by_tag[tag.index()];
                    s.count += 1;
                    s.bytes += size as u64;
                }
            }
            Op::Resize => {
                if slot.0.is_null() {
                    c.orphaned += 1;
                    continue;
                }
                c.ops += 1;
                // SAFETY: a non-null slot holds a live block of the target with the size the
                // replay last gave it; `size > 0`. On success the old pointer is overwritten.
                let q = unsafe { t.resize(slot.0, slot.1, size) };
                if q.is_null() {
                    c.failures += 1;
                } else {
                    *slot = (q, size);
                    c.resizes += 1;
                }
            }
            Op::Free => {
                if slot.0.is_null() {
                    c.orphaned += 1;
                    continue;
                }
                c.ops += 1;
                // SAFETY: a non-null slot holds a live block of the target of size `slot.1`;
                // the slot is cleared at once, so it is not used again.
                unsafe { t.free(slot.0, slot.1) };
                *slot = (ptr::null_mut(), 0);
                c.frees += 1;
            }
        }
    }
    c.elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    before_end(t);
    for (p, size) in slots {
        if !p.is_null() {
            // SAFETY: a non-null slot holds a live block of the target of size `size`, freed
            // once.
            unsafe { t.free(p, size) };
            c.freed_at_end += 1;
        }
    }
    c
}

impl ReplayResult {
    fn from_counts(backend: String, c: Counts, peak_bytes: usize, stats: BackendStats) -> Self {
        ReplayResult {
            backend,
            ops: c.ops,
            elapsed_ns: c.elapsed_ns,
            allocations: c.allocations,
            resizes: c.resizes,
            frees: c.frees,
            peak_bytes,
            by_tag: c.by_tag,
            skipped_failed: c.skipped_failed,
            failures: c.failures,
            orphaned: c.orphaned,
            freed_at_end: c.freed_at_end,
            backend_stats: stats,
        }
    }
}

/// Performs every event of `trace` through `heap`, in order, and measures the loop.
///
/// A call that fails here but not in the recording cannot desynchronise later events: a failed
/// resize keeps the old size, and events on a block whose allocation failed are skipped
/// (`orphaned`). One byte of each new block is written, as Lua initialises every object it
/// allocates, so the memory is touched and a backend cannot win by handing out pages it never
/// maps.
///
/// Events that failed when recorded are skipped rather than replayed: whether a call fails
/// depends on the recording backend, its limit and the machine, not on the program, and
/// replaying it would mostly time an error path. They are counted in `skipped_failed`.
///
/// Blocks the trace leaves live are freed after the timed loop, so the heap is left with the
/// live bytes it had before (0 for a fresh heap).
pub fn replay<B: Backend, A: Accounting>(trace: &Trace, heap: &mut Heap<B, A>) -> ReplayResult {
    let live_before = heap.total_bytes();
    let mut stats = BackendStats::default();
    let c = run_events(trace, heap, |h| stats = h.backend().stats());
    debug_assert_eq!(heap.total_bytes(), live_before, "trace: replay leaked");
    ReplayResult::from_counts(
        heap.backend().name().to_string(),
        c,
        heap.stats().peak,
        stats,
    )
}

/// [`replay`] through a `lua_Alloc` function and its `ud`, called exactly as Lua calls it: what
/// an interpreter on that pair would do, including the indirect call. `peak_bytes` is the
/// trace's own peak of live bytes (what Lua asked for, the same on every backend), and
/// `backend_stats` is left empty (the pair does not say).
///
/// # Safety
///
/// `f` and `ud` form a valid allocation function pair (what `lua_newstate` needs) with no live
/// block, used by nothing else during the call; it stays valid for the whole replay.
pub unsafe fn replay_function(
    trace: &Trace,
    backend: &str,
    f: LuaAlloc,
    ud: *mut c_void,
) -> ReplayResult {
    let c = run_events(trace, &mut Function(f, ud), |_| {});
    let peak = trace.summary().peak_live_bytes as usize;
    ReplayResult::from_counts(backend.to_owned(), c, peak, BackendStats::default())
}
