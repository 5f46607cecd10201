//! `Monitor`: a record per live block (size, tag, sequence number), and at close a leak report
//! and a size distribution: a monitoring allocator, with each free matched to its own record by
//! its pointer (not to the first live record of the same size).

use super::blocks::{BlockRecord, BlockTable};
use crate::stats::Histogram;
use lmem_backend::{Backend, BackendStats, ExactOwnership, Ownership, ResetUnsupported, Tag};
use std::fmt;
use std::ptr::NonNull;

/// Watches every block of `B`.
#[derive(Debug, Default)]
pub struct Monitor<B> {
    inner: B,
    blocks: BlockTable,
    peak: usize,
    sizes: [Histogram; Tag::COUNT],
    name: String,
}

/// What a [`Monitor`] saw: the blocks still live (leaks, at close) and the size distribution of
/// every block made, per Lua type.
#[derive(Clone, Debug)]
pub struct MonitorReport {
    /// Blocks made.
    pub allocations: u64,
    /// Highest live byte count.
    pub peak: usize,
    /// Blocks still live, oldest first: `(address, record)`.
    pub leaks: Vec<(usize, BlockRecord)>,
    /// Sizes of the blocks made, per tag.
    pub sizes: [Histogram; Tag::COUNT],
}

impl MonitorReport {
    /// Bytes still live.
    pub fn leaked_bytes(&self) -> usize {
        self.leaks.iter().map(|(_, r)| r.size).sum()
    }
}

impl fmt::Display for MonitorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "blocks made {}   peak {} B", self.allocations, self.peak)?;
        for tag in Tag::ALL {
            let h = &self.sizes[tag.index()];
            if h.total() > 0 {
                let [s, m, l] = h.coarse();
                writeln!(
                    f,
                    "  {:<9} <=64 B: {s:<8} <=1 KiB: {m:<8} larger: {l}",
                    tag.name()
                )?;
            }
        }
        if self.leaks.is_empty() {
            return writeln!(f, "no leaks");
        }
        writeln!(
            f,
            "{} blocks leaked, {} B:",
            self.leaks.len(),
            self.leaked_bytes()
        )?;
        for (addr, r) in self.leaks.iter().take(20) {
            writeln!(
                f,
                "  #{:<8} {:>8} B  {:<9} at {addr:#x}",
                r.seq,
                r.size,
                r.tag.name()
            )?;
        }
        if self.leaks.len() > 20 {
            writeln!(f, "  … and {} more", self.leaks.len() - 20)?;
        }
        Ok(())
    }
}

impl<B: Backend> Monitor<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        let name = format!("monitor({})", inner.name());
        Monitor {
            inner,
            blocks: BlockTable::default(),
            peak: 0,
            sizes: Default::default(),
            name,
        }
    }

    /// The record of a live block.
    pub fn record(&self, ptr: NonNull<u8>) -> Option<&BlockRecord> {
        self.blocks.get(ptr)
    }

    /// The report so far; at close, its `leaks` are the leaks.
    pub fn report(&self) -> MonitorReport {
        MonitorReport {
            allocations: self.blocks.allocations(),
            peak: self.peak,
            leaks: self.blocks.live(),
            sizes: self.sizes,
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

// SAFETY: every call is forwarded unchanged to `B`, which upholds the contract; the wrapper only
// records.
unsafe impl<B: Backend> Backend for Monitor<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        let p = self.inner.allocate(size, tag)?;
        self.blocks.insert(p, size, tag);
        self.sizes[tag.index()].add(size);
        self.peak = self.peak.max(self.blocks.bytes());
        Some(p)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        let r = self.blocks.remove(ptr);
        debug_assert!(
            r.is_some_and(|r| r.size == size),
            "monitor: bad free of {ptr:p}"
        );
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.deallocate(ptr, size) }
    }

    unsafe fn resize(&mut self, ptr: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
        // SAFETY: forwarded caller contract.
        let q = unsafe { self.inner.resize(ptr, old, new) }?;
        self.blocks.moved(ptr, q, new);
        self.peak = self.peak.max(self.blocks.bytes());
        Some(q)
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        if self.blocks.contains(ptr) {
            Ownership::Owned
        } else {
            Ownership::Foreign
        }
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.usable_size(ptr, size) }
    }

    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.reset() }?;
        self.blocks = BlockTable::default();
        Ok(())
    }

    fn stats(&self) -> BackendStats {
        BackendStats {
            blocks: Some(self.blocks.len()),
            ..self.inner.stats()
        }
    }

    fn trim(&mut self) {
        self.inner.trim()
    }
}

// SAFETY: `owns` answers from the table of live blocks this wrapper keeps, updated after every
// successful call and never reading the blocks: `Owned` exactly for its live blocks, `Foreign`
// for every other address, never `Unknown`.
unsafe impl<B: Backend> ExactOwnership for Monitor<B> {}
