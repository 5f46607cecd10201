#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use allocator_api2::alloc::Allocator;
use lmem_backend::{ALIGN, Backend, BackendStats, MAX_SIZE, Ownership, ResetUnsupported, Tag};
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

/// The layout of a block of `size` bytes: the size rounded up to a multiple of [`ALIGN`] (0 is
/// taken as 1), aligned to [`ALIGN`]. Every block is made and given back with exactly this
/// layout, so the arena's "is this the last block?" arithmetic is exact and nothing is lost to
/// rounding when the last block is freed or grown. `None` above [`MAX_SIZE`].
#[inline]
fn layout_for(size: usize) -> Option<Layout> {
    if size > MAX_SIZE {
        return None;
    }
    // MAX_SIZE is a multiple of ALIGN, so the rounding cannot overflow nor exceed it.
    let rounded = (size.max(1) + (ALIGN - 1)) & !(ALIGN - 1);
    Layout::from_size_align(rounded, ALIGN).ok()
}

/// The layout of a live block of `size` bytes, which was necessarily made with
/// [`layout_for`]`(size)` (so that call cannot fail).
#[inline]
fn live_layout(size: usize) -> Layout {
    debug_assert!(
        size <= MAX_SIZE,
        "a live block of {size} bytes cannot exist"
    );
    let rounded = (size.max(1) + (ALIGN - 1)) & !(ALIGN - 1);
    // SAFETY: ALIGN is a non-zero power of two, and `rounded` (a size we served, rounded up to
    // ALIGN) is at most MAX_SIZE <= isize::MAX - (ALIGN - 1), as `from_size_align_unchecked`
    // requires.
    unsafe { Layout::from_size_align_unchecked(rounded, ALIGN) }
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
#[derive(Debug)]
pub struct Bump {
    arena: Arena,
    /// The byte limit set at construction (`None`: unlimited).
    limit: Option<usize>,
    /// Bytes the caller holds, as requested.
    live: usize,
    /// Bytes the caller's blocks occupy, after rounding to 16.
    live_rounded: usize,
    /// Live blocks.
    blocks: usize,
    /// Chunk ranges for `owns`, refreshed on a miss.
    chunks: RefCell<ChunkCache>,
}

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
            arena,
            limit,
            live: 0,
            live_rounded: 0,
            blocks: 0,
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
// - every block comes from the arena with `layout_for(size)`: 16-aligned, at least `size` bytes,
//   inside one of the arena's chunks, and disjoint from every other live block (bumpalo never
//   hands out a byte twice between resets; a freed last block is only handed out again after it
//   was given back, and a grown last block extends only into free space below it);
// - requests above MAX_SIZE return `None` before reaching the arena;
// - `resize` uses bumpalo's `Allocator::grow`/`shrink`, which keep the prefix (the in-place grow
//   of the last block moves it down with an overlapping copy); a failed grow leaves the block
//   alone; a shrink with equal alignment never fails, and would keep the block if it did;
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

    /// Carves a block from the current chunk (a new, larger chunk when it is full); fails softly
    /// at the limit.
    #[inline]
    fn allocate(&mut self, size: usize, _tag: Tag) -> Option<NonNull<u8>> {
        let layout = layout_for(size)?;
        let p = self.arena.try_alloc_layout(layout).ok()?;
        debug_assert_eq!(p.as_ptr() as usize % ALIGN, 0, "bump: misaligned block");
        self.live += size;
        self.live_rounded += layout.size();
        self.blocks += 1;
        Some(p)
    }

    /// Gives the block back: if it is the most recent one the bump pointer moves back over it,
    /// otherwise its bytes stay unusable until the state closes.
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        debug_assert!(
            self.blocks > 0 && self.live >= size,
            "bump: free of a block we never made"
        );
        let layout = live_layout(size);
        let arena: &Arena = &self.arena;
        // SAFETY: `ptr` is a live block of ours of size `size` (caller), so it was allocated by
        // this arena, and `layout` (the one it was made or last resized with) fits it, as
        // `Allocator::deallocate` requires.
        unsafe { Allocator::deallocate(&arena, ptr, layout) };
        self.live -= size;
        self.live_rounded -= layout.size();
        self.blocks -= 1;
    }

    /// Grows the last block in place (it moves *down*: the arena bumps downwards, so the new
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
        let new = layout_for(new_size)?;
        let old = live_layout(old_size);
        let arena: &Arena = &self.arena;
        let q = if new.size() > old.size() {
            // SAFETY: `ptr` is a live block of this arena and `old` fits it (caller: it was made
            // or last resized with `layout_for(old_size)`); `new.size() > old.size()` and the
            // alignments are equal, as `Allocator::grow` requires. On error the block is
            // untouched.
            let q = unsafe { Allocator::grow(&arena, ptr, old, new) }.ok()?;
            q.cast::<u8>()
        } else if new.size() < old.size() {
            // SAFETY: as above, with `new.size() < old.size()`, as `Allocator::shrink` requires.
            match unsafe { Allocator::shrink(&arena, ptr, old, new) } {
                Ok(q) => q.cast::<u8>(),
                // Unreachable with equal alignments in bumpalo 3.x; the old block is large
                // enough, and a later free of it with the smaller layout only reclaims less.
                Err(_) => ptr,
            }
        } else {
            // Same rounded size: the block already fits.
            ptr
        };
        debug_assert_eq!(q.as_ptr() as usize % ALIGN, 0, "bump: misaligned block");
        self.live = self.live - old_size + new_size;
        self.live_rounded = self.live_rounded - old.size() + new.size();
        Some(q)
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
        live_layout(size).size()
    }

    /// Frees every block at once: the arena drops all chunks but its newest and starts over in it.
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        self.arena.reset();
        self.live = 0;
        self.live_rounded = 0;
        self.blocks = 0;
        // Freed chunks may be handed to someone else: forget their ranges.
        *self.chunks.get_mut() = ChunkCache::default();
        Ok(())
    }

    /// `reserved` is the arena's chunk capacity, `allocated` the live blocks after rounding,
    /// `wasted` what is held but not live (rounding, frees in the middle, the unused chunk tail).
    fn stats(&self) -> BackendStats {
        let reserved = self.arena.allocated_bytes();
        BackendStats {
            allocated: Some(self.live_rounded),
            reserved: Some(reserved),
            wasted: Some(reserved.saturating_sub(self.live)),
            blocks: Some(self.blocks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_to_sixteen() {
        for (size, rounded) in [(0, 16), (1, 16), (16, 16), (17, 32), (MAX_SIZE, MAX_SIZE)] {
            assert_eq!(layout_for(size).map(|l| l.size()), Some(rounded));
            if size <= MAX_SIZE {
                assert_eq!(live_layout(size).size(), rounded);
            }
        }
        assert_eq!(layout_for(MAX_SIZE + 1), None);
        assert_eq!(layout_for(usize::MAX), None);
    }
}
