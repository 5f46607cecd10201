//! `Checker`: what Lua's test suite does in `debug_realloc`, as a wrapper around any backend.
//!
//! Every block gets [`GUARD`] guard bytes after it, checked when it is freed or resized; new
//! memory is filled with [`FILL_NEW`] and freed memory with [`FILL_FREE`], so code that reads
//! uninitialised or freed memory sees garbage rather than luck; the `osize` of every free and
//! resize is compared with the size recorded for the block; double frees and foreign pointers
//! are caught (and not passed on); live blocks at the end are leaks.

use super::blocks::{BlockRecord, BlockTable};
use lmem_backend::{Backend, BackendStats, ExactOwnership, MAX_SIZE, Ownership, Tag};
use std::fmt;
use std::ptr::NonNull;

/// Guard bytes after each block.
pub const GUARD: usize = 16;
/// The guard bytes' value.
pub const GUARD_BYTE: u8 = 0xFD;
/// What new memory is filled with.
pub const FILL_NEW: u8 = 0xCD;
/// What freed memory is filled with.
pub const FILL_FREE: u8 = 0xDD;

/// A broken contract that a [`Checker`] caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Complaint {
    /// A free or resize named a block that is not live: a double free or a foreign pointer.
    UnknownBlock {
        /// The pointer.
        ptr: usize,
        /// `free` or `resize`.
        op: &'static str,
    },
    /// A free or resize gave an `osize` other than the block's size.
    WrongSize {
        /// The block.
        ptr: usize,
        /// Its recorded size.
        recorded: usize,
        /// The `osize` given.
        given: usize,
        /// `free` or `resize`.
        op: &'static str,
    },
    /// Bytes after a block were written to.
    GuardOverwritten {
        /// The block.
        ptr: usize,
        /// Its size.
        size: usize,
        /// First changed guard byte, counted from the block's end.
        at: usize,
    },
}

impl fmt::Display for Complaint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Complaint::UnknownBlock { ptr, op } => {
                write!(
                    f,
                    "{op} of {ptr:#x}, which is not a live block (double free or foreign)"
                )
            }
            Complaint::WrongSize {
                ptr,
                recorded,
                given,
                op,
            } => {
                write!(
                    f,
                    "{op} of {ptr:#x} with osize {given}, but its size is {recorded}"
                )
            }
            Complaint::GuardOverwritten { ptr, size, at } => {
                write!(
                    f,
                    "block {ptr:#x} of {size} B was overrun: guard byte {at} changed"
                )
            }
        }
    }
}

/// Checks every call against the contract before passing it to `B`.
#[derive(Debug, Default)]
pub struct Checker<B> {
    inner: B,
    blocks: BlockTable,
    complaints: Vec<Complaint>,
    strict: bool,
    name: String,
}

impl<B: Backend> Checker<B> {
    /// Records complaints and goes on.
    pub fn new(inner: B) -> Self {
        let name = format!("checker({})", inner.name());
        Checker {
            inner,
            blocks: BlockTable::default(),
            complaints: Vec::new(),
            strict: false,
            name,
        }
    }

    /// Panics at the first complaint (for tests). Through the `lua_Alloc` function a panic
    /// becomes a failed allocation, so prefer [`Checker::new`] there and read the complaints.
    pub fn strict(inner: B) -> Self {
        Checker {
            strict: true,
            ..Self::new(inner)
        }
    }

    /// What was caught so far.
    pub fn complaints(&self) -> &[Complaint] {
        &self.complaints
    }

    /// Blocks still live: at close, the leaks.
    pub fn leaks(&self) -> Vec<(usize, BlockRecord)> {
        self.blocks.live()
    }

    /// Bytes still live.
    pub fn live_bytes(&self) -> usize {
        self.blocks.bytes()
    }

    /// Whether nothing was caught and nothing is live.
    pub fn is_clean(&self) -> bool {
        self.complaints.is_empty() && self.blocks.is_empty()
    }

    /// A text report: complaints, then leaks.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for c in &self.complaints {
            s += &format!("checker: {c}\n");
        }
        for (addr, r) in self.leaks() {
            s += &format!(
                "checker: leak #{} of {} B ({}) at {addr:#x}\n",
                r.seq, r.size, r.tag
            );
        }
        s
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, mutably (to configure it, or to swap inside it; its live blocks
    /// stay known to the wrapper).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    fn complain(&mut self, c: Complaint) {
        if self.strict {
            panic!("checker: {c}");
        }
        self.complaints.push(c);
    }

    /// Looks the block up and checks `osize` and its guard; returns the size to use.
    fn check(&mut self, ptr: NonNull<u8>, osize: usize, op: &'static str) -> Option<usize> {
        let addr = ptr.as_ptr() as usize;
        let Some(&BlockRecord { size, .. }) = self.blocks.get(ptr) else {
            self.complain(Complaint::UnknownBlock { ptr: addr, op });
            return None;
        };
        if size != osize {
            self.complain(Complaint::WrongSize {
                ptr: addr,
                recorded: size,
                given: osize,
                op,
            });
        }
        // SAFETY: the block is live with `size + GUARD` bytes (we allocated it so).
        let guard = unsafe { std::slice::from_raw_parts(ptr.as_ptr().add(size), GUARD) };
        if let Some(at) = guard.iter().position(|&b| b != GUARD_BYTE) {
            self.complain(Complaint::GuardOverwritten {
                ptr: addr,
                size,
                at,
            });
        }
        Some(size)
    }
}

/// Writes the guard after a block of `size` bytes at `p`.
///
/// # Safety
///
/// `p` has `size + GUARD` writable bytes.
unsafe fn put_guard(p: NonNull<u8>, size: usize) {
    // SAFETY: `size + GUARD` writable bytes (caller).
    unsafe { p.as_ptr().add(size).write_bytes(GUARD_BYTE, GUARD) }
}

// SAFETY: blocks are the inner backend's blocks of `size + GUARD` bytes (same alignment, no
// overlap); the caller sees only the first `size`; resize keeps the prefix through the inner
// resize; a failure leaves the inner block and its guard untouched; frees of unknown blocks are
// refused rather than passed on; `owns` answers from the table of live blocks, exactly.
unsafe impl<B: Backend> Backend for Checker<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_SIZE - GUARD {
            return None;
        }
        let p = self.inner.allocate(size + GUARD, tag)?;
        // SAFETY: a fresh block of `size + GUARD` bytes.
        unsafe {
            p.as_ptr().write_bytes(FILL_NEW, size);
            put_guard(p, size);
        }
        self.blocks.insert(p, size, tag);
        Some(p)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, osize: usize) {
        let Some(size) = self.check(ptr, osize, "free") else {
            return; // not ours to free: complained, and nothing passed on
        };
        self.blocks.remove(ptr);
        // SAFETY: a live inner block of `size + GUARD` bytes, given back once.
        unsafe {
            ptr.as_ptr().write_bytes(FILL_FREE, size + GUARD);
            self.inner.deallocate(ptr, size + GUARD);
        }
    }

    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        osize: usize,
        nsize: usize,
    ) -> Option<NonNull<u8>> {
        let size = self.check(ptr, osize, "resize")?;
        if nsize > MAX_SIZE - GUARD {
            return None;
        }
        // SAFETY: a live inner block of `size + GUARD` bytes. On failure it is untouched.
        let q = unsafe { self.inner.resize(ptr, size + GUARD, nsize + GUARD) }?;
        // SAFETY: `q` has `nsize + GUARD` bytes; the part beyond the old size is new.
        unsafe {
            if nsize > size {
                q.as_ptr().add(size).write_bytes(FILL_NEW, nsize - size);
            }
            put_guard(q, nsize);
        }
        self.blocks.moved(ptr, q, nsize);
        Some(q)
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        if self.blocks.contains(ptr) {
            Ownership::Owned
        } else {
            Ownership::Foreign
        }
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
unsafe impl<B: Backend> ExactOwnership for Checker<B> {}
