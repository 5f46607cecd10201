//! [`SharedMimalloc`]: the states of a thread on one mimalloc heap, each block tagged with its
//! state so that ownership stays exact.

use crate::{HeapUnavailable, collect, configure_mimalloc, heap_has, heap_unavailable, request};
use libmimalloc_sys as mi;
use lmem_backend::{
    ALIGN, Backend, BackendStats, ExactOwnership, MAX_SIZE, Ownership, ResetUnsupported, Tag,
};
use std::cell::RefCell;
use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes in front of every block: the owning state's id (8 bytes), padded to keep the block
/// [`ALIGN`]-aligned.
const HEADER: usize = ALIGN;

/// Largest size a caller may ask for: the header must still fit under [`MAX_SIZE`].
const MAX_REQUEST: usize = MAX_SIZE - HEADER;

/// Ids of shared-heap states: process-wide, never reused, never 0.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A mimalloc heap made for the shared states of one thread, destroyed when the thread's slot
/// and every state on it are gone.
struct ThreadHeap {
    heap: NonNull<mi::mi_heap_t>,
}

impl ThreadHeap {
    fn new() -> Result<Self, HeapUnavailable> {
        configure_mimalloc();
        // SAFETY: mi_heap_new has no preconditions; it returns NULL or a new heap bound to the
        // calling thread.
        let heap = NonNull::new(unsafe { mi::mi_heap_new() }).ok_or(HeapUnavailable)?;
        Ok(ThreadHeap { heap })
    }
}

impl Drop for ThreadHeap {
    fn drop(&mut self) {
        // SAFETY: made by mi_heap_new on this thread (`Rc` keeps it here); the last `Rc` is
        // going, so no state holds a block of it any more (each frees its own on drop).
        unsafe { mi::mi_heap_destroy(self.heap.as_ptr()) }
    }
}

thread_local! {
    /// This thread's shared heap, made on first use and kept until the thread ends.
    static THREAD_HEAP: RefCell<Option<Rc<ThreadHeap>>> = const { RefCell::new(None) };
}

/// This thread's shared heap (made now if need be). While the thread is being torn down and its
/// slot is gone, a heap of its own.
fn thread_heap() -> Result<Rc<ThreadHeap>, HeapUnavailable> {
    THREAD_HEAP
        .try_with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some(h) = &*slot {
                return Ok(Rc::clone(h));
            }
            let h = Rc::new(ThreadHeap::new()?);
            *slot = Some(Rc::clone(&h));
            Ok(h)
        })
        .unwrap_or_else(|_| ThreadHeap::new().map(Rc::new))
}

/// The states of a thread on **one** mimalloc heap: a backend for many small states.
///
/// A mimalloc heap keeps a page per size class in use, plus bookkeeping, so one heap per state
/// ([`Mimalloc`](crate::Mimalloc)) costs a small state several times its live bytes (see the
/// crate docs for the figures). Here every `SharedMimalloc` of a thread allocates from the same
/// heap, made for this purpose (not the thread's default heap, so nothing else allocates in
/// it), and pages fill with the blocks of many states.
///
/// Ownership stays exact: every block carries a 16-byte header with its state's id, and
/// [`owns`](Backend::owns) answers `Owned` only for a pointer whose block lies in the shared
/// heap (`mi_heap_contains` in 3.x, constant time; `mi_heap_check_owned` in 2.x, linear in the
/// shared heap's pages) and whose header names this state.
///
/// Costs, against `Mimalloc`: the header (16 bytes a block), a store per allocation, and a
/// drop or [`reset`](Backend::reset) that must find the blocks still live — they are found by
/// visiting the shared heap's blocks (linear in its blocks), which happens only when the state
/// did not free everything (Lua frees every block in `lua_close`).
///
/// Not `Send`, not `Sync`, like `Mimalloc`: the heap belongs to the thread.
pub struct SharedMimalloc {
    heap: Rc<ThreadHeap>,
    /// This state's id, written into every block's header.
    id: u64,
    /// Live blocks of this state.
    blocks: usize,
    /// Bytes asked of mimalloc for them, headers included.
    bytes: usize,
}

impl fmt::Debug for SharedMimalloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMimalloc")
            .field("heap", &self.heap.heap)
            .field("id", &self.id)
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl Default for SharedMimalloc {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedMimalloc {
    /// A new state on this thread's shared heap (made on the first call of the thread), or
    /// [`HeapUnavailable`] if mimalloc has no memory for the heap.
    pub fn try_new() -> Result<Self, HeapUnavailable> {
        Ok(SharedMimalloc {
            heap: thread_heap()?,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            blocks: 0,
            bytes: 0,
        })
    }

    /// A new state on this thread's shared heap.
    ///
    /// # Panics
    ///
    /// If mimalloc cannot create the heap (out of memory); [`SharedMimalloc::try_new`] reports
    /// it instead.
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(m) => m,
            Err(e) => heap_unavailable(e),
        }
    }

    /// The shared `mi_heap_t` (the same for every `SharedMimalloc` of this thread). Its blocks
    /// start 16 bytes before the pointers this backend hands out.
    pub fn as_raw(&self) -> *mut mi::mi_heap_t {
        self.heap.heap.as_ptr()
    }

    /// Gives memory back: collects the shared heap as [`Mimalloc::trim`](crate::Mimalloc::trim)
    /// does. It frees the empty pages of every state of the thread, not only this one's.
    pub fn trim(&mut self) {
        // SAFETY: the shared heap is live (we hold an `Rc`) and belongs to this thread.
        unsafe { collect(self.as_raw()) }
    }

    /// Frees every block of this state still live, found by visiting the shared heap.
    fn free_all(&mut self) {
        if self.blocks == 0 {
            return;
        }
        let mut mine = Mine {
            id: self.id,
            found: Vec::new(),
        };
        if mine.found.try_reserve_exact(self.blocks).is_err() {
            // No memory to list them: they stay allocated until the shared heap goes.
            return;
        }
        // SAFETY: the heap is live and ours to use on this thread; `collect_mine` matches
        // `mi_block_visit_fun`, does not unwind, reads only the first 8 bytes of live blocks
        // (every block of this heap has a header) and touches only the `Mine` behind `arg`,
        // which lives across the call.
        unsafe {
            mi::mi_heap_visit_blocks(
                self.as_raw(),
                true,
                Some(collect_mine),
                (&raw mut mine).cast::<c_void>(),
            )
        };
        for base in mine.found {
            // SAFETY: a live block of this heap whose header names this state: one of ours,
            // listed once, freed once and not used again.
            unsafe { mi::mi_free(base) };
        }
        self.blocks = 0;
        self.bytes = 0;
    }
}

/// What `free_all` looks for while visiting: the blocks whose header is `id`.
struct Mine {
    id: u64,
    /// Room reserved for every live block of the state; never grown during the visit.
    found: Vec<*mut c_void>,
}

/// Lists the block at `block` in the `Mine` behind `arg` if its header names `Mine::id`.
/// Called by mimalloc from C: it must not unwind (no allocation: `found` has room).
unsafe extern "C" fn collect_mine(
    _heap: *const mi::mi_heap_t,
    _area: *const mi::mi_heap_area_t,
    block: *mut c_void,
    _block_size: usize,
    arg: *mut c_void,
) -> bool {
    if block.is_null() {
        return true;
    }
    // SAFETY: `arg` is the `&mut Mine` that `free_all` passed, alive and not otherwise used
    // during the visit.
    let mine = unsafe { &mut *arg.cast::<Mine>() };
    // SAFETY: `block` is a live block of the shared heap, so it starts with a header written by
    // `allocate` (16-aligned, at least 16 bytes).
    let id = unsafe { block.cast::<u64>().read() };
    if id == mine.id && mine.found.len() < mine.found.capacity() {
        mine.found.push(block);
    }
    true
}

impl Drop for SharedMimalloc {
    /// Frees the blocks this state left (if any); the shared heap stays for the thread's other
    /// states.
    fn drop(&mut self) {
        self.free_all();
    }
}

/// The pointer handed out for a block that mimalloc placed at `base`.
///
/// # Safety
///
/// `base` is a block of at least `HEADER + 1` bytes.
#[inline]
unsafe fn user(base: NonNull<c_void>) -> NonNull<u8> {
    // SAFETY: `HEADER` bytes past the start are still inside the block (caller).
    unsafe { base.cast::<u8>().add(HEADER) }
}

/// The start of the mimalloc block behind a pointer this backend handed out.
#[inline]
fn base(ptr: NonNull<u8>) -> *mut c_void {
    ptr.as_ptr().wrapping_sub(HEADER).cast()
}

// SAFETY: every block is a mimalloc block of the shared heap with a header in front: the caller
// gets `base + 16`, which is 16-aligned (mimalloc serves requests of 32 bytes and more
// 16-aligned, see `request`) and has at least the requested size behind it; requests above
// MAX_SIZE are refused (`MAX_REQUEST` keeps the header from overflowing); mi_heap_realloc keeps
// the header and the prefix and leaves the old block alone on failure; a failed shrink keeps the
// old block; frees never fail; `owns` says Owned only for a pointer whose block is in the shared
// heap and whose header carries this state's id, which no other state and no other allocator
// writes there; nothing unwinds. Blocks live in the heap, not in `self`.
unsafe impl Backend for SharedMimalloc {
    fn name(&self) -> &str {
        "mimalloc-shared"
    }

    #[inline]
    fn allocate(&mut self, size: usize, _tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_REQUEST {
            return None;
        }
        let req = request(size) + HEADER;
        let heap = self.as_raw();
        let p = if req <= mi::MI_SMALL_SIZE_MAX {
            // SAFETY: the shared heap is live and this thread's; `req <= MI_SMALL_SIZE_MAX`.
            unsafe { mi::mi_heap_malloc_small(heap, req) }
        } else {
            // SAFETY: the shared heap is live and this thread's; any size is accepted.
            unsafe { mi::mi_heap_malloc(heap, req) }
        };
        let p = NonNull::new(p)?;
        // SAFETY: a fresh block of `req >= 32` bytes, 16-aligned: room for the header.
        unsafe { p.cast::<u64>().write(self.id) };
        self.blocks += 1;
        self.bytes += req;
        // SAFETY: the block has `req = HEADER + request(size)` bytes.
        let q = unsafe { user(p) };
        debug_assert_eq!(
            q.as_ptr() as usize % ALIGN,
            0,
            "mimalloc gave a misaligned block"
        );
        Some(q)
    }

    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        let req = request(size) + HEADER;
        // SAFETY: `ptr` is a live block of ours (caller), so `base(ptr)` is its mimalloc block
        // of at least `req` usable bytes; freed once.
        unsafe { mi::mi_free_size(base(ptr), req) };
        self.blocks -= 1;
        self.bytes -= req;
    }

    #[inline]
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        if new_size > MAX_REQUEST {
            return None;
        }
        let old_req = request(old_size) + HEADER;
        let new_req = request(new_size) + HEADER;
        // SAFETY: the shared heap is live and this thread's; `base(ptr)` is a live block of it
        // (caller). On NULL the old block is untouched and still live.
        let q = unsafe { mi::mi_heap_realloc(self.as_raw(), base(ptr), new_req) };
        match NonNull::new(q) {
            Some(q) => {
                self.bytes = self.bytes - old_req + new_req;
                // SAFETY: the block has `new_req` bytes and kept its header (the prefix).
                let q = unsafe { user(q) };
                debug_assert_eq!(
                    q.as_ptr() as usize % ALIGN,
                    0,
                    "mimalloc gave a misaligned block"
                );
                Some(q)
            }
            // A shrink never fails: the old block is large enough.
            None => (new_size <= old_size).then_some(ptr),
        }
    }

    /// Exact: the header is read only once mimalloc has said that both the pointer and the
    /// header's address lie in blocks of the shared heap (so the read stays in its memory).
    /// [`SharedMimalloc::trim`]: the shared heap collected.
    fn trim(&mut self) {
        SharedMimalloc::trim(self)
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        let heap = self.as_raw();
        let head = base(ptr);
        let mine = heap_has(heap, ptr.as_ptr().cast())
            && heap_has(heap, head)
            // SAFETY: `head` lies in the block area of one of the shared heap's pages, which
            // mimalloc keeps mapped and readable; for a live block of any shared state it is
            // that block's header. Unaligned, in general, for a pointer that is no block.
            && unsafe { head.cast::<u64>().read_unaligned() } == self.id;
        if mine {
            Ownership::Owned
        } else {
            Ownership::Foreign
        }
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: `base(ptr)` is a live mimalloc block (caller).
        let usable = unsafe { mi::mi_usable_size(base(ptr)) };
        usable.saturating_sub(HEADER).max(size)
    }

    /// Frees every block of this state (visiting the shared heap if some are live); the other
    /// states of the thread keep theirs.
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        self.free_all();
        Ok(())
    }

    /// This state's live `blocks`, and `allocated`: the bytes asked of mimalloc for them,
    /// headers included, before mimalloc's rounding to its size classes. `reserved` is left
    /// out: the shared heap's pages are every state's.
    fn stats(&self) -> BackendStats {
        BackendStats {
            allocated: Some(self.bytes),
            reserved: None,
            wasted: None,
            blocks: Some(self.blocks),
        }
    }
}

// SAFETY: `owns` answers Owned only when mimalloc says both the pointer and its header lie in the
// shared heap's pages and the header carries this state's id (ids are never reused, and only this
// backend writes them); every live block of this state passes; an address outside the shared
// heap is Foreign without any read, and the header read happens inside pages mimalloc keeps
// mapped. Another state's blocks carry another id: Foreign. It never answers Unknown.
unsafe impl ExactOwnership for SharedMimalloc {}
