#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use lmem_backend::{
    ALIGN, Backend, BackendStats, ExactOwnership, Fast, MAX_SIZE, Ownership, ResetUnsupported, Tag,
};
use parking_lot::Mutex;
use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The arena type: a bumpalo arena whose bump pointer always stays 16-aligned, so every block
/// starts on a 16-byte boundary and freeing the last block moves the pointer back by exactly the
/// block's rounded size.
type Arena = bumpalo::Bump<ALIGN>;

// ---------------------------------------------------------------------------------------------
// The arena pool
// ---------------------------------------------------------------------------------------------

/// Default for [`PoolLimits::arenas`]: how many idle arenas the pool keeps.
///
/// Eight covers a host that runs a handful of request threads, each opening and closing a state
/// per request, without a fresh arena (and its first chunk allocations) per request.
pub const DEFAULT_POOL_ARENAS: usize = 8;

/// Default for [`PoolLimits::arena_bytes`]: an arena returned to the pool that still holds more
/// than this many bytes after its reset is dropped instead of kept.
///
/// A reset arena keeps only its newest (largest) chunk, which is about half of what the state
/// used at its peak. With the defaults the idle pool pins at most 8 × 2 MiB = 16 MiB.
pub const DEFAULT_POOL_ARENA_BYTES: usize = 2 << 20;

/// Bounds of the global arena pool. Set them with [`set_pool_limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most idle arenas kept; an arena returned to a full pool is dropped. 0 disables pooling.
    pub arenas: usize,
    /// Most bytes (chunk capacity, [`bumpalo::Bump::allocated_bytes`]) an idle arena may hold
    /// after its reset; a larger one is dropped so that one huge state does not pin its memory
    /// forever.
    pub arena_bytes: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            arenas: DEFAULT_POOL_ARENAS,
            arena_bytes: DEFAULT_POOL_ARENA_BYTES,
        }
    }
}

/// What the pool holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Idle arenas waiting for the next [`Bump`].
    pub arenas: usize,
    /// Bytes those arenas hold (chunk capacity).
    pub bytes: usize,
}

/// Idle, reset arenas; newest last, so the warmest arena is handed out first.
static POOL: Mutex<Vec<Arena>> = Mutex::new(Vec::new());
/// [`PoolLimits::arenas`] in force.
static POOL_ARENAS: AtomicUsize = AtomicUsize::new(DEFAULT_POOL_ARENAS);
/// [`PoolLimits::arena_bytes`] in force.
static POOL_ARENA_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_POOL_ARENA_BYTES);

/// Changes the pool's bounds, and drops the idle arenas that the new bounds exclude.
///
/// A host tunes these to its traffic: more arenas for more concurrent states, larger arenas when
/// a typical request uses more memory. Values take effect for arenas returned from now on.
pub fn set_pool_limits(limits: PoolLimits) {
    POOL_ARENAS.store(limits.arenas, Ordering::Relaxed);
    POOL_ARENA_BYTES.store(limits.arena_bytes, Ordering::Relaxed);
    let excluded: Vec<Arena> = {
        let mut pool = POOL.lock();
        let (keep, too_big): (Vec<Arena>, Vec<Arena>) = pool
            .drain(..)
            .partition(|a| a.allocated_bytes() <= limits.arena_bytes);
        *pool = keep;
        let extra = pool.len().saturating_sub(limits.arenas);
        // Drop the oldest (coldest) arenas first.
        too_big.into_iter().chain(pool.drain(..extra)).collect()
    };
    // Arenas are freed outside the lock so that other states never wait on `free`.
    drop(excluded);
}

/// The pool's bounds in force.
pub fn pool_limits() -> PoolLimits {
    PoolLimits {
        arenas: POOL_ARENAS.load(Ordering::Relaxed),
        arena_bytes: POOL_ARENA_BYTES.load(Ordering::Relaxed),
    }
}

/// How many idle arenas the pool holds and how many bytes they hold.
pub fn pool_stats() -> PoolStats {
    let pool = POOL.lock();
    PoolStats {
        arenas: pool.len(),
        bytes: pool.iter().map(Arena::allocated_bytes).sum(),
    }
}

/// Drops every idle arena, giving its memory back to the global allocator (e.g. after a burst of
/// traffic, or before measuring a process's footprint).
pub fn clear_pool() {
    let idle = std::mem::take(&mut *POOL.lock());
    drop(idle);
}

/// Takes an idle arena from the pool for a new state, or makes an empty one.
///
/// With a `limit`, only an arena that already holds at most `limit` bytes will do: bumpalo
/// enforces its limit only while the arena holds less than it, and a state must see the same
/// limit whichever arena it happens to get.
fn acquire(limit: Option<usize>) -> Arena {
    let pooled = {
        let mut pool = POOL.lock();
        let fits = |a: &Arena| limit.is_none_or(|l| a.allocated_bytes() <= l);
        pool.iter().rposition(fits).map(|i| pool.swap_remove(i))
    };
    // `with_min_align` allocates nothing: chunks come with the first allocation.
    let arena = pooled.unwrap_or_else(Arena::with_min_align);
    arena.set_allocation_limit(limit);
    arena
}

/// Gives a state's arena back to the pool, reset, unless the pool is full or the arena grew
/// beyond [`PoolLimits::arena_bytes`] (or never got a chunk); then it is dropped, outside the
/// lock.
fn release(mut arena: Arena) {
    // Reset frees every chunk but the newest, so the check below sees what would stay pinned.
    arena.reset();
    arena.set_allocation_limit(None);
    let bytes = arena.allocated_bytes();
    // An arena that never got a chunk has nothing worth keeping warm.
    if bytes == 0 || bytes > POOL_ARENA_BYTES.load(Ordering::Relaxed) {
        return;
    }
    let rejected = {
        let mut pool = POOL.lock();
        if pool.len() < POOL_ARENAS.load(Ordering::Relaxed) {
            pool.push(arena);
            None
        } else {
            Some(arena)
        }
    };
    drop(rejected);
}

// ---------------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------------

/// `size` rounded up to a multiple of [`ALIGN`], 0 taken as 1: the bytes a block of `size`
/// occupies. The caller makes sure `size <= MAX_SIZE` (a multiple of ALIGN), so this cannot
/// overflow.
#[inline(always)]
const fn rounded(size: usize) -> usize {
    let size = if size == 0 { 1 } else { size };
    (size + (ALIGN - 1)) & !(ALIGN - 1)
}

/// The layout of a block of `size` bytes: [`rounded`]`(size)` bytes aligned to [`ALIGN`]. `None`
/// above [`MAX_SIZE`].
#[inline]
fn layout_for(size: usize) -> Option<Layout> {
    if size > MAX_SIZE {
        return None;
    }
    // MAX_SIZE is a multiple of ALIGN, so the rounding cannot overflow nor exceed it.
    Layout::from_size_align(rounded(size), ALIGN).ok()
}

/// Address ranges of the arena's chunks, for [`Backend::owns`]: `(low, high)` where `high` is a
/// chunk's end and `low` the lowest start of its used region seen so far. Newest chunk first.
#[derive(Debug, Default)]
struct ChunkCache {
    /// The arena's [`bumpalo::Bump::allocated_bytes`] when `ranges` was last rebuilt. It grows
    /// with every new chunk, so an unchanged value means "no new chunk since".
    arena_bytes: usize,
    ranges: Vec<(usize, usize)>,
}

impl ChunkCache {
    /// Whether `addr` falls in a cached range.
    #[inline]
    fn contains(&self, addr: usize) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= addr && addr < hi)
    }
}

/// One VM state's memory: a bumpalo arena taken from the global pool and given back, reset, when
/// the value is dropped.
///
/// Blocks are carved downwards from the arena's current chunk, each 16-aligned and rounded up to
/// 16 bytes. Freeing the most recent block gives its space back, and so does freeing blocks in
/// reverse order of allocation; any other free is a no-op whose bytes stay unusable until the
/// state closes (or [`Backend::reset`]). See the crate docs for when to pick it.
///
/// The bump pointer lives in the struct itself, not in bumpalo's chunk footer: the free part of
/// the arena's current chunk is taken from bumpalo in one allocation (the *run*) and blocks are
/// carved from it here; bumpalo is called again only when a request does not fit, to get a new
/// chunk (sized, and limited, by bumpalo as before).
///
/// `repr(C)` keeps the hot fields apart in a fixed order: left to the compiler, the counters end
/// up adjacent and get updated with one vector read-modify-write, whose store-to-load latency on
/// the next allocation made the fast path twice as slow.
#[derive(Debug)]
#[repr(C)]
pub struct Bump {
    /// The bump pointer: the next block ends here; a live block starting here is the most recent
    /// block of the run. Always 16-aligned, so the room `run_ptr - run_start` is a multiple of
    /// 16. Null (with the other run pointers) when there is no run.
    run_ptr: *mut u8,
    /// Bytes the caller holds, as requested.
    live: usize,
    /// Lowest address of the run: `[run_start, run_ptr)` is free memory of the arena's current
    /// chunk, taken from bumpalo, and owned by no block.
    run_start: *mut u8,
    /// Live blocks.
    blocks: usize,
    /// Top of the run: `[run_ptr, run_end)` is what the run has handed out (live blocks and
    /// holes).
    run_end: *mut u8,
    /// Bytes handed out by earlier runs (since the last reset), holes included.
    retired: usize,
    /// Bytes of blocks given back without moving the bump pointer (frees in the middle, the
    /// tail of a block shrunk in place), after rounding. `allocated` in the stats is
    /// `retired + (run_end - run_ptr) - holes`, so the fast path keeps no rounded-bytes counter.
    holes: usize,
    arena: Arena,
    /// The byte limit set at construction (`None`: unlimited).
    limit: Option<usize>,
    /// Chunk ranges for `owns`, refreshed on a miss.
    chunks: RefCell<ChunkCache>,
}

// SAFETY: the raw pointers only point into chunks of `arena`, which `Bump` owns and which moves
// with it (bumpalo's `Bump` is `Send`); nothing else refers to those chunks through `self`.
// `Bump` is not `Sync` (`RefCell`, raw pointers): one state, one thread.
unsafe impl Send for Bump {}

/// `Bump` moves between threads with its state; it is not `Sync` (one state, one thread).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Bump>();
};

impl Default for Bump {
    fn default() -> Self {
        Bump::new()
    }
}

impl Bump {
    /// A state's memory without a byte limit: an arena from the pool, or a new empty one.
    pub fn new() -> Self {
        Bump::from_arena(acquire(None), None)
    }

    /// A state's memory that holds at most `limit` bytes of arena chunks: a runaway script gets
    /// `None` from `allocate`/`resize` (Lua's `not enough memory`) instead of eating the host.
    ///
    /// The limit bounds what the arena reserves ([`BackendStats::reserved`]), which includes
    /// bytes freed in the middle and not yet reusable, and the unused tail of chunks; bumpalo
    /// falls back to smaller chunks near the limit, so nearly all of it is usable. A failed
    /// request leaves every block intact, and shrinks still succeed.
    pub fn with_limit(limit: usize) -> Self {
        Bump::from_arena(acquire(Some(limit)), Some(limit))
    }

    /// Wraps an arena the pool handed out.
    fn from_arena(arena: Arena, limit: Option<usize>) -> Self {
        Bump {
            run_ptr: std::ptr::null_mut(),
            live: 0,
            run_start: std::ptr::null_mut(),
            blocks: 0,
            run_end: std::ptr::null_mut(),
            retired: 0,
            holes: 0,
            arena,
            limit,
            chunks: RefCell::new(ChunkCache::default()),
        }
    }

    /// The byte limit set at construction, if any.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Bytes the caller holds in live blocks, as requested (before rounding to 16).
    pub fn live_bytes(&self) -> usize {
        self.live
    }

    /// Free bytes left in the run (a multiple of 16).
    #[inline(always)]
    fn room(&self) -> usize {
        self.run_ptr as usize - self.run_start as usize
    }

    /// Bytes the caller's blocks occupy, after rounding to 16.
    ///
    /// Wrapping arithmetic: the terms are exact modulo 2^64 and their sum is the true,
    /// non-negative count, even if a free ever moved `run_ptr` above `run_end` (over a block of
    /// an adjacent older run, which is sound: that block is free and contiguous with the run).
    fn live_rounded(&self) -> usize {
        let run_used = (self.run_end as usize).wrapping_sub(self.run_ptr as usize);
        self.retired.wrapping_add(run_used).wrapping_sub(self.holes)
    }

    /// Makes `[start, end)`, free memory at the top of which a block of `need` bytes is carved,
    /// the new run; the old run's tail stays unused (counted in `wasted`).
    #[inline]
    fn new_run(&mut self, start: *mut u8, end: *mut u8, need: usize) -> *mut u8 {
        let used = (self.run_end as usize).wrapping_sub(self.run_ptr as usize);
        self.retired = self.retired.wrapping_add(used);
        // SAFETY: the caller's range holds at least `need` bytes.
        let block = unsafe { end.sub(need) };
        debug_assert!(start <= block);
        self.run_start = start;
        self.run_end = end;
        self.run_ptr = block;
        block
    }

    /// A block of `size` bytes when the run has no room for it: the rest of the arena's current
    /// chunk becomes the run if the block fits there, otherwise bumpalo makes a new chunk (about
    /// twice as large, smaller near the limit, or fails at the limit), the block is carved from
    /// its top and the rest of that chunk becomes the run. The old run's tail stays unused, as
    /// bumpalo's own chunk tail did.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&mut self, size: usize) -> Option<NonNull<u8>> {
        let layout = layout_for(size)?;
        let need = layout.size();
        let block = if need <= self.room() {
            // Only `size == 0` gets here with room to spare (the fast path leaves it to us).
            // SAFETY: `need <= room`, so the new pointer stays inside the run.
            self.run_ptr = unsafe { self.run_ptr.sub(need) };
            self.run_ptr
        } else if self.arena.chunk_capacity() >= need {
            // No run in this chunk yet (a new or reset arena): the rest of the chunk becomes it.
            // `cap` is a multiple of 16 (bumpalo keeps its pointer 16-aligned) and `>= need > 0`.
            let cap = self.arena.chunk_capacity();
            let run_layout = Layout::from_size_align(cap, ALIGN).ok()?;
            let run = self.arena.try_alloc_layout(run_layout).ok()?.as_ptr();
            // SAFETY: `run` is a fresh arena allocation of `cap` bytes.
            let end = unsafe { run.add(cap) };
            self.new_run(run, end, need)
        } else {
            // A new chunk: bumpalo's chunk sizing and limit apply. On failure nothing changed.
            let top = self.arena.try_alloc_layout(layout).ok()?.as_ptr();
            let rest = self.arena.chunk_capacity();
            let start = match Layout::from_size_align(rest, ALIGN) {
                // `rest` is what bumpalo has left in this chunk, so this cannot fail; an empty
                // run below the block is the fallback (and `rest == 0` must not ask for a
                // zero-sized allocation, which bumpalo answers with a dangling pointer).
                Ok(l) if rest > 0 => self.arena.try_alloc_layout(l).map_or(top, NonNull::as_ptr),
                _ => top,
            };
            // SAFETY: `top` is a fresh arena allocation of `need` bytes.
            let end = unsafe { top.add(need) };
            self.new_run(start, end, need)
        };
        debug_assert_eq!(block as usize % ALIGN, 0, "bump: misaligned block");
        self.live += size;
        self.blocks += 1;
        // SAFETY: `block` lies in an arena chunk, so it is not null.
        Some(unsafe { NonNull::new_unchecked(block) })
    }

    /// Looks `addr` up in the chunk cache, refreshing it once if it misses: a live block can only
    /// be missing from the cache if the current chunk's used region grew since the last refresh,
    /// or new chunks appeared.
    #[cold]
    fn refresh_and_find(&self, cache: &mut ChunkCache, addr: usize) -> bool {
        // SAFETY: `iter_allocated_chunks_raw` requires that the arena makes no allocation while
        // the iterator lives (nothing here allocates from it: `&self` and the `Vec` below uses
        // the global allocator) and that any chunk data we read is not mutably borrowed; we read
        // only the chunks' addresses and lengths, never their contents.
        let mut chunks = unsafe { self.arena.iter_allocated_chunks_raw() };
        let bytes = self.arena.allocated_bytes();
        if bytes == cache.arena_bytes {
            // No new chunk: only the current (newest) chunk's used region can have grown.
            let Some((p, len)) = chunks.next() else {
                return false;
            };
            let (lo, hi) = (p as usize, p as usize + len);
            match cache.ranges.first_mut() {
                Some(first) if first.1 == hi => first.0 = first.0.min(lo),
                _ => cache.ranges.insert(0, (lo, hi)),
            }
            return lo <= addr && addr < hi;
        }
        // New chunks: rebuild, keeping the lowest start seen for chunks we knew.
        let old = std::mem::take(&mut cache.ranges);
        cache.ranges = chunks
            .map(|(p, len)| {
                let (lo, hi) = (p as usize, p as usize + len);
                let seen = old.iter().find(|r| r.1 == hi).map_or(lo, |r| r.0);
                (lo.min(seen), hi)
            })
            .collect();
        cache.arena_bytes = bytes;
        cache.contains(addr)
    }
}

impl Drop for Bump {
    /// The state is closed: its arena goes back to the pool, reset (or is dropped when the pool
    /// is full or the arena oversized). Blocks still live die with it.
    fn drop(&mut self) {
        // An empty arena holds no chunk, so the placeholder costs nothing.
        let arena = std::mem::replace(&mut self.arena, Arena::with_min_align());
        release(arena);
    }
}

// SAFETY:
// - every block is carved from the run, `[run_start, run_ptr)`, which is free memory of an arena
//   chunk that bumpalo handed to us (an allocation of the rest of a chunk, or the part of a new
//   chunk below the block that made it): a block takes `rounded(size)` bytes just below
//   `run_ptr` and `run_ptr` moves down over them, so blocks are 16-aligned (the run's ends are,
//   and every step is a multiple of 16), at least `size` bytes, and disjoint from every other
//   live block; `run_ptr` moves up only over a block that is given back (freed, or the tail of a
//   shrunk block), so the run stays free memory; runs are never given back to bumpalo, which
//   therefore never hands their bytes out again before a reset;
// - requests above MAX_SIZE return `None` (`layout_for`) before any arithmetic can overflow: the
//   fast path only serves sizes up to the run's room;
// - `resize` keeps the prefix: the in-place grow of the last block moves it down with an
//   overlapping copy, the in-place shrink moves it up with a non-overlapping one (it frees at
//   least half, so the ranges are disjoint), other grows copy into a new block; a failed grow
//   changes nothing; a shrink never fails;
// - `deallocate` always succeeds (it only moves the bump pointer back, or does nothing);
// - nothing panics or aborts on out-of-memory: bumpalo's `try_` paths return errors, which we
//   turn into `None`;
// - `owns` answers `Owned` only for addresses inside the arena's chunks (memory this backend
//   holds) and `Foreign` only after a refresh shows the address outside every chunk, where no
//   live block of ours can be;
// - blocks live in heap chunks owned by the arena, never inside `self`, so moving `self` does not
//   move them.
unsafe impl Backend for Bump {
    fn name(&self) -> &str {
        "bump"
    }

    /// Carves a block from the run (a few instructions); when it is full, from the rest of the
    /// current chunk or a new, larger chunk. Fails softly at the limit.
    #[inline]
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        match self.allocate_fast(size, tag) {
            Fast::Done(b) => b,
            Fast::Slow => self.allocate_slow(size),
        }
    }

    /// The run alone: a pointer moved down, no call. `Slow` when the block does not fit it.
    #[inline(always)]
    fn allocate_fast(&mut self, size: usize, _tag: Tag) -> Fast<Option<NonNull<u8>>> {
        // `1 <= size <= room` (0 wraps around and takes the slow path). The room is a multiple of
        // 16, so then `rounded(size) <= room`, and `size` is far below MAX_SIZE.
        if size.wrapping_sub(1) < self.room() {
            let need = (size + (ALIGN - 1)) & !(ALIGN - 1);
            // SAFETY: `need <= room`, so the new pointer stays inside the run, at or above
            // `run_start`.
            let block = unsafe { self.run_ptr.sub(need) };
            self.run_ptr = block;
            self.live += size;
            self.blocks += 1;
            // SAFETY: `block` lies in an arena chunk, so it is not null.
            return Fast::Done(Some(unsafe { NonNull::new_unchecked(block) }));
        }
        Fast::Slow
    }

    /// Gives the block back: if it is the most recent one the bump pointer moves back over it,
    /// otherwise its bytes stay unusable until the state closes.
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        debug_assert!(
            self.blocks > 0 && self.live >= size,
            "bump: free of a block we never made"
        );
        let r = rounded(size);
        if ptr.as_ptr() == self.run_ptr {
            // SAFETY: the live block at `run_ptr` spans `r` bytes of the same chunk (caller: it
            // is ours, of size `size`), so the pointer stays inside that chunk.
            self.run_ptr = unsafe { self.run_ptr.add(r) };
        } else {
            self.holes += r;
        }
        self.live -= size;
        self.blocks -= 1;
    }

    /// Grows the last block in place (it moves *down*: blocks are carved downwards, so the new
    /// start is lower and the contents are moved), any other block by copying to a new one;
    /// shrinks the last block by moving it up when that frees at least half of it, and otherwise
    /// keeps the block where it is. Never fails a shrink.
    #[inline]
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        debug_assert!(
            self.blocks > 0 && self.live >= old_size,
            "bump: resize of a stranger"
        );
        if new_size > MAX_SIZE {
            return None;
        }
        let (old, new) = (rounded(old_size), rounded(new_size));
        let last = ptr.as_ptr() == self.run_ptr;
        let q = if new > old {
            let extra = new - old;
            if !(last && extra <= self.room()) {
                // Grow by copy: a new block (possibly in a new chunk), then the old one is given
                // back; both update the counters. On `None` nothing changed.
                let q = self.allocate(new_size, Tag::Other)?;
                // SAFETY: `ptr` has `old_size` readable bytes (caller) and `q` is a fresh block
                // of `new_size > old_size` bytes, disjoint from every live block.
                unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), q.as_ptr(), old_size) };
                // SAFETY: `ptr` is a live block of ours of size `old_size`, not used again.
                unsafe { self.deallocate(ptr, old_size) };
                return Some(q);
            }
            // SAFETY: `extra <= room`, so the new start stays inside the run.
            let q = unsafe { self.run_ptr.sub(extra) };
            // SAFETY: `[q, q + new)` is the free run space below the block plus the block itself;
            // the copy may overlap, which `copy` allows.
            unsafe { std::ptr::copy(ptr.as_ptr(), q, old_size) };
            self.run_ptr = q;
            q
        } else if new < old {
            let delta = old - new;
            if last && delta >= old.div_ceil(2) {
                // SAFETY: `delta < old`, so `q` stays inside the block.
                let q = unsafe { ptr.as_ptr().add(delta) };
                // SAFETY: `delta >= old / 2 >= new >= new_size`, so `[ptr, ptr + new_size)` and
                // `[q, q + new_size)` do not overlap; both lie in the block.
                unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), q, new_size) };
                self.run_ptr = q;
                q
            } else {
                // Kept where it is: its tail becomes a hole.
                self.holes += delta;
                ptr.as_ptr()
            }
        } else {
            // Same rounded size: the block already fits.
            ptr.as_ptr()
        };
        debug_assert_eq!(q as usize % ALIGN, 0, "bump: misaligned block");
        self.live = self.live - old_size + new_size;
        // SAFETY: `q` lies in an arena chunk, so it is not null.
        Some(unsafe { NonNull::new_unchecked(q) })
    }

    /// Exact by chunk address: `Owned` inside one of the arena's chunks, `Foreign` elsewhere.
    /// Cheap: a scan of a few cached ranges, refreshed from the arena on a miss.
    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        let addr = ptr.as_ptr() as usize;
        let mut cache = self.chunks.borrow_mut();
        if cache.contains(addr) || self.refresh_and_find(&mut cache, addr) {
            Ownership::Owned
        } else {
            Ownership::Foreign
        }
    }

    /// Blocks are rounded up to 16 bytes, and the caller may use the whole rounded size.
    unsafe fn usable_size(&self, _ptr: NonNull<u8>, size: usize) -> usize {
        rounded(size)
    }

    /// Frees every block at once: the arena drops all chunks but its newest and starts over in it.
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        self.arena.reset();
        self.run_ptr = std::ptr::null_mut();
        self.run_start = std::ptr::null_mut();
        self.run_end = std::ptr::null_mut();
        self.retired = 0;
        self.holes = 0;
        self.live = 0;
        self.blocks = 0;
        // Freed chunks may be handed to someone else: forget their ranges.
        *self.chunks.get_mut() = ChunkCache::default();
        Ok(())
    }

    /// A bump arena frees nothing in the middle (its blocks are released when the state closes),
    /// so the one memory a trim can give back is the process-wide pool's: the idle arenas kept
    /// for future states ([`clear_pool`]).
    fn trim(&mut self) {
        clear_pool();
    }

    /// `reserved` is the arena's chunk capacity, `allocated` the live blocks after rounding,
    /// `wasted` what is held but not live (rounding, frees in the middle, the unused chunk tail).
    fn stats(&self) -> BackendStats {
        let reserved = self.arena.allocated_bytes();
        BackendStats {
            allocated: Some(self.live_rounded()),
            reserved: Some(reserved),
            wasted: Some(reserved.saturating_sub(self.live)),
            blocks: Some(self.blocks),
        }
    }
}

// SAFETY: `owns` compares the address with the ranges of the arena's own chunks (cached, and
// refreshed from the arena on a miss), never reading the memory it points to: `Owned` exactly
// inside a chunk this value's arena holds, `Foreign` elsewhere; never `Unknown`. The cache's
// `RefCell` is only borrowed inside `owns` itself, which does not re-enter, so it cannot panic.
unsafe impl ExactOwnership for Bump {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_to_sixteen() {
        for (size, expect) in [(0, 16), (1, 16), (16, 16), (17, 32), (MAX_SIZE, MAX_SIZE)] {
            assert_eq!(layout_for(size).map(|l| l.size()), Some(expect));
            assert_eq!(rounded(size), expect);
        }
        assert_eq!(layout_for(MAX_SIZE + 1), None);
        assert_eq!(layout_for(usize::MAX), None);
    }
}
