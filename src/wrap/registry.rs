//! `Registry`: remembers the address of every live block, so that `owns` is exact for any
//! backend — what hot swap needs to route frees when a member (`system`, `jemalloc`) cannot
//! tell its own blocks.

use super::blocks::BlockTable;
use lmem_backend::{Backend, BackendStats, ExactOwnership, Ownership, ResetUnsupported, Tag};
use std::ptr::NonNull;

/// `B` with an exact `owns`, at the cost of a hash-table update per call.
#[derive(Debug, Default)]
pub struct Registry<B> {
    inner: B,
    blocks: BlockTable,
}

impl<B: Backend> Registry<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Registry {
            inner,
            blocks: BlockTable::default(),
        }
    }

    /// Live blocks.
    pub fn live_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, with every live block still in it (the registry of their addresses
    /// is dropped).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

// SAFETY: every call is forwarded unchanged to `B`; `owns` answers from the table of live blocks,
// which is updated after every successful call, so it is exact.
unsafe impl<B: Backend> Backend for Registry<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        let p = self.inner.allocate(size, tag)?;
        self.blocks.insert(p, size, tag);
        Some(p)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        self.blocks.remove(ptr);
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.deallocate(ptr, size) }
    }

    unsafe fn resize(&mut self, ptr: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
        // SAFETY: forwarded caller contract.
        let q = unsafe { self.inner.resize(ptr, old, new) }?;
        self.blocks.moved(ptr, q, new);
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
        self.inner.stats()
    }

    fn trim(&mut self) {
        self.inner.trim()
    }
}

// SAFETY: `owns` answers from the table of live blocks this wrapper keeps, updated after every
// successful call and never reading the blocks: `Owned` exactly for its live blocks, `Foreign`
// for every other address, never `Unknown`.
unsafe impl<B: Backend> ExactOwnership for Registry<B> {}
