//! The per-block record that [`Monitor`](super::Monitor), [`Checker`](super::Checker) and
//! [`Registry`](super::Registry) keep: matched by the block's pointer, never by its size.

use lmem_backend::Tag;
use std::collections::HashMap;
use std::ptr::NonNull;

/// What is known of one live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRecord {
    /// The size the caller last gave it.
    pub size: usize,
    /// The Lua type it was made for.
    pub tag: Tag,
    /// Its allocation's sequence number (1 for the first block made).
    pub seq: u64,
}

/// Live blocks by address.
#[derive(Debug, Default)]
pub struct BlockTable {
    map: HashMap<usize, BlockRecord>,
    seq: u64,
    bytes: usize,
}

impl BlockTable {
    /// Records a new block and returns its sequence number.
    pub fn insert(&mut self, p: NonNull<u8>, size: usize, tag: Tag) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        let old = self
            .map
            .insert(p.as_ptr() as usize, BlockRecord { size, tag, seq });
        debug_assert!(old.is_none(), "block {p:p} handed out while live");
        self.bytes += size;
        seq
    }

    /// The record of the live block at `p`.
    pub fn get(&self, p: NonNull<u8>) -> Option<&BlockRecord> {
        self.map.get(&(p.as_ptr() as usize))
    }

    /// Forgets the block at `p`, returning its record.
    pub fn remove(&mut self, p: NonNull<u8>) -> Option<BlockRecord> {
        let r = self.map.remove(&(p.as_ptr() as usize))?;
        self.bytes -= r.size;
        Some(r)
    }

    /// Moves the record of `old` to `new` with a new size (after a resize).
    pub fn moved(&mut self, old: NonNull<u8>, new: NonNull<u8>, size: usize) {
        if let Some(mut r) = self.remove(old) {
            r.size = size;
            self.bytes += size;
            self.map.insert(new.as_ptr() as usize, r);
        }
    }

    /// Whether `p` is a live block.
    pub fn contains(&self, p: NonNull<u8>) -> bool {
        self.map.contains_key(&(p.as_ptr() as usize))
    }

    /// Live blocks.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no block is live.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes in live blocks.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Allocations recorded so far.
    pub fn allocations(&self) -> u64 {
        self.seq
    }

    /// Live blocks by address, oldest first.
    pub fn live(&self) -> Vec<(usize, BlockRecord)> {
        let mut v: Vec<_> = self.map.iter().map(|(&a, &r)| (a, r)).collect();
        v.sort_by_key(|(_, r)| r.seq);
        v
    }
}
