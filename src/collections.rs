//! Rust collections in the VM's heap: an `allocator_api2` allocator for a shared heap handle,
//! so host-side data (`allocator_api2::vec::Vec`, `hashbrown` maps) is counted and limited with
//! the VM's own blocks.

use crate::heap::Heap;
use crate::stats::{Accounting, Detailed};
use allocator_api2::alloc::{AllocError, Allocator, Layout};
use lmem_backend::{ALIGN, Backend, Tag};
use std::cell::RefCell;
use std::ptr::NonNull;

/// A heap that Rust collections can allocate from through `&SharedHeap<B>`.
///
/// Layouts aligned above [`ALIGN`] are refused (`AllocError`); zero-sized requests get a dangling
/// pointer and touch nothing.
#[derive(Debug)]
pub struct SharedHeap<B: Backend, A: Accounting = Detailed> {
    heap: RefCell<Heap<B, A>>,
}

impl<B: Backend, A: Accounting> SharedHeap<B, A> {
    /// Shares `heap`.
    pub fn new(heap: Heap<B, A>) -> Self {
        SharedHeap {
            heap: RefCell::new(heap),
        }
    }

    /// Runs `f` with the heap (for its stats or limit).
    ///
    /// # Panics
    ///
    /// If called from inside an allocation of this heap (an emergency hook, say).
    pub fn with<R>(&self, f: impl FnOnce(&mut Heap<B, A>) -> R) -> R {
        f(&mut self.heap.borrow_mut())
    }

    /// Gives the heap back.
    pub fn into_inner(self) -> Heap<B, A> {
        self.heap.into_inner()
    }
}

fn dangling(layout: Layout) -> NonNull<[u8]> {
    // An address equal to the alignment is non-null and aligned, and never dereferenced for 0 B.
    let p = NonNull::new(layout.align() as *mut u8).expect("alignment is non-zero");
    NonNull::slice_from_raw_parts(p, 0)
}

// SAFETY: blocks come from the heap's backend, which upholds the contract: valid for the
// layout's size, aligned to ALIGN (layouts needing more are refused), never overlapping; they
// stay valid while the `SharedHeap` lives (the borrow `&'a SharedHeap` outlives the allocator
// and its clones, which all refer to the same heap); deallocate/grow/shrink pass the block's
// size back exactly as the layout says.
unsafe impl<B: Backend, A: Accounting> Allocator for &SharedHeap<B, A> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.align() > ALIGN {
            return Err(AllocError);
        }
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        let mut heap = self.heap.try_borrow_mut().map_err(|_| AllocError)?;
        let p = heap
            .try_malloc(layout.size(), Tag::Other)
            .map_err(|_| AllocError)?;
        let p = NonNull::new(p).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        // SAFETY: `ptr` was allocated by this allocator with `layout` (caller), so it is a live
        // block of the heap of size `layout.size()`.
        unsafe { self.heap.borrow_mut().free(ptr.as_ptr(), layout.size()) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: `ptr` is a live block of `old` (caller); `new.size() >= old.size()`.
        unsafe { self.resize(ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: `ptr` is a live block of `old` (caller); `new.size() <= old.size()`.
        unsafe { self.resize(ptr, old, new) }
    }
}

impl<B: Backend, A: Accounting> SharedHeap<B, A> {
    /// Grow or shrink through the heap's one entry point.
    ///
    /// # Safety
    ///
    /// `ptr` was allocated by this heap's allocator with `old`.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new.align() > ALIGN {
            return Err(AllocError);
        }
        if old.size() == 0 {
            return Allocator::allocate(&self, new);
        }
        if new.size() == 0 {
            // SAFETY: forwarded caller contract.
            unsafe { Allocator::deallocate(&self, ptr, old) };
            return Ok(dangling(new));
        }
        let mut heap = self.heap.try_borrow_mut().map_err(|_| AllocError)?;
        // SAFETY: `ptr` is a live block of the heap of size `old.size()` (caller).
        let q = unsafe { heap.try_realloc(ptr.as_ptr(), old.size(), new.size()) };
        let q = NonNull::new(q.map_err(|_| AllocError)?).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(q, new.size()))
    }
}
