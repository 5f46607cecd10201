//! `Summary`: what a trace holds, without replaying it.

use super::reader::{Op, Trace};
use crate::stats::{Histogram, TagStats};
use lmem_backend::Tag;
use std::fmt;

/// Counts of a trace's events, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// All events.
    pub events: u64,
    /// Successful allocations.
    pub allocations: u64,
    /// Successful resizes.
    pub resizes: u64,
    /// Frees.
    pub frees: u64,
    /// Allocations that returned NULL.
    pub failed_allocations: u64,
    /// Resizes that returned NULL.
    pub failed_resizes: u64,
    /// Successful allocations and their bytes per Lua type.
    pub by_tag: [TagStats; Tag::COUNT],
    /// Sizes of new blocks (successful allocations).
    pub histogram: Histogram,
    /// Bytes asked for by new blocks and by the growing part of resizes.
    pub bytes_allocated: u64,
    /// Most bytes live at once, as the recording saw them.
    pub peak_live_bytes: u64,
    /// Most blocks live at once (= [`Trace::block_ids`]).
    pub peak_live_blocks: u64,
    /// Blocks the trace leaves live at its end (0 when the program closed its state).
    pub live_blocks_at_end: u64,
    /// Their bytes.
    pub live_bytes_at_end: u64,
}

impl Trace {
    /// Counts what the trace holds, following each block's size as the events change it.
    ///
    /// Computed on demand in one pass rather than kept with the trace, so that reading a trace
    /// stays one tight loop and a caller who only replays pays nothing for it. Byte sums
    /// saturate: a crafted trace may claim more bytes than exist.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            events: self.len() as u64,
            peak_live_blocks: self.block_ids() as u64,
            ..Summary::default()
        };
        let mut sizes = vec![0u64; self.block_ids()];
        let (mut live, mut blocks) = (0u64, 0u64);
        for e in self.events() {
            match (e.op, e.failed) {
                (Op::Alloc(_), true) => s.failed_allocations += 1,
                (Op::Resize, true) => s.failed_resizes += 1,
                (Op::Alloc(tag), false) => {
                    s.allocations += 1;
                    let t = &mut s.by_tag[tag.index()];
                    t.count += 1;
                    t.bytes = t.bytes.saturating_add(e.size);
                    s.histogram
                        .add(usize::try_from(e.size).unwrap_or(usize::MAX));
                    s.bytes_allocated = s.bytes_allocated.saturating_add(e.size);
                    sizes[e.id as usize] = e.size;
                    live = live.saturating_add(e.size);
                    blocks += 1;
                }
                (Op::Resize, false) => {
                    s.resizes += 1;
                    let old = std::mem::replace(&mut sizes[e.id as usize], e.size);
                    s.bytes_allocated =
                        s.bytes_allocated.saturating_add(e.size.saturating_sub(old));
                    live = live.saturating_sub(old).saturating_add(e.size);
                }
                (Op::Free, _) => {
                    s.frees += 1;
                    live = live.saturating_sub(std::mem::take(&mut sizes[e.id as usize]));
                    blocks -= 1;
                }
            }
            s.peak_live_bytes = s.peak_live_bytes.max(live);
        }
        s.live_blocks_at_end = blocks;
        s.live_bytes_at_end = live;
        s
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "events      {}   peak live {} B in at most {} blocks",
            self.events, self.peak_live_bytes, self.peak_live_blocks
        )?;
        writeln!(
            f,
            "allocs      {}   resizes {}   frees {}   failed allocs {}   failed resizes {}",
            self.allocations,
            self.resizes,
            self.frees,
            self.failed_allocations,
            self.failed_resizes
        )?;
        writeln!(
            f,
            "allocated   {} B   live at end {} B in {} blocks",
            self.bytes_allocated, self.live_bytes_at_end, self.live_blocks_at_end
        )?;
        writeln!(
            f,
            "by type     {:>10} {:>14} {:>8}",
            "blocks", "bytes", "avg"
        )?;
        for tag in Tag::ALL {
            let t = self.by_tag[tag.index()];
            if t.count > 0 {
                writeln!(
                    f,
                    "  {:<9} {:>10} {:>14} {:>8.1}",
                    tag.name(),
                    t.count,
                    t.bytes,
                    t.bytes as f64 / t.count as f64
                )?;
            }
        }
        writeln!(f, "sizes")?;
        for (i, &n) in self.histogram.buckets.iter().enumerate() {
            if n > 0 {
                match Histogram::upper(i) {
                    Some(u) => writeln!(f, "  <= {u:<8} {n}")?,
                    None => writeln!(f, "  >  {:<8} {n}", 1 << 20)?,
                }
            }
        }
        Ok(())
    }
}
