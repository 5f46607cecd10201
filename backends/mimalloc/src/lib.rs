#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use libmimalloc_sys as mi;
use lmem_backend::{
    ALIGN, Backend, BackendStats, ExactOwnership, MAX_SIZE, Ownership, ResetUnsupported, Tag,
};
use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;

mod shared;
pub use shared::SharedMimalloc;

// Heap functions that `libmimalloc-sys` binds only for the other mimalloc version (or not at
// all): exact ownership. Declared here with the signatures of the mimalloc headers it builds.
#[cfg(not(mimalloc_v2))]
unsafe extern "C" {
    /// 3.x: whether `p` lies in a page of `heap`; safe for any pointer (page-map lookup, O(1)).
    fn mi_heap_contains(heap: *const mi::mi_heap_t, p: *const c_void) -> bool;
}
#[cfg(mimalloc_v2)]
unsafe extern "C" {
    /// 2.x: whether `p` lies in a page of `heap`; safe for any pointer (walks the heap's pages).
    fn mi_heap_check_owned(heap: *mut mi::mi_heap_t, p: *const c_void) -> bool;
}

/// `mi_option_arena_eager_commit`: the same number in mimalloc 2.x and 3.x (`mimalloc.h`).
const OPTION_ARENA_EAGER_COMMIT: mi::mi_option_t = 4;

/// Sets this crate's defaults for mimalloc's process-wide options, once, before the first heap
/// (so before mimalloc reserves its first arena, if this crate is its first user). A
/// `MIMALLOC_*` environment variable still wins: `mi_option_set_default` leaves an option alone
/// when the environment set it.
///
/// - `arena_eager_commit = 0`: commit arena memory when a segment or page needs it. By default
///   on Linux mimalloc maps its whole 1 GiB arena read-write up front and, unless the kernel's
///   transparent huge pages are `never`, `madvise(MADV_HUGEPAGE)`s it; then the first touch of
///   every 2 MiB of it faults in a whole huge page, and a Lua state's few pages per size class
///   hold 2 MiB each. Reserved `PROT_NONE` and committed on demand, the arena is not advised,
///   and the huge pages go (see the README for the figures).
fn configure_mimalloc() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: mi_option_set_default has no preconditions; the option number is valid in
        // both mimalloc versions this crate builds.
        unsafe { mi::mi_option_set_default(OPTION_ARENA_EAGER_COMMIT, 0) };
    });
}

/// The mimalloc version this crate is built with, as mimalloc counts it (`30302` is 3.3.2).
pub fn mimalloc_version() -> u32 {
    // SAFETY: mi_version has no preconditions.
    unsafe { mi::mi_version() as u32 }
}

/// mimalloc could not create a heap (out of memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapUnavailable;

impl fmt::Display for HeapUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not enough memory (mimalloc could not create a heap)")
    }
}

impl std::error::Error for HeapUnavailable {}

/// One mimalloc heap (`mi_heap_t`) as an `lmem` backend: the memory of one Lua state.
///
/// Dropping the value destroys the heap, freeing every block still in it at once.
///
/// Not `Send`, not `Sync`: the raw heap pointer keeps it on the thread that created it, which
/// mimalloc 2.x requires of a heap and which this crate keeps for 3.x too (see the crate docs).
pub struct Mimalloc {
    /// The heap, created by `mi_heap_new` on this thread and destroyed by `Drop`.
    heap: NonNull<mi::mi_heap_t>,
}

impl fmt::Debug for Mimalloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mimalloc")
            .field("heap", &self.heap)
            .finish()
    }
}

impl Default for Mimalloc {
    fn default() -> Self {
        Self::new()
    }
}

impl Mimalloc {
    /// A backend on a fresh mimalloc heap, or [`HeapUnavailable`] if mimalloc has no memory for
    /// the heap's own bookkeeping.
    pub fn try_new() -> Result<Self, HeapUnavailable> {
        configure_mimalloc();
        // SAFETY: mi_heap_new has no preconditions; it returns NULL or a new heap bound to the
        // calling thread.
        let heap = NonNull::new(unsafe { mi::mi_heap_new() }).ok_or(HeapUnavailable)?;
        Ok(Mimalloc { heap })
    }

    /// A backend on a fresh mimalloc heap.
    ///
    /// # Panics
    ///
    /// If mimalloc cannot create a heap (out of memory); [`Mimalloc::try_new`] reports it instead.
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(m) => m,
            Err(e) => heap_unavailable(e),
        }
    }

    /// A backend on this thread's **shared** heap instead of a heap of its own: the memory of
    /// one of many small states. See [`SharedMimalloc`].
    pub fn shared() -> SharedMimalloc {
        SharedMimalloc::new()
    }

    /// The raw `mi_heap_t`, for hosts that want to call mimalloc's heap API directly (for
    /// example `mi_heap_collect`). It stays owned by this value.
    pub fn as_raw(&self) -> *mut mi::mi_heap_t {
        self.heap.as_ptr()
    }

    /// Gives memory back: `mi_heap_collect(heap, true)` frees the heap's empty pages and
    /// purges free memory to the OS at once (without waiting for mimalloc's purge delay). Live
    /// blocks stay where they are. Worth calling after a full GC cycle that freed much, or when
    /// a state goes idle.
    ///
    /// In mimalloc 2.x (2.3.2) collecting a heap of its own leaves the thread's emptied
    /// segments committed (32 MiB of freed 64-byte blocks stayed resident in a test); what gives
    /// them back is a forced collect of the thread's default heap, so 2.x builds follow with
    /// `mi_collect(true)`, which also collects that heap.
    pub fn trim(&mut self) {
        // SAFETY: `heap` is our live heap, used on its thread.
        unsafe { collect(self.heap.as_ptr()) }
    }
}

/// Whether `p` lies in a page of `heap`, which must be live and (in 2.x) this thread's: exact
/// and safe for any pointer. 3.x asks its page map (constant time); 2.x first asks whether the
/// pointer is in mimalloc's memory at all (constant time for a few arenas), then walks the heap's
/// pages (linear: about 5 µs for an 8 MiB heap, 10 µs for 64 MiB) and says no for a pointer that
/// is not 8-aligned.
fn heap_has(heap: *mut mi::mi_heap_t, p: *const c_void) -> bool {
    #[cfg(not(mimalloc_v2))]
    // SAFETY: `heap` is live (caller); mi_heap_contains accepts any pointer (it consults
    // mimalloc's page map, which answers "none" for memory mimalloc does not manage).
    let found = unsafe { mi_heap_contains(heap, p) };
    #[cfg(mimalloc_v2)]
    // SAFETY: mi_is_in_heap_region accepts any pointer (it compares it with the arenas' ranges
    // and looks it up in the segment map); then `heap` is live and this thread's (caller), and
    // mi_heap_check_owned accepts any pointer (it compares it against the bounds of the heap's
    // pages). The first test answers memory that is not mimalloc's at once.
    let found = unsafe { mi::mi_is_in_heap_region(p) && mi_heap_check_owned(heap, p) };
    found
}

/// `mi_heap_collect(heap, true)`, and in 2.x `mi_collect(true)` (see [`Mimalloc::trim`]).
///
/// # Safety
///
/// `heap` is a live heap of the calling thread.
unsafe fn collect(heap: *mut mi::mi_heap_t) {
    // SAFETY: the caller passes a live heap of this thread.
    unsafe { mi::mi_heap_collect(heap, true) };
    if cfg!(mimalloc_v2) {
        // SAFETY: mi_collect has no preconditions (it collects this thread's default heap).
        unsafe { mi::mi_collect(true) };
    }
}

#[cold]
#[inline(never)]
fn heap_unavailable(e: HeapUnavailable) -> ! {
    panic!("{e}")
}

impl Drop for Mimalloc {
    /// Destroys the heap: every block still in it goes back to mimalloc at once, so a closed Lua
    /// state's memory is released even if the state leaked blocks.
    fn drop(&mut self) {
        // SAFETY: `heap` came from mi_heap_new on this thread (the type is !Send) and is
        // destroyed once; no block of it is used afterwards, because blocks are this backend's and
        // the backend is gone.
        unsafe { mi::mi_heap_destroy(self.heap.as_ptr()) }
    }
}

/// What we ask mimalloc for a block of `size` bytes: at least [`ALIGN`]. mimalloc gives 8-byte
/// blocks 8-byte alignment; from 16 bytes on, its size bins are whole multiples of 16 on 64-bit
/// targets (`MI_ALIGN2W`) and pages start 16-aligned, so every block is 16-aligned.
#[inline]
fn request(size: usize) -> usize {
    size.max(ALIGN)
}

// SAFETY: mi_heap_malloc(_small)/mi_heap_realloc return NULL or a fresh block of at least the
// requested size that overlaps no live block; every request is at least 16 bytes, which mimalloc
// serves 16-aligned (see `request`); requests above MAX_SIZE are refused before reaching
// mimalloc; mi_heap_realloc keeps the prefix and leaves the old block alone when it fails; a
// shrink that fails keeps the old block, which is large enough (mimalloc's free ignores the size);
// frees never fail; `owns` asks mimalloc's own exact ownership test; nothing here unwinds, and
// mimalloc returns NULL on out-of-memory. Blocks live in the heap's pages, never in `self`, so
// they survive moving the value (on its thread).
unsafe impl Backend for Mimalloc {
    fn name(&self) -> &str {
        "mimalloc"
    }

    /// Small blocks (Lua's bulk) take mimalloc's small-object path, which goes straight to the
    /// heap's per-size free list; larger ones take the general path.
    #[inline]
    fn allocate(&mut self, size: usize, _tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_SIZE {
            return None;
        }
        let req = request(size);
        let p = if req <= mi::MI_SMALL_SIZE_MAX {
            // SAFETY: `heap` is our live heap, used on its thread; `req <= MI_SMALL_SIZE_MAX`
            // as mi_heap_malloc_small requires.
            unsafe { mi::mi_heap_malloc_small(self.heap.as_ptr(), req) }
        } else {
            // SAFETY: `heap` is our live heap, used on its thread; any size is accepted.
            unsafe { mi::mi_heap_malloc(self.heap.as_ptr(), req) }
        };
        let p = NonNull::new(p)?;
        debug_assert_eq!(
            p.as_ptr() as usize % ALIGN,
            0,
            "mimalloc gave a misaligned block"
        );
        Some(p.cast())
    }

    /// Sized free: mimalloc checks the size in its debug builds and otherwise frees as `mi_free`
    /// does, into the block's page (the heap is found from the block, not passed).
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: `ptr` is a live block of our heap (caller), freed once, on the heap's thread;
        // `request(size)` is at most its usable size, as mi_free_size requires.
        unsafe { mi::mi_free_size(ptr.as_ptr().cast(), request(size)) }
    }

    /// `mi_heap_realloc` already resizes in place whenever the new size fits the block's bin
    /// (grows up to the usable size, shrinks down to half), which is all `mi_expand` would add;
    /// otherwise it allocates in this heap, copies and frees. A shrink never fails.
    #[inline]
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        if new_size > MAX_SIZE {
            return None;
        }
        // SAFETY: `heap` is our live heap, used on its thread; `ptr` is a live block of it
        // (caller); `request(new_size) > 0`. On NULL the old block is untouched and still live.
        let q = unsafe {
            mi::mi_heap_realloc(self.heap.as_ptr(), ptr.as_ptr().cast(), request(new_size))
        };
        match NonNull::new(q) {
            Some(q) => {
                debug_assert_eq!(
                    q.as_ptr() as usize % ALIGN,
                    0,
                    "mimalloc gave a misaligned block"
                );
                Some(q.cast())
            }
            // A shrink never fails: the old block is large enough, and mimalloc frees it later
            // whatever size the caller then names.
            None => (new_size <= old_size).then_some(ptr),
        }
    }

    /// Exact: asks mimalloc whether the pointer lies in one of this heap's pages. In 3.x that is
    /// a page-map lookup (constant time); in 2.x (`v2`) it walks the heap's pages (linear).
    /// [`Mimalloc::trim`]: the heap's empty pages freed and its free memory purged at once.
    fn trim(&mut self) {
        Mimalloc::trim(self)
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        if heap_has(self.heap.as_ptr(), ptr.as_ptr().cast()) {
            Ownership::Owned
        } else {
            Ownership::Foreign
        }
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: `ptr` is a live mimalloc block (caller).
        let usable = unsafe { mi::mi_usable_size(ptr.as_ptr().cast()) };
        usable.max(size)
    }

    /// Destroys the heap and starts a fresh one: every block is released at once. The new heap
    /// is made first, so on out-of-memory nothing changes and the answer is `Err`.
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        let fresh = Mimalloc::try_new().map_err(|_| ResetUnsupported)?;
        // Dropping the old value destroys the old heap (the caller uses none of its blocks).
        drop(std::mem::replace(self, fresh));
        Ok(())
    }

    /// What the heap's pages say, by visiting them (linear in the heap's pages, no block walk):
    /// `blocks` and `allocated` (blocks × their bin size) for live blocks, `reserved` for the
    /// committed bytes of the heap's pages. `wasted` is left out: the heap does not know the
    /// requested sizes.
    fn stats(&self) -> BackendStats {
        let mut tally = Tally::default();
        // SAFETY: `heap` is our live heap, used on its thread; `tally_area` matches
        // `mi_block_visit_fun`, does not unwind, and only touches the `Tally` behind `arg`,
        // which lives across the call.
        unsafe {
            mi::mi_heap_visit_blocks(
                self.heap.as_ptr(),
                false,
                Some(tally_area),
                (&raw mut tally).cast::<c_void>(),
            )
        };
        BackendStats {
            allocated: Some(tally.allocated),
            reserved: Some(tally.committed),
            wasted: None,
            blocks: Some(tally.blocks),
        }
    }
}

// SAFETY: `owns` asks mimalloc whether the address lies in one of this heap's pages
// (`mi_heap_contains` / `mi_heap_check_owned`), which accept any pointer and never read the memory
// it points to: `Owned` exactly for this heap's blocks, `Foreign` for everything else; never
// `Unknown`.
unsafe impl ExactOwnership for Mimalloc {}

/// Running totals over a heap's areas (one area per page, blocks of one size).
#[derive(Default)]
struct Tally {
    blocks: usize,
    allocated: usize,
    committed: usize,
}

/// Adds one area of the heap to the `Tally` behind `arg`. Called by mimalloc from C: it must not
/// unwind, hence the wrapping arithmetic.
unsafe extern "C" fn tally_area(
    _heap: *const mi::mi_heap_t,
    area: *const mi::mi_heap_area_t,
    block: *mut c_void,
    _block_size: usize,
    arg: *mut c_void,
) -> bool {
    if block.is_null() && !area.is_null() {
        // SAFETY: mimalloc passes a valid area for the duration of the call.
        let area = unsafe { &*area };
        // SAFETY: `arg` is the `&mut Tally` that `stats` passed, alive and not otherwise used
        // during the visit.
        let tally = unsafe { &mut *arg.cast::<Tally>() };
        tally.blocks = tally.blocks.wrapping_add(area.used);
        tally.allocated = tally
            .allocated
            .wrapping_add(area.used.wrapping_mul(area.block_size));
        tally.committed = tally.committed.wrapping_add(area.committed);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blocks_are_16_aligned_at_every_size() {
        let mut m = Mimalloc::new();
        let mut live = Vec::new();
        for size in 1..=2048 {
            for _ in 0..3 {
                let p = m.allocate(size, Tag::String).unwrap();
                assert_eq!(p.as_ptr() as usize % ALIGN, 0, "size {size}");
                live.push((p, size));
            }
        }
        for (p, size) in live {
            // SAFETY: live block of `size` bytes.
            unsafe { m.deallocate(p, size) };
        }
    }

    #[test]
    fn the_version_is_the_one_the_features_pick() {
        let v = mimalloc_version();
        if cfg!(mimalloc_v2) {
            assert!((200..300).contains(&(v / 100)), "{v}");
        } else {
            assert!((300..400).contains(&(v / 100)), "{v}");
        }
    }
}
