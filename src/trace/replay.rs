//! `replay`: a trace performed through a heap, timed.

use super::reader::{Op, Trace};
use crate::heap::Heap;
use crate::stats::{Accounting, TagStats};
use lmem_backend::{Backend, BackendStats, Tag};
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

/// Performs every event of `trace` through `heap`, in order, and measures the loop.
///
/// Each block lives in a table slot indexed by its id (the trace was validated, so ids are in
/// range), holding the block's pointer and the size the *replay* gave it, so a call that fails
/// here but not in the recording cannot desynchronise later events: a failed resize keeps the
/// old size, and events on a block whose allocation failed are skipped (`orphaned`). One byte
/// of each new block is written, as Lua initialises every object it allocates, so the memory is
/// touched and a backend cannot win by handing out pages it never maps.
///
/// Events that failed when recorded are skipped rather than replayed: whether a call fails
/// depends on the recording backend, its limit and the machine, not on the program, and
/// replaying it would mostly time an error path. They are counted in `skipped_failed`.
///
/// Blocks the trace leaves live are freed after the timed loop, so the heap is left with the
/// live bytes it had before (0 for a fresh heap).
pub fn replay<B: Backend, A: Accounting>(trace: &Trace, heap: &mut Heap<B, A>) -> ReplayResult {
    let live_before = heap.total_bytes();
    let before = heap.stats();
    let mut slots: Vec<(*mut u8, usize)> = vec![(ptr::null_mut(), 0); trace.block_ids()];
    let (mut ops, mut skipped_failed, mut failures, mut orphaned) = (0u64, 0u64, 0u64, 0u64);

    let start = Instant::now();
    for e in trace.events() {
        if e.failed {
            skipped_failed += 1;
            continue;
        }
        // Sizes above `usize` (a trace from a wider machine) fail like any impossible size.
        let size = usize::try_from(e.size).unwrap_or(usize::MAX);
        let slot = &mut slots[e.id as usize];
        match e.op {
            Op::Alloc(tag) => {
                debug_assert!(slot.0.is_null(), "trace: alloc into a live slot");
                ops += 1;
                match heap.try_malloc(size, tag) {
                    Ok(p) if !p.is_null() => {
                        // SAFETY: `p` is a new block of `size >= 1` bytes (the reader rejects
                        // size 0), owned by us; its first byte is writable.
                        unsafe { p.write(e.id as u8) };
                        *slot = (p, size);
                    }
                    _ => failures += 1,
                }
            }
            Op::Resize => {
                if slot.0.is_null() {
                    orphaned += 1;
                    continue;
                }
                ops += 1;
                // SAFETY: a non-null slot holds a live block of this heap with the size the
                // replay last gave it; `size > 0`. On success the old pointer is overwritten.
                match unsafe { heap.try_realloc(slot.0, slot.1, size) } {
                    Ok(q) => *slot = (q, size),
                    Err(_) => failures += 1,
                }
            }
            Op::Free => {
                if slot.0.is_null() {
                    orphaned += 1;
                    continue;
                }
                ops += 1;
                // SAFETY: a non-null slot holds a live block of this heap of size `slot.1`; the
                // slot is cleared at once, so it is not used again.
                unsafe { heap.free(slot.0, slot.1) };
                *slot = (ptr::null_mut(), 0);
            }
        }
    }
    let elapsed = start.elapsed();

    let after = heap.stats();
    let backend_stats = heap.backend().stats();
    let mut freed_at_end = 0;
    for (p, size) in slots {
        if !p.is_null() {
            // SAFETY: a non-null slot holds a live block of this heap of size `size`, freed once.
            unsafe { heap.free(p, size) };
            freed_at_end += 1;
        }
    }
    debug_assert_eq!(heap.total_bytes(), live_before, "trace: replay leaked");

    let mut by_tag = [TagStats::default(); Tag::COUNT];
    for (t, (a, b)) in by_tag
        .iter_mut()
        .zip(after.by_tag.iter().zip(&before.by_tag))
    {
        t.count = a.count - b.count;
        t.bytes = a.bytes - b.bytes;
    }
    ReplayResult {
        backend: heap.backend().name().to_string(),
        ops,
        elapsed_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        allocations: after.allocations() - before.allocations(),
        resizes: after.resizes - before.resizes,
        frees: after.frees - before.frees,
        peak_bytes: after.peak,
        by_tag,
        skipped_failed,
        failures,
        orphaned,
        freed_at_end,
        backend_stats,
    }
}
