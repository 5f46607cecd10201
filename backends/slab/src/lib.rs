#![doc = include_str!("../README.md")]
//!
//! ## Design
//!
//! Lua asks for small blocks — 97–100% of new blocks are ≤ 64 B, averaging 43–52 B — and always
//! passes a block's size back when it frees or resizes it (`osize`). This backend is built on
//! those two facts:
//!
//! - **Headerless blocks in size classes.** A request is rounded up to one of [`CLASS_SIZES`]
//!   (through a lookup table indexed by `(size + 15) >> 4`) and served from a page carved into
//!   blocks of that class. Blocks carry no header: whether a block is small or large comes from
//!   the size the caller passes back, and the page (hence the class) from the block's address.
//! - **Page-local allocation.** Every class has a *current page* with its own free list and an
//!   untouched "bump" tail; a free pushes onto the free list of the block's own page, found by
//!   address arithmetic (pages are aligned to [`PAGE_SIZE`] inside segments aligned to
//!   [`SEGMENT_SIZE`]). A current page that runs out is set aside in its class's *full* list;
//!   once an eighth of its blocks are free again it joins the tail of the class's list of
//!   *partially free* pages, whose head — the page that has gathered frees longest — becomes
//!   the next current page. Only when no partial page is left is a full page that has some
//!   free block reused, and only then a new page taken, so held memory stays as low as if
//!   every free block were reusable at once. This is mimalloc's free-list sharding and Luau's
//!   page scheme: new objects land next to recently freed ones of the same page, where one
//!   global LIFO list per class would scatter them over the whole heap (as this backend's first
//!   version, with such lists, did). Waiting for an eighth keeps a page change from serving a single block (on a
//!   growing heap with random frees, every fourth allocation was a page change).
//! - **A hot cache per class.** A free first lands in a small stack of recently freed blocks of
//!   its class ([`HOT_CAP`] entries per class; the stacks' lengths and tops are in the backend
//!   value itself, their entries in the value's one paged-state allocation), and an
//!   allocation first takes from it: the block just freed, still in the CPU cache, is the next
//!   one handed out, and neither call touches a page header or the block's memory. Lua
//!   interleaves frees and allocations of the same few sizes all the time (a temporary string
//!   freed, the next one allocated); with page-local free lists alone each such allocation took
//!   an older, colder block from the current page. Only when the stack is full does a free go to
//!   its page, and only when it is empty does an allocation. Cached blocks count as used in
//!   their pages, so they can keep a page from emptying: at most [`HOT_SLOTS`] blocks in all
//!   (if each sat alone on its page, that would hold 1184 pages, 18.5 MiB; `lmem bench`
//!   measured no change in peak RSS from the cache), and [`Slab::trim`] (or dropping the value)
//!   gives them back. A compact value (below) has no cache: its stacks have capacity 0.
//! - **A compact start.** A page per class is a lot for a small state: the standard libraries
//!   and a small script touch 19 classes with 30 KiB of blocks, which took 19 pages (304 KiB
//!   reserved, 105 KiB resident per state with thousands of states). So a new value takes no
//!   page at first: it carves blocks of every class, one after another, out of *cells*, 2 KiB
//!   pieces ([`CELL_SIZE`]) of pages that all compact values of the process share (*cell
//!   pages*; each cell is held by one value only). A freed cell block goes on a free list of
//!   its class kept in the value, which the fast paths pop and push; a request whose class
//!   list is empty splits a free block of the next larger class that has one (the head is the
//!   block, the rest goes back to the lists) before it carves new memory. That state now holds
//!   17 cells, 34 KiB, and costs 35.7 KiB resident (glibc's malloc: 37.6; 2000 or 10 000
//!   states; the `footprint` example of `lmem-lua`). A compact value is about 1 KiB (no hot
//!   cache, no page lists); once it holds [`COMPACT_CELLS`] cells (64 KiB) and a block finds
//!   them full, it takes pages of its classes from then on, with the hot cache (the paged
//!   state, 10 KiB, allocated then), and its cell blocks stay in use and are reused. A large
//!   state pays this once: on `binary_trees` (scale 0.05) the compact start is the first 2578
//!   of 776 121 calls. The fast paths reach cells only through
//!   branches that were there already: a cell page's header is set so that every free reaching
//!   it fails the page test, whose rare branch sends the block to its class's cell list, and an
//!   allocation with no current page (never one while compact) pops that list.
//! - **A predictable page free.** A free that reaches its page pushes the block, decrements the
//!   page's live count and compares it with one per-page `trigger` value that is almost never
//!   hit (the page empties, or a full page reaches its eighth). Branching on the page's state instead
//!   (is it current? full?) is a coin flip under random frees: that branch, mispredicted
//!   about every other free, was most of the fast path's cost.
//! - **Dense page headers.** A page's header (free list, bump pointer, live count, list links)
//!   is not at the page's start but in its segment's first 4 KiB, one 64-byte line per page.
//!   Headers at 16 KiB strides would all map to the same few cache sets and evict each other on
//!   a large heap; packed together, the headers of a 100 MiB heap fit in 400 KiB.
//! - **A shared page pool.** A page that becomes empty goes back at once to a process-wide pool
//!   (a `parking_lot` mutex) that keeps at most [`POOL_RETAIN`] bytes resident; the memory of
//!   pages beyond that goes back to the OS (`madvise(MADV_DONTNEED)`; the address range stays
//!   mapped, costs nothing resident, and is reused before new segments are mapped). Dropping or
//!   resetting a backend value returns all its pages. The lock is taken only when a page is
//!   taken or returned, never on the allocate/free fast path.
//! - **Huge regions for big heaps.** Once a value holds [`BIG_PAGES`] pages (4 MiB), its
//!   further pages come from *huge regions*: [`REGION_SIZE`] (2 MiB) mappings aligned to their
//!   size and marked for transparent huge pages (`MADV_HUGEPAGE`), so that the kernel backs each
//!   with one huge page, and a heap of tens of MiB needs a few dozen TLB entries instead of
//!   thousands. Small values never touch them (a region is 2 MiB resident once touched, so
//!   thousands of small states would pay 2 MiB each, as a process-wide switch did: 317 KiB per
//!   state instead of 105). A big value takes the pool's resident pages first, then region pages
//!   lowest address first (resident ones before decommitted ones), so that regions fill densely
//!   and the last ones empty first. Empty region pages stay resident up to [`POOL_RETAIN`] or a
//!   quarter of the region pages in use, whichever is more, since a collection cycle frees
//!   pages that the next one fills again; beyond that, memory goes back from as few huge pages
//!   as possible: a wholly empty region at once (it comes back as one huge page), else all the
//!   empty pages of the region that has the most (the kernel splits that one). On `graph.lua`
//!   (47.8 MiB peak heap) this put 26 MiB of the slab heap in huge pages (0 before), cut the
//!   minor faults from 17 800 to 11 400 and the `madvise` calls from 1613 to 505, with
//!   the peak RSS unchanged (59.0 MiB; glibc's malloc: 60.2). User seconds, medians of 10
//!   interleaved runs on the loaded two-core machine: `graph.lua` 2.88 → 2.77 (mimalloc 2.62,
//!   jemalloc 2.93), `interp.lua` 4.01 → 3.85 (mimalloc 3.91, jemalloc 4.16). Keeping every
//!   empty region page resident instead was faster still on `graph.lua` in some runs but took
//!   its peak RSS to 63.5 MiB, above glibc's. What is left of the gap to mimalloc on
//!   `graph.lua` is its large blocks (arrays of 10^5 slots, 2 MiB each): they go to the
//!   fallback, in glibc's 4 KiB pages, where mimalloc has them in huge pages too.
//! - **Large blocks** (over [`MAX_SMALL`] bytes) go to a fallback backend `F` (libc malloc by
//!   default) and are tracked, so that [`Backend::owns`] is exact and [`Backend::reset`] can free
//!   them.
//!
//! # Size classes
//!
//! Every block must be 16-aligned (the contract), and a class whose size is not a multiple of 16
//! would misalign every other block of its page, so classes step by 16 at least. Luau's 8-byte
//! steps below 64 B are therefore out, and its 16-byte steps are kept all the way to 256 B:
//! that range holds nearly every Lua object (`TString` 24+len+1, `Table` 56, `LClosure` 32+8n,
//! `UpVal` 40, `Udata` 40+, `CallInfo` 64, `Proto` ~120, `lua_State` ~200, small `Node` and
//! `TValue` arrays), and a 16-byte step wastes at most 15 bytes a block, less than glibc's
//! 8-byte header plus 16-byte rounding. Above 256 B blocks are rare (< 1% of new blocks), so few
//! classes serve them: 320, 384, 448, 512 (64-byte steps), 640, 768, 896, 1024 (128-byte steps)
//! and 1280, 1536, 1792, 2048 (256-byte steps). The exact powers of two and their 3/2 multiples
//! are classes because Lua's vectors are: `Node` arrays are 24·2^k (384, 768, 1536), `TValue`
//! arrays 16·2^k (512, 1024, 2048). Fewer classes means fewer partly used pages, which is what
//! costs resident memory in a slab allocator.
//!
//! The classes stop at 2 KiB because that is where a page stops paying: a 2048 B page holds
//! 8 blocks, so one block in use pins at most 8× its size, while the blocks of 1–2 KiB (a
//! table's array or node part after a few doublings, a string buffer) are frequent enough that
//! sending them to the fallback cost more than all other blocks together: in the Lua-like mix of
//! `benches/backends.rs` the 0.5% of blocks over 1 KiB took about a sixth of the time when the
//! classes stopped at 1 KiB (a `malloc`, a `free` and a hash-table update each).
//!
//! # Page size
//!
//! [`PAGE_SIZE`] is 16 KiB (as Luau's pages): enough for 341 blocks of 48 B, so a page change
//! (the slow path) is rare, and even the 2048 B class gets 8 blocks; yet small enough that a
//! page empties — and goes back to the pool — often, and a class used a little costs little,
//! which keeps peak resident memory near glibc's. A fresh page's tail is never touched until it
//! is handed out, so the kernel maps it lazily. Pages come from the OS in 1 MiB segments (one
//! `mmap` for 64 pages); the first page of a segment starts its blocks after the headers.
//!
//! # Contract notes
//!
//! - A resize that stays in one class returns the same block; a shrink to a smaller class moves
//!   the block (to free the memory) unless no page can be had, and then keeps it in place, so a
//!   shrink between small sizes never fails.
//! - One shrink *can* fail: a large block (> [`MAX_SMALL`]) shrunk to a small size needs a small
//!   block, because the size alone decides small vs. large on every later call; if no page can be
//!   had it answers `None` and the old block stays intact (the contract allows it; it means the
//!   process is out of memory).
//! - Bookkeeping (a `slab` entry and a hash entry per page, a hash entry per large block) comes
//!   from Rust's global allocator. Hash tables are grown fallibly (`try_reserve`); the page slab
//!   grows geometrically and, like any Rust collection, would abort if even that tiny allocation
//!   failed.
//!
//! # When a host should pick it
//!
//! For Lua states that allocate and free many small objects — the common case — it is the
//! fastest backend here, with no locking, and tight: blocks carry no header. Pick something else
//! for states whose memory is mostly large blocks (big strings, big tables): those go to the
//! fallback (`Slab<F>` can use any backend for them), and the page pool's retention
//! ([`POOL_RETAIN`], process-wide) is memory held on behalf of future states. A value is about
//! 1 KiB while compact and 11 KiB once paged, and a host with thousands of tiny states pays
//! about what glibc's malloc costs for them (see the compact start above).
#![warn(missing_docs)]

use lmem_backend::{
    ALIGN, Backend, BackendStats, ExactOwnership, Fast, MAX_SIZE, Ownership, ResetUnsupported, Tag,
};
use lmem_system::System;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::{self, NonNull};

/// Bytes in a page. Pages are aligned to their size, so a block's page is its address masked.
pub const PAGE_SIZE: usize = 16 * 1024;

/// Block sizes of the classes, ascending; all multiples of [`ALIGN`].
pub const CLASS_SIZES: [usize; 28] = [
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, //
    320, 384, 448, 512, //
    640, 768, 896, 1024, //
    1280, 1536, 1792, 2048,
];

/// Number of size classes.
pub const CLASS_COUNT: usize = CLASS_SIZES.len();

/// The largest size served from pages; larger blocks go to the fallback backend.
pub const MAX_SMALL: usize = CLASS_SIZES[CLASS_COUNT - 1];

/// Class index of a size `s <= MAX_SMALL`, at `(s + 15) >> 4`.
pub const CLASS_OF: [u8; MAX_SMALL / ALIGN + 1] = class_table();

/// Hot-cache entries per class: many for the four classes up to 64 B, where nearly all of Lua's
/// blocks are, 32 up to 1 KiB, and few for the 1–2 KiB classes, where a cached block holds more
/// memory. (With 8 entries up to 1 KiB, as first tried, the Lua-like mix ran about 5% slower: a
/// small stack is often full or empty, and then the page path runs.)
pub const HOT_CAP: [u16; CLASS_COUNT] = [
    128, 128, 128, 128, //
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, //
    32, 32, 32, 32, 32, 32, 32, 32, //
    8, 8, 8, 8,
];

/// Where each class's hot stack starts in [`Slab`]'s one array of cached blocks; entry
/// `CLASS_COUNT` is the array's length.
const HOT_BASE: [u16; CLASS_COUNT + 1] = hot_bases();

/// Hot-cache entries in all ([`HOT_CAP`] summed): the most blocks a value keeps cached.
pub const HOT_SLOTS: usize = HOT_BASE[CLASS_COUNT] as usize;

/// Prefix sums of [`HOT_CAP`], at compile time.
const fn hot_bases() -> [u16; CLASS_COUNT + 1] {
    let mut b = [0u16; CLASS_COUNT + 1];
    let mut c = 0;
    while c < CLASS_COUNT {
        b[c + 1] = b[c] + HOT_CAP[c];
        c += 1;
    }
    b
}

/// Bytes of empty pages the process-wide pool keeps for reuse; pages returned beyond it are
/// unmapped.
pub const POOL_RETAIN: usize = 4 << 20;

/// Builds [`CLASS_OF`]: the smallest class holding `16 * i` bytes, for every `i`. Computed at
/// compile time so the table can never disagree with [`CLASS_SIZES`].
const fn class_table() -> [u8; MAX_SMALL / ALIGN + 1] {
    let mut t = [0u8; MAX_SMALL / ALIGN + 1];
    let mut i = 0;
    let mut c = 0;
    while i < t.len() {
        while CLASS_SIZES[c] < i * ALIGN {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
}

/// The class of a small size (`size <= MAX_SMALL`).
#[inline(always)]
fn class_of(size: usize) -> usize {
    debug_assert!(size <= MAX_SMALL);
    // The table lookup is the whole point of the class scheme; the assertion above and the
    // table's length (MAX_SMALL / 16 + 1) keep the index in range.
    CLASS_OF[(size + ALIGN - 1) >> 4] as usize
}

// ---------------------------------------------------------------------------------------------
// Pages

/// Where a page stands with respect to its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// The class's current page: allocations come from it.
    Current,
    /// Has free blocks and sits in the class's partial list.
    Partial,
    /// Was set aside with every block handed out; sits in the class's full list until it has
    /// gathered enough free blocks to join the partial list (see [`Slab::relist_at`]).
    Full,
}

/// A doubly linked FIFO list of pages (through their headers' `prev`/`next`).
#[derive(Clone, Copy)]
struct PageList {
    head: *mut PageHeader,
    tail: *mut PageHeader,
}

impl PageList {
    const EMPTY: PageList = PageList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
    };

    /// Appends `page`.
    ///
    /// # Safety
    ///
    /// `page` is a live page header of ours in no list; the list's pages are live headers of
    /// ours.
    unsafe fn push_back(&mut self, page: *mut PageHeader) {
        // SAFETY: `page` and the tail are live headers of ours (caller).
        unsafe {
            (*page).prev = self.tail;
            (*page).next = ptr::null_mut();
            if self.tail.is_null() {
                self.head = page;
            } else {
                (*self.tail).next = page;
            }
        }
        self.tail = page;
    }

    /// Takes `page` out of the list.
    ///
    /// # Safety
    ///
    /// `page` is in this list, whose pages are live headers of ours.
    unsafe fn remove(&mut self, page: *mut PageHeader) {
        // SAFETY: `page` and its neighbours are live headers of ours in this list (caller).
        unsafe {
            let (prev, next) = ((*page).prev, (*page).next);
            if prev.is_null() {
                debug_assert_eq!(self.head, page);
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if next.is_null() {
                debug_assert_eq!(self.tail, page);
                self.tail = prev;
            } else {
                (*next).prev = prev;
            }
        }
    }
}

/// A page's metadata. It does not live in the page: the 64 headers of a segment sit together
/// in the segment's first 4 KiB, so the headers of a large heap are dense in the cache. (Headers
/// at the start of 16 KiB-aligned pages would all fall into the same few cache sets and evict
/// each other on every free.) One header is one cache line, so two threads owning two pages of
/// one segment never share a line.
#[repr(C, align(64))]
struct PageHeader {
    /// Page-local free list; each free block's first word points to the next.
    free: *mut u8,
    /// First block never handed out.
    bump: *mut u8,
    /// End of the last whole block: `bump < end` means the bump tail has a block.
    end: *mut u8,
    /// Live blocks in the page.
    used: u32,
    /// Block size of the page's class.
    block: u32,
    /// The page's key in [`Slab::pages`].
    key: u32,
    /// Class index.
    class: u8,
    /// Where the page stands.
    state: State,
    /// Whether the page lies in a huge region (and goes back to it when empty).
    huge: bool,
    /// The value of `used` at which a free must take the slow path ([`NEVER`] for the current
    /// page, 0 for a partial page, [`Slab::relist_at`] for a full page). One comparison on the
    /// free fast path, almost never true, stands for "the page empties" and "a full page has
    /// gathered enough free blocks to be worth a page change".
    trigger: u32,
    /// List links (partial or full list; not valid in state [`State::Current`]).
    prev: *mut PageHeader,
    next: *mut PageHeader,
}

impl PageHeader {
    /// Puts a block back on the page's free list: the page holds one live block less.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this page that nobody uses from now on (its first word becomes
    /// the list's link).
    #[inline(always)]
    unsafe fn push_free(&mut self, ptr: NonNull<u8>) {
        // SAFETY: the block is ours and free from now on (caller): its first word is the link.
        unsafe { ptr.cast::<*mut u8>().write(self.free) };
        self.free = ptr.as_ptr();
        self.used -= 1;
    }
}

/// Bytes in a segment: the unit mapped from the OS, aligned to its size, holding
/// [`PAGES_PER_SEGMENT`] pages and, at its start, their headers.
pub const SEGMENT_SIZE: usize = 1 << 20;

/// Pages in a segment.
pub const PAGES_PER_SEGMENT: usize = SEGMENT_SIZE / PAGE_SIZE;

/// Bytes at the start of a segment taken by its page headers; the segment's first page starts
/// its blocks after them.
const META: usize = PAGES_PER_SEGMENT * size_of::<PageHeader>();

/// The OS page size we assume for `madvise` ranges (x86-64 and most targets).
const OS_PAGE: usize = 4096;

const _: () =
    assert!(size_of::<PageHeader>() == 64 && META.is_multiple_of(ALIGN) && META <= OS_PAGE);

/// A `trigger` that `used` never reaches (a page holds far fewer blocks).
const NEVER: u32 = u32::MAX;

/// The header of the page holding address `addr`: the segment base plus 64 bytes per page
/// index. Pure arithmetic, no load.
#[inline(always)]
fn header_of(addr: usize) -> *mut PageHeader {
    let seg = addr & !(SEGMENT_SIZE - 1);
    let index = (addr & (SEGMENT_SIZE - 1)) / PAGE_SIZE;
    (seg + index * size_of::<PageHeader>()) as *mut PageHeader
}

/// The header of the page holding small block `p`.
#[inline(always)]
fn page_of(p: NonNull<u8>) -> *mut PageHeader {
    header_of(p.as_ptr() as usize)
}

/// A cheap hasher for addresses (page bases, large blocks): their low bits are zero, so a
/// multiplicative hash spreads them; SipHash would only add cost on the page slow path and `owns`.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_usize` is used for addresses; fold anything else in byte by byte.
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

type AddrMap<V> = HashMap<usize, V, BuildHasherDefault<AddrHasher>>;

// ---------------------------------------------------------------------------------------------
// The process-wide page pool and the OS

/// Empty pages shared between all backend values of the process (page base addresses), and the
/// cell pages that compact values take their cells from.
struct Pool {
    /// Recently emptied pages, still resident: reused first. At most [`POOL_PAGES`].
    hot: Vec<usize>,
    /// Pages whose memory went back to the OS (`MADV_DONTNEED`) or was never touched (fresh
    /// segments). They cost address space only, and are reused after `hot`.
    cold: Vec<usize>,
    /// Pages mapped so far; `cold` always has room for all of them, so a page can always be
    /// parked there without allocating.
    mapped: usize,
    /// Header address of the first cell page that has a free cell (0: none); the others follow
    /// through the headers' `next`. Cell pages with no free cell are in no list.
    cells: usize,
    /// The huge regions, ascending by address.
    regions: Vec<Region>,
    /// Pages of regions held by values.
    region_used: usize,
    /// Empty pages of regions that are resident (not decommitted since they were last used).
    region_resident: usize,
}

/// A huge region: [`REGION_SIZE`] bytes aligned to their size, [`PAGES_PER_REGION`] pages.
struct Region {
    base: usize,
    /// Empty pages, bit `i` for the page at `base + i * PAGE_SIZE` (a page being decommitted is
    /// not in it, so no one takes it meanwhile).
    free: u128,
    /// Empty pages whose memory went back to the OS; a subset of `free`.
    cold: u128,
}

/// Every page of a region.
const ALL_PAGES: u128 = u128::MAX;

static POOL: Mutex<Pool> = Mutex::new(Pool {
    hot: Vec::new(),
    cold: Vec::new(),
    mapped: 0,
    cells: 0,
    regions: Vec::new(),
    region_used: 0,
    region_resident: 0,
});

/// Pages the pool keeps resident at most.
const POOL_PAGES: usize = POOL_RETAIN / PAGE_SIZE;

/// Bytes in a huge region: two segments, aligned to their size, which is that of an x86-64
/// transparent huge page. Regions are marked for huge pages (`MADV_HUGEPAGE`).
pub const REGION_SIZE: usize = 2 << 20;

/// Pages in a huge region.
pub const PAGES_PER_REGION: usize = REGION_SIZE / PAGE_SIZE;

/// A value that holds this many pages (4 MiB) takes its further pages from huge regions; one
/// that holds fewer takes them from segments, so small values never touch a huge page.
pub const BIG_PAGES: usize = (4 << 20) / PAGE_SIZE;

/// Empty region pages are kept resident up to `region pages in use / REGION_RETAIN_DIV` (or
/// [`POOL_RETAIN`], if more).
const REGION_RETAIN_DIV: usize = 4;

const _: () = assert!(PAGES_PER_REGION == 128 && REGION_SIZE.is_multiple_of(SEGMENT_SIZE));

/// Maps one segment: [`SEGMENT_SIZE`] bytes aligned to their size, or `None`.
fn os_map_segment() -> Option<usize> {
    os_map_aligned(SEGMENT_SIZE)
}

/// Maps `size` bytes aligned to `size` (a power of two), or `None`. Over-maps and trims, since
/// `mmap` only promises 4 KiB alignment.
fn os_map_aligned(size: usize) -> Option<usize> {
    let span = 2 * size;
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory; the arguments are valid for `mmap`.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let start = p as usize;
    let base = start.next_multiple_of(size);
    for (at, len) in [
        (start, base - start),
        (base + size, start + span - base - size),
    ] {
        if len > 0 {
            // SAFETY: `[at, at + len)` is an edge of the mapping just made, used by nothing.
            let rc = unsafe { libc::munmap(at as *mut libc::c_void, len) };
            debug_assert_eq!(rc, 0, "munmap failed");
        }
    }
    Some(base)
}

/// Gives the memory of `[at, at + len)` back to the OS, keeping the addresses mapped: they read
/// as zeros and cost nothing resident until touched again.
///
/// # Safety
///
/// The range is OS-page aligned, lies in our mappings, and holds nothing anyone uses.
unsafe fn os_discard(at: usize, len: usize) {
    // SAFETY: as the caller says; `madvise` only drops the contents.
    let rc = unsafe { libc::madvise(at as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    debug_assert_eq!(rc, 0, "madvise failed");
}

/// Gives the memory of an empty page back to the OS, keeping its addresses mapped: the page
/// reads as zeros and costs nothing resident until it is touched again. Keeping the mapping
/// means no segment is ever split into many small mappings.
fn os_decommit(base: usize) {
    // The first page of a segment also holds the headers of all its pages (other backends may
    // be using them): only the OS pages after the header area are discarded.
    let from = base
        + if base.is_multiple_of(SEGMENT_SIZE) {
            META.next_multiple_of(OS_PAGE)
        } else {
            0
        };
    // SAFETY: `[from, base + PAGE_SIZE)` lies in a page of one of our segments that no backend
    // holds (it is on its way to the pool) and holds no page header; discarding its contents
    // touches nothing anyone uses. The range is OS-page aligned, as `madvise` requires.
    unsafe { os_discard(from, base + PAGE_SIZE - from) };
}

impl Pool {
    /// Takes an empty page: a resident one if any, else a decommitted or fresh one, else a new
    /// segment (whose other pages are parked as fresh).
    fn take_page(&mut self) -> Option<usize> {
        if let Some(p) = self.hot.pop().or_else(|| self.cold.pop()) {
            return Some(p);
        }
        let need = self.mapped + PAGES_PER_SEGMENT - self.cold.len();
        self.cold.try_reserve(need).ok()?;
        let seg = os_map_segment()?;
        self.mapped += PAGES_PER_SEGMENT;
        // Highest first, so that pages are handed out in address order.
        self.cold
            .extend((1..PAGES_PER_SEGMENT).rev().map(|i| seg + i * PAGE_SIZE));
        Some(seg)
    }

    /// Empty region pages kept resident at most: [`POOL_RETAIN`], or a quarter of the region
    /// pages in use when that is more (the pages a collection cycle frees are wanted again
    /// in the next).
    fn region_retain(&self) -> usize {
        POOL_PAGES.max(self.region_used / REGION_RETAIN_DIV)
    }

    /// Takes an empty page for a big value: a resident page outside regions if the pool keeps
    /// one, else the lowest resident empty page of a huge region, else the lowest decommitted
    /// one, else the first page of a new region; and whether it lies in a region. `None` when
    /// no region can be mapped.
    fn take_region_page(&mut self) -> Option<(usize, bool)> {
        // A resident empty page outside regions costs nothing to reuse: those go first.
        if let Some(p) = self.hot.pop() {
            return Some((p, false));
        }
        let pick = (self.regions.iter())
            .position(|r| r.free & !r.cold != 0)
            .or_else(|| self.regions.iter().position(|r| r.free != 0));
        let i = match pick {
            Some(i) => i,
            None => {
                self.regions.try_reserve(1).ok()?;
                let base = os_map_region()?;
                let at = self.regions.partition_point(|r| r.base < base);
                // A fresh region counts as resident: its first touch brings in the whole of it
                // (one huge page).
                self.regions.insert(
                    at,
                    Region {
                        base,
                        free: ALL_PAGES,
                        cold: 0,
                    },
                );
                self.region_resident += PAGES_PER_REGION;
                at
            }
        };
        let r = &mut self.regions[i];
        let warm = r.free & !r.cold;
        let bit = if warm != 0 { warm } else { r.free }.trailing_zeros();
        let mask = 1u128 << bit;
        r.free &= !mask;
        if r.cold & mask != 0 {
            r.cold &= !mask;
        } else {
            self.region_resident -= 1;
        }
        self.region_used += 1;
        Some((r.base + bit as usize * PAGE_SIZE, true))
    }

    /// Takes back page `p` of a region. While the pool holds no more resident empty region
    /// pages than it keeps, the page stays resident. Beyond that, memory must go, from as few
    /// huge pages as possible: a wholly empty region if there is one (it stays one huge page
    /// when used again), else the resident empty pages of the region that has the most (the
    /// kernel splits its huge page). They are hidden (no one can take them meanwhile) and
    /// returned; the caller discards their memory outside the lock, then calls
    /// [`Pool::region_discarded`].
    fn give_region_page(&mut self, p: usize) -> Option<(usize, u128)> {
        let base = p & !(REGION_SIZE - 1);
        let i = self.regions.partition_point(|r| r.base < base);
        debug_assert_eq!(self.regions[i].base, base, "not a page of a region");
        let r = &mut self.regions[i];
        let mask = 1u128 << ((p - base) / PAGE_SIZE);
        debug_assert_eq!(r.free & mask, 0, "a region page given back twice");
        r.free |= mask;
        self.region_used -= 1;
        self.region_resident += 1;
        if self.region_resident <= self.region_retain() {
            return None;
        }
        let warm = |r: &Region| (r.free & !r.cold).count_ones();
        let victim = (self.regions.iter_mut())
            .filter(|r| r.free & !r.cold != 0)
            .max_by_key(|r| (r.free == ALL_PAGES, warm(r), r.base))?;
        let pages = if victim.free == ALL_PAGES {
            ALL_PAGES
        } else {
            victim.free & !victim.cold
        };
        self.region_resident -= warm(victim) as usize;
        victim.free &= !pages;
        Some((victim.base, pages))
    }

    /// A region hidden by [`Pool::give_region_page`] or [`pool_trim`] has had the memory of
    /// pages `pages` discarded: they are empty and cold again.
    fn region_discarded(&mut self, base: usize, pages: u128) {
        let i = self.regions.partition_point(|r| r.base < base);
        let r = &mut self.regions[i];
        r.free |= pages;
        r.cold |= pages;
    }

    /// Puts cell page `h` at the head of the list of cell pages with a free cell.
    ///
    /// # Safety
    ///
    /// `h` is the header of a cell page in no list; the listed headers are cell pages'.
    unsafe fn cells_push(&mut self, h: *mut PageHeader) {
        let next = self.cells as *mut PageHeader;
        // SAFETY: `h` and the list's head are cell pages' headers, written only under the pool
        // lock (held: `&mut self`); the fields written are never read outside it.
        unsafe {
            (*h).prev = ptr::null_mut();
            (*h).next = next;
            if !next.is_null() {
                (*next).prev = h;
            }
        }
        self.cells = h as usize;
    }

    /// Takes cell page `h` out of the list of cell pages with a free cell.
    ///
    /// # Safety
    ///
    /// `h` is in that list.
    unsafe fn cells_remove(&mut self, h: *mut PageHeader) {
        // SAFETY: `h` and its neighbours are listed cell pages' headers, written only under the
        // pool lock (held: `&mut self`).
        unsafe {
            let (prev, next) = ((*h).prev, (*h).next);
            if prev.is_null() {
                debug_assert_eq!(self.cells, h as usize);
                self.cells = next as usize;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
    }
}

/// Takes an empty page from the pool. The lock covers only the lists and the rare `mmap`.
fn pool_take() -> Option<usize> {
    POOL.lock().take_page()
}

/// Takes an empty page for a big value (see [`BIG_PAGES`]), and whether it lies in a region.
fn region_take() -> Option<(usize, bool)> {
    POOL.lock().take_region_page()
}

/// Maps one huge region, and asks the kernel to back it with transparent huge pages.
fn os_map_region() -> Option<usize> {
    let base = os_map_aligned(REGION_SIZE)?;
    // SAFETY: `[base, base + REGION_SIZE)` is the mapping just made; the advice only asks the
    // kernel to back it with huge pages. A failure (THP off or unsupported) changes nothing,
    // and the region works with small pages.
    unsafe { libc::madvise(base as *mut libc::c_void, REGION_SIZE, libc::MADV_HUGEPAGE) };
    Some(base)
}

/// Discards the memory of pages `pages` of the region at `base`: the whole region at once when
/// they are all of it (it comes back as one huge page), else page by page (a huge page that
/// held them is split by the kernel).
///
/// # Safety
///
/// The pages are empty, and hidden from takers (not in their region's `free`).
unsafe fn region_discard(base: usize, pages: u128) {
    if pages == ALL_PAGES {
        // SAFETY: the whole region is empty; its headers describe no live page.
        unsafe { os_discard(base, REGION_SIZE) };
    } else {
        for bit in 0..PAGES_PER_REGION {
            if pages & (1 << bit) != 0 {
                os_decommit(base + bit * PAGE_SIZE);
            }
        }
    }
}

/// Returns empty pages to the pool. A region page goes back to its region; another page stays
/// resident up to the pool's bound, and beyond it its memory goes back to the OS (outside the
/// lock) and it is parked as cold.
fn pool_give(pages: impl IntoIterator<Item = usize>) {
    for p in pages {
        // SAFETY: `p` is an empty page of ours on its way back, so its header is still ours.
        let huge = unsafe { (*header_of(p)).huge };
        let mut pool = POOL.lock();
        if huge {
            if let Some((base, pages)) = pool.give_region_page(p) {
                drop(pool);
                // SAFETY: the pages are empty and hidden from takers until `region_discarded`.
                unsafe { region_discard(base, pages) };
                POOL.lock().region_discarded(base, pages);
            }
        } else if pool.hot.len() < POOL_PAGES && pool.hot.try_reserve(1).is_ok() {
            pool.hot.push(p);
        } else {
            drop(pool);
            os_decommit(p);
            let mut pool = POOL.lock();
            debug_assert!(pool.cold.len() < pool.cold.capacity());
            pool.cold.push(p);
        }
    }
}

/// Empty pages the process-wide pool keeps resident now outside huge regions (at most
/// `POOL_RETAIN / PAGE_SIZE`). For tests and reports.
pub fn pool_pages() -> usize {
    POOL.lock().hot.len()
}

/// What the process-wide pool holds, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Empty pages kept resident outside huge regions (at most `POOL_RETAIN / PAGE_SIZE`).
    pub resident: usize,
    /// Huge regions mapped.
    pub regions: usize,
    /// Pages of huge regions held by values.
    pub region_used: usize,
    /// Empty pages of huge regions still resident.
    pub region_resident: usize,
}

/// The pool's counts now.
pub fn pool_stats() -> PoolStats {
    let pool = POOL.lock();
    PoolStats {
        resident: pool.hot.len(),
        regions: pool.regions.len(),
        region_used: pool.region_used,
        region_resident: pool.region_resident,
    }
}

/// Gives the memory of every empty page the pool keeps resident back to the OS, in huge regions
/// too: for a host that wants its memory back now (after closing many states), and for tests.
/// (A region page discarded alone no longer sits in a huge page.)
pub fn pool_trim() {
    let hot = std::mem::take(&mut POOL.lock().hot);
    for &p in &hot {
        os_decommit(p);
    }
    let mut pool = POOL.lock();
    pool.cold.extend(hot);
    // Region by region: the resident empty pages are hidden while their memory goes.
    let mut i = 0;
    while i < pool.regions.len() {
        let r = &mut pool.regions[i];
        let (base, warm) = (r.base, r.free & !r.cold);
        i += 1;
        if warm == 0 {
            continue;
        }
        // A wholly empty region goes at once (and comes back as one huge page).
        let pages = if r.free == ALL_PAGES { ALL_PAGES } else { warm };
        r.free &= !pages;
        pool.region_resident -= warm.count_ones() as usize;
        drop(pool);
        // SAFETY: the pages are empty and hidden from takers until `region_discarded`.
        unsafe { region_discard(base, pages) };
        pool = POOL.lock();
        pool.region_discarded(base, pages);
    }
}

// ---------------------------------------------------------------------------------------------
// Cells: the compact start's memory

/// Bytes in a cell: the unit in which a compact value ([`Slab::is_compact`]) holds memory. Cells
/// are pieces of pages shared between values (*cell pages*); a value holds each of its cells
/// exclusively and carves blocks of any class out of it. As large as the largest small block,
/// so that every small block fits in one.
pub const CELL_SIZE: usize = MAX_SMALL;

/// Cells in a page.
const CELLS_PER_PAGE: usize = PAGE_SIZE / CELL_SIZE;

/// Cells a compact value holds at most ([`COMPACT_CELLS`] × [`CELL_SIZE`] = 64 KiB): past that,
/// its blocks come from pages of their own class.
pub const COMPACT_CELLS: usize = 32;

/// The `class` of a cell page's header: no class, so no block of a page is ever taken for one.
const CELL_PAGE: u8 = u8::MAX;

const _: () = assert!(
    META.is_multiple_of(CELL_SIZE)
        && CELLS_PER_PAGE <= 32
        && CLASS_COUNT < CELL_PAGE as usize
        && PAGE_SIZE.is_multiple_of(CELL_SIZE)
);

/// The cells of page `base` that can hold blocks, as a bit mask (bit `i`: the cell at `base + i *
/// CELL_SIZE`): all of them, except in a segment's first page, whose start holds the headers.
fn cell_mask(base: usize) -> u32 {
    let all = (1u32 << CELLS_PER_PAGE) - 1;
    if base.is_multiple_of(SEGMENT_SIZE) {
        all & !((1u32 << (META / CELL_SIZE)) - 1)
    } else {
        all
    }
}

/// The base address of the page whose header is at `h` (the inverse of [`header_of`]).
fn base_of_header(h: *mut PageHeader) -> usize {
    let h = h as usize;
    let seg = h & !(SEGMENT_SIZE - 1);
    seg + (h - seg) / size_of::<PageHeader>() * PAGE_SIZE
}

/// Takes a free cell from the pool's cell pages, making a new cell page of an empty page when
/// none has a free cell. `None` when no page can be had.
///
/// A cell page's header is written under the pool lock only, except that `used`, `trigger` and
/// `class` are set once, before any of its cells is handed out, and then only read (by the
/// frees of the cells' holders, from any thread) until every cell is back and the page leaves.
fn cell_take() -> Option<usize> {
    let mut pool = POOL.lock();
    if pool.cells == 0 {
        let base = pool.take_page()?;
        let h = header_of(base);
        // SAFETY: `base` is an empty page just taken from the pool, so its header slot is no
        // one's; nothing reads it until a cell of the page is handed out, under this lock.
        unsafe {
            h.write(PageHeader {
                free: ptr::null_mut(),
                bump: ptr::null_mut(),
                end: ptr::null_mut(),
                // `used - 1 == trigger` on every free: a free that reaches a cell page's header
                // always leaves the page path (and finds the cell's holder).
                used: 1,
                block: CELL_SIZE as u32,
                // The mask of free cells.
                key: cell_mask(base),
                class: CELL_PAGE,
                state: State::Full,
                huge: false,
                trigger: 0,
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
            });
            pool.cells_push(h);
        }
    }
    let h = pool.cells as *mut PageHeader;
    // SAFETY: `h` heads the list of cell pages with a free cell (so its mask is not 0); its
    // mask and links are written under the lock, held.
    unsafe {
        let mask = (*h).key;
        debug_assert_ne!(mask, 0);
        (*h).key = mask & (mask - 1);
        if (*h).key == 0 {
            pool.cells_remove(h);
        }
        Some(base_of_header(h) + mask.trailing_zeros() as usize * CELL_SIZE)
    }
}

/// Gives cells back to their pages; a page whose cells are all back goes back to the pool.
///
/// # Safety
///
/// Every cell was taken with [`cell_take`] and is given back once, with no live block in it.
unsafe fn cells_give(cells: &[usize]) {
    debug_assert!(cells.len() <= COMPACT_CELLS);
    let mut empty = [0usize; COMPACT_CELLS];
    let mut n = 0;
    {
        let mut pool = POOL.lock();
        for &c in cells {
            let base = c & !(PAGE_SIZE - 1);
            let h = header_of(base);
            let bit = 1u32 << ((c - base) / CELL_SIZE);
            // SAFETY: `c` is a cell of cell page `base` (caller), whose mask and links are
            // written under the lock, held.
            unsafe {
                let mask = (*h).key;
                debug_assert_eq!(mask & bit, 0, "a cell given back twice");
                if mask == 0 {
                    pool.cells_push(h);
                }
                (*h).key = mask | bit;
                if (*h).key == cell_mask(base) {
                    // Every cell is back: no block of the page is live, so no free reads its
                    // header any more, and the page is empty.
                    pool.cells_remove(h);
                    empty[n] = base;
                    n += 1;
                }
            }
        }
    }
    pool_give(empty[..n].iter().copied());
}

// ---------------------------------------------------------------------------------------------
// The backend

/// A size-class slab allocator: one Lua state's heap. Blocks up to [`MAX_SMALL`] bytes come from
/// cells while the value is compact, then from 16 KiB pages (one class per page, page-local free
/// lists); larger ones from `F`.
///
/// The value is single-threaded (`&mut self`) but `Send`; pages and cells come from and go back
/// to a process-wide pool.
pub struct Slab<F: Backend = System> {
    /// Per class: the page allocations come from, or null (always null while compact).
    current: [*mut PageHeader; CLASS_COUNT],
    /// Per class: blocks in its hot stack, at most `hot_cap[class]`.
    hot_len: [u32; CLASS_COUNT],
    /// Per class: the hot stack's capacity, [`HOT_CAP`] once paged, 0 while compact.
    hot_cap: [u32; CLASS_COUNT],
    /// Per class: the hot stack's first entry, in `paged`'s array (dangling while compact: a
    /// stack of capacity 0 is never read or written).
    hot_at: [*mut *mut u8; CLASS_COUNT],
    /// Per class: free blocks of this value's cells, linked through their first word.
    cell_free: [*mut u8; CLASS_COUNT],
    /// What only a paged value needs (page lists, the hot stacks' entries): null while compact.
    paged: *mut Paged,
    /// The cells this value holds, ascending (at most [`COMPACT_CELLS`]).
    cells: Vec<usize>,
    /// The untouched rest of the newest cell: `[cell_bump, cell_end)`.
    cell_bump: usize,
    cell_end: usize,
    /// Bytes and blocks carved from cells so far, less those lost to an in-place shrink; the
    /// blocks on `cell_free` are among them.
    cell_carved: usize,
    cell_carved_blocks: usize,
    /// Every page this value holds (base address), keyed by the index stored in its header.
    pages: slab::Slab<usize>,
    /// Page base -> key in `pages`: makes `owns` exact without touching foreign memory.
    by_addr: AddrMap<u32>,
    /// Large blocks handed to the fallback: address -> size.
    large: AddrMap<usize>,
    /// Bytes in `large`.
    large_bytes: usize,
    /// Where blocks above [`MAX_SMALL`] go.
    fallback: F,
}

/// A paged value's page lists and hot-stack entries, in one allocation made when the value stops
/// being compact.
struct Paged {
    /// Per class: the pages with a worthwhile number of free blocks. Pages join at the tail
    /// and are taken from the head (FIFO), so the page taken has waited longest and gathered
    /// the most frees: a LIFO list would hand back the page that just got its first free,
    /// good for one block before the next page change.
    partial: [PageList; CLASS_COUNT],
    /// Per class: the pages set aside full, oldest first. Reused only when no partial page is
    /// left, before a new page is taken, so that their few free blocks cost no memory.
    full: [PageList; CLASS_COUNT],
    /// The hot stacks of all classes: recently freed small blocks, still used in their pages.
    hot: [*mut u8; HOT_SLOTS],
}

// SAFETY: the raw pointers point into pages and cells this value holds exclusively (taken from
// the pool, given back on drop) and into its own `Paged` allocation; no other value or thread
// reaches them. The shared state is the pool, behind a mutex, and the headers of cell pages: the
// fields this value reads there without the lock (`used`, `trigger`, `class`) are written only
// before the page's first cell is handed out (under the lock, which orders that write before
// any holder's read) and stay unchanged while a cell of the page is held. Moving the value to
// another thread moves that exclusive ownership with it; `F: Send` covers the fallback.
unsafe impl<F: Backend + Send> Send for Slab<F> {}

impl Slab<System> {
    /// A slab backend whose large blocks go to libc malloc. It starts compact.
    pub fn new() -> Self {
        Self::with_fallback(System::new())
    }
}

impl Default for Slab<System> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Backend> Slab<F> {
    /// A slab backend whose large blocks (over [`MAX_SMALL`]) go to `fallback`. It starts
    /// compact; no cell or page is taken until the first allocation.
    pub fn with_fallback(fallback: F) -> Self {
        Slab {
            current: [ptr::null_mut(); CLASS_COUNT],
            hot_len: [0; CLASS_COUNT],
            hot_cap: [0; CLASS_COUNT],
            hot_at: [NonNull::dangling().as_ptr(); CLASS_COUNT],
            cell_free: [ptr::null_mut(); CLASS_COUNT],
            paged: ptr::null_mut(),
            cells: Vec::new(),
            cell_bump: 0,
            cell_end: 0,
            cell_carved: 0,
            cell_carved_blocks: 0,
            pages: slab::Slab::new(),
            by_addr: AddrMap::default(),
            large: AddrMap::default(),
            large_bytes: 0,
            fallback,
        }
    }

    /// The fallback backend.
    pub fn fallback(&self) -> &F {
        &self.fallback
    }

    /// Pages this value holds (current, partial and full); cells are not pages.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Cells this value holds (at most [`COMPACT_CELLS`]).
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// Whether the value is still compact: its small blocks come from cells, with no hot cache.
    /// A value starts compact and stops being so, for good, once its cells are full.
    pub fn is_compact(&self) -> bool {
        self.paged.is_null()
    }

    /// Ends the compact start now (if it has not ended): later small blocks come from pages of
    /// their class, with the hot cache. Blocks already in cells stay there, and their frees are
    /// reused. For a host that knows a state will grow big, and for tests of the page
    /// machinery. `false` (and nothing changed) when the memory for the page lists and the hot
    /// cache (about 10 KiB) cannot be had.
    pub fn leave_compact(&mut self) -> bool {
        if !self.paged.is_null() {
            return true;
        }
        let layout = std::alloc::Layout::new::<Paged>();
        // SAFETY: the layout has a non-zero size. All-zero bytes are a valid `Paged`: null list
        // ends and null stack entries.
        let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Paged>();
        if p.is_null() {
            return false;
        }
        self.paged = p;
        for class in 0..CLASS_COUNT {
            // SAFETY: `HOT_BASE[class] < HOT_SLOTS`: an entry of the array just made.
            self.hot_at[class] = unsafe {
                (&raw mut (*p).hot)
                    .cast::<*mut u8>()
                    .add(HOT_BASE[class] as usize)
            };
            self.hot_cap[class] = HOT_CAP[class] as u32;
        }
        true
    }

    /// Blocks sitting in the hot caches, free to the caller but used in their pages.
    pub fn cached_blocks(&self) -> usize {
        (0..CLASS_COUNT).map(|c| self.hot_len[c] as usize).sum()
    }

    /// Gives every block of the hot caches back to its page, so that pages holding nothing
    /// else go back to the pool: for a host that wants memory back now (after a full
    /// collection), and for tests. Allocation speed is unaffected after the caches refill.
    /// Cells stay with the value until it is dropped or reset.
    pub fn trim(&mut self) {
        for class in 0..CLASS_COUNT {
            let at = self.hot_at[class];
            let n = std::mem::take(&mut self.hot_len[class]) as usize;
            for i in 0..n {
                // SAFETY: entries below the stack's length are cached blocks of the class:
                // small blocks of ours, used in their pages and not handed out; each leaves the
                // cache here, so it is freed once.
                unsafe { self.free_small(NonNull::new_unchecked(*at.add(i)), class) };
            }
        }
    }

    /// Hands out a block from `page` if it has one: the free list first (recently freed memory
    /// is warm), then the bump tail. This is the whole allocation fast path.
    ///
    /// # Safety
    ///
    /// `page` is a page of this value.
    #[inline(always)]
    unsafe fn take(page: *mut PageHeader) -> Option<NonNull<u8>> {
        // SAFETY: `page` is a live page header of ours (caller), exclusively ours via `&mut self`.
        let h = unsafe { &mut *page };
        let b = h.free;
        if !b.is_null() {
            // SAFETY: `b` is a free block of this page; its first word holds the next free block.
            h.free = unsafe { b.cast::<*mut u8>().read() };
            h.used += 1;
            // SAFETY: non-null, checked above.
            return Some(unsafe { NonNull::new_unchecked(b) });
        }
        let b = h.bump;
        if b < h.end {
            // SAFETY: `b + block <= end`, inside the page.
            h.bump = unsafe { b.add(h.block as usize) };
            h.used += 1;
            // SAFETY: a block inside the page, non-null.
            return Some(unsafe { NonNull::new_unchecked(b) });
        }
        None
    }

    /// A free block of this value's cells for `class`, if any.
    #[inline(always)]
    fn cell_pop(&mut self, class: usize) -> Option<NonNull<u8>> {
        let b = NonNull::new(self.cell_free[class])?;
        // SAFETY: a block on `cell_free` is a free block of one of our cells; its first word
        // holds the next one.
        self.cell_free[class] = unsafe { b.cast::<*mut u8>().read() };
        Some(b)
    }

    /// Puts a freed cell block on its class's free list.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of one of our cells, of at least `CLASS_SIZES[class]` bytes, not
    /// used afterwards.
    #[inline(always)]
    unsafe fn cell_push(&mut self, ptr: NonNull<u8>, class: usize) {
        // SAFETY: the block is ours and free from now on: its first word is the link.
        unsafe { ptr.cast::<*mut u8>().write(self.cell_free[class]) };
        self.cell_free[class] = ptr.as_ptr();
    }

    /// A new block of `class` carved from the newest cell, or from a new cell when it has no
    /// room. `None` when the value holds [`COMPACT_CELLS`] cells already or no cell can be had.
    #[cold]
    fn cell_carve(&mut self, class: usize) -> Option<NonNull<u8>> {
        let size = CLASS_SIZES[class];
        // A free block of the smallest larger class that has one, split: the head is the
        // block, the rest goes back to the free lists.
        if let Some(c) = (class + 1..CLASS_COUNT).find(|&c| !self.cell_free[c].is_null()) {
            let b = self.cell_pop(c)?;
            let (mut at, end) = (
                b.as_ptr() as usize + size,
                b.as_ptr() as usize + CLASS_SIZES[c],
            );
            while end - at >= ALIGN {
                let piece = CLASS_SIZES.partition_point(|&s| s <= end - at) - 1;
                // SAFETY: `[at, at + CLASS_SIZES[piece])` is free memory of our cell, inside
                // the block just taken and past its head.
                unsafe { self.cell_push(NonNull::new_unchecked(at as *mut u8), piece) };
                at += CLASS_SIZES[piece];
                self.cell_carved_blocks += 1;
            }
            // The block's bytes stay carved: the head is handed out, the pieces are free.
            self.cell_carved -= end - at;
            return Some(b);
        }
        if self.cell_end - self.cell_bump < size {
            if self.cells.len() == COMPACT_CELLS {
                return None;
            }
            self.cells.try_reserve(1).ok()?;
            let cell = cell_take()?;
            // The old cell's rest, too small for this block, is cut into blocks of the largest
            // classes that fit, for later requests.
            while self.cell_end - self.cell_bump >= ALIGN {
                let rest = self.cell_end - self.cell_bump;
                let c = CLASS_SIZES.partition_point(|&s| s <= rest) - 1;
                let b = self.cell_bump;
                self.cell_bump += CLASS_SIZES[c];
                self.cell_carved += CLASS_SIZES[c];
                self.cell_carved_blocks += 1;
                // SAFETY: `[b, b + CLASS_SIZES[c])` is untouched memory of our newest cell.
                unsafe { self.cell_push(NonNull::new_unchecked(b as *mut u8), c) };
            }
            let at = self.cells.partition_point(|&c| c < cell);
            self.cells.insert(at, cell);
            (self.cell_bump, self.cell_end) = (cell, cell + CELL_SIZE);
        }
        let b = self.cell_bump;
        self.cell_bump += size;
        self.cell_carved += size;
        self.cell_carved_blocks += 1;
        // SAFETY: `[b, b + size)` is untouched memory of our newest cell, non-null.
        Some(unsafe { NonNull::new_unchecked(b as *mut u8) })
    }

    /// Whether `addr` lies in one of this value's cells.
    fn in_cells(&self, addr: usize) -> bool {
        self.cells.binary_search(&(addr & !(CELL_SIZE - 1))).is_ok()
    }

    /// A small block of class `class` when the fast path had none. A compact value carves one
    /// from its cells, and stops being compact when they are full. A paged value reuses a free
    /// cell block first; else its current page (full) is set aside, the partial page that has
    /// waited longest takes its place; when there is none, a full page that has gathered a free
    /// block since; only then a new page from the pool.
    #[cold]
    #[inline(never)]
    fn alloc_slow(&mut self, class: usize) -> Option<NonNull<u8>> {
        if let Some(b) = self.cell_pop(class) {
            return Some(b);
        }
        if self.paged.is_null() {
            if let Some(b) = self.cell_carve(class) {
                return Some(b);
            }
            // Cells full (or none to be had): from now on, pages.
            if !self.leave_compact() {
                return None;
            }
        }
        let cur = self.current[class];
        // SAFETY: the value is paged, so `paged` is its own allocation, reached only through
        // it (`&mut self`); `new_page` below does not touch it.
        let lists = unsafe { &mut *self.paged };
        if !cur.is_null() {
            // SAFETY: `cur` is a page of ours, in no list; `take` found it without free blocks,
            // so `used` is its capacity.
            unsafe {
                (*cur).state = State::Full;
                (*cur).trigger = Self::relist_at((*cur).used);
                lists.full[class].push_back(cur);
            }
            self.current[class] = ptr::null_mut();
        }
        let page = match lists.partial[class].head {
            p if !p.is_null() => {
                // SAFETY: `p` is a page of ours in the partial list of `class`.
                unsafe { lists.partial[class].remove(p) };
                p
            }
            _ => match Self::full_with_free(&mut lists.full[class]) {
                Some(p) => p,
                None => self.new_page(class)?,
            },
        };
        // SAFETY: `page` is a page of ours, now in no list.
        unsafe {
            (*page).state = State::Current;
            (*page).trigger = NEVER;
        }
        self.current[class] = page;
        // SAFETY: a partial page has a free block, so has a page from `full_with_free`, and a
        // new page has a bump tail: this succeeds.
        let b = unsafe { Self::take(page) };
        debug_assert!(b.is_some());
        b
    }

    /// A page of a class's `full` list that has a free block, taken out of the list; `None`
    /// if the few oldest have none. Looks at a bounded number of pages (rotating those without
    /// a free block to the tail), so a heap whose full pages stay full pays little for it.
    fn full_with_free(full: &mut PageList) -> Option<*mut PageHeader> {
        for _ in 0..4 {
            let p = full.head;
            if p.is_null() {
                return None;
            }
            // SAFETY: `p` is a page of ours in the list.
            unsafe {
                full.remove(p);
                if !(*p).free.is_null() {
                    return Some(p);
                }
                full.push_back(p);
            }
        }
        None
    }

    /// The `used` count at which a full page of `capacity` blocks rejoins the partial list:
    /// once an eighth of it is free. A page relisted at its first free would serve one block
    /// before the next page change; on a growing heap with random frees that made every
    /// fourth allocation a page change. Waiting for an eighth bounds the blocks parked in full
    /// pages to an eighth of them, less than glibc's per-block header costs.
    #[inline]
    fn relist_at(capacity: u32) -> u32 {
        capacity - (capacity / 8).max(1)
    }

    /// Takes a page from the pool for `class` and registers it. Fails (`None`) when the OS gives
    /// no memory or the registry cannot grow.
    fn new_page(&mut self, class: usize) -> Option<*mut PageHeader> {
        self.by_addr.try_reserve(1).ok()?;
        // A value with a big heap takes its pages from huge regions; a small one never does.
        let (base, huge) = if self.pages.len() >= BIG_PAGES {
            region_take()
        } else {
            None
        }
        .or_else(|| pool_take().map(|p| (p, false)))?;
        let block = CLASS_SIZES[class];
        let key = self.pages.vacant_key();
        let page = header_of(base);
        let first = base
            + if base.is_multiple_of(SEGMENT_SIZE) {
                META
            } else {
                0
            };
        let end = first + (base + PAGE_SIZE - first) / block * block;
        // SAFETY: `base` is an empty page from the pool, owned by us from now on, and so is its
        // header slot in the segment's header area.
        unsafe {
            page.write(PageHeader {
                free: ptr::null_mut(),
                bump: first as *mut u8,
                end: end as *mut u8,
                used: 0,
                block: block as u32,
                key: key as u32,
                class: class as u8,
                state: State::Current,
                huge,
                trigger: NEVER,
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
            })
        };
        let inserted = self.pages.insert(base);
        debug_assert_eq!(inserted, key);
        self.by_addr.insert(base, key as u32);
        Some(page)
    }

    /// Frees a small block of class `class` (its size's) to its page, or to the cell free list
    /// if it lies in a cell. The page's `trigger` decides whether anything else has to happen
    /// (rarely).
    ///
    /// # Safety
    ///
    /// `ptr` is a live small block of ours whose size is of class `class`.
    #[inline(always)]
    unsafe fn free_small(&mut self, ptr: NonNull<u8>, class: usize) {
        // Debug builds checked that the block is ours when it was freed (`deallocate`), before
        // the hot cache or this page free.
        let page = page_of(ptr);
        // SAFETY: `ptr` is a live block of ours (caller), so `page` is the header of a page of
        // ours or of a cell page one of whose cells we hold. Both fields read are, for a cell
        // page, the ones that stay unchanged while we hold the cell (see `cell_take`): they
        // are read in place, with no reference to a header others may be writing.
        let slow = unsafe { (*page).used - 1 == (*page).trigger };
        // One test that is almost never true, so it predicts well. (Testing the page's state
        // would branch on which page a random free hits: a coin flip on a growing heap, where
        // many pages are full, and on any heap for "is it current?".)
        if slow {
            // SAFETY: as this function's.
            unsafe { self.free_slow(ptr, class) };
            return;
        }
        // SAFETY: not a cell page's header (whose test is always true): a page of ours,
        // exclusively ours via `&mut self`, and the block is its own, freed by the caller.
        unsafe { (*page).push_free(ptr) }
    }

    /// The rare cases of a small free: the block lies in a cell (it joins the cell free list),
    /// a full page has gathered enough free blocks (it joins the partial list) or a partial
    /// page is now empty (it goes back to the pool).
    ///
    /// # Safety
    ///
    /// As [`Slab::free_small`], and the page's `used - 1 == trigger`.
    #[cold]
    #[inline(never)]
    unsafe fn free_slow(&mut self, ptr: NonNull<u8>, class: usize) {
        let page = page_of(ptr);
        // SAFETY: `class` of a cell page's header stays unchanged while we hold one of its
        // cells, as `free_small` says; read in place.
        if unsafe { (*page).class } == CELL_PAGE {
            // SAFETY: a live block of one of our cells, of class `class` (caller).
            unsafe { self.cell_push(ptr, class) };
            return;
        }
        // SAFETY: a page of ours (not a cell page), exclusively ours, and the block is its own,
        // freed by the caller. Pages exist only once the value is paged.
        unsafe {
            let h = &mut *page;
            h.push_free(ptr);
            let (state, used, key, class) = (h.state, h.used, h.key, h.class as usize);
            debug_assert_ne!(state, State::Current, "the current page never triggers");
            // The value is paged: `paged` is its own allocation, reached only through it.
            let lists = &mut *self.paged;
            // Not current: the page is in the list its state names.
            if state == State::Partial {
                lists.partial[class].remove(page);
            } else {
                lists.full[class].remove(page);
            }
            if used == 0 {
                let base = self.pages.remove(key as usize);
                self.by_addr.remove(&base);
                pool_give([base]);
            } else {
                debug_assert_eq!(state, State::Full);
                h.state = State::Partial;
                h.trigger = 0;
                lists.partial[class].push_back(page);
            }
        }
    }

    /// `allocate` past the fast path: a page change or a cell block for a small block, or a
    /// large block.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        if size <= MAX_SMALL {
            self.alloc_slow(class_of(size))
        } else {
            self.alloc_large(size, tag)
        }
    }

    /// `deallocate` past the fast path: a large block, or a small free that changes its page's
    /// list (the hot cache of its class is full).
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of ours of size `size`.
    #[cold]
    #[inline(never)]
    unsafe fn deallocate_slow(&mut self, ptr: NonNull<u8>, size: usize) {
        if size <= MAX_SMALL {
            // SAFETY: a small live block of ours, of its size's class (caller).
            unsafe { self.free_small(ptr, class_of(size)) }
        } else {
            // SAFETY: a block of a large size is a large block of ours (caller).
            unsafe { self.free_large(ptr, size) }
        }
    }

    /// A large block from the fallback, recorded so that `owns` and `reset` know it.
    #[cold]
    fn alloc_large(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_SIZE {
            return None;
        }
        self.large.try_reserve(1).ok()?;
        let p = self.fallback.allocate(size, tag)?;
        debug_assert_eq!(p.as_ptr() as usize % ALIGN, 0);
        self.large.insert(p.as_ptr() as usize, size);
        self.large_bytes += size;
        Some(p)
    }

    /// Frees a large block through the fallback and forgets it.
    ///
    /// # Safety
    ///
    /// `ptr` is a live large block of ours of size `size`.
    #[cold]
    unsafe fn free_large(&mut self, ptr: NonNull<u8>, size: usize) {
        let known = self.large.remove(&(ptr.as_ptr() as usize));
        debug_assert_eq!(known, Some(size), "large free with a wrong size or pointer");
        self.large_bytes -= size;
        // SAFETY: `ptr` is a live block of the fallback of size `size` (caller).
        unsafe { self.fallback.deallocate(ptr, size) };
    }

    /// Resize of a block that cannot stay where it is: a new block (small or large), the prefix
    /// copied, the old block freed. On failure the old block is untouched.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of ours of size `old`.
    unsafe fn move_block(
        &mut self,
        ptr: NonNull<u8>,
        old: usize,
        new: usize,
    ) -> Option<NonNull<u8>> {
        let q = self.allocate(new, Tag::Other)?;
        // SAFETY: `ptr` has `old` readable bytes, `q` is a fresh block of `new` bytes that
        // overlaps no live block.
        unsafe { ptr::copy_nonoverlapping(ptr.as_ptr(), q.as_ptr(), old.min(new)) };
        // SAFETY: `ptr` is a live block of ours of size `old`, not used again.
        unsafe { self.deallocate(ptr, old) };
        Some(q)
    }

    /// Gives every page back to the pool, every cell to its page and every large block to the
    /// fallback; the value is empty afterwards (and stays paged if it was). Shared by `reset`
    /// and `drop`.
    fn release_all(&mut self) {
        self.hot_len = [0; CLASS_COUNT];
        pool_give(self.pages.drain());
        self.by_addr.clear();
        self.current = [ptr::null_mut(); CLASS_COUNT];
        if !self.paged.is_null() {
            // SAFETY: the value is paged: `paged` is its own allocation, reached only through
            // it.
            let lists = unsafe { &mut *self.paged };
            lists.partial = [PageList::EMPTY; CLASS_COUNT];
            lists.full = [PageList::EMPTY; CLASS_COUNT];
        }
        // SAFETY: our cells, each taken once and given back once (the list is emptied); the
        // caller of `reset` (or `drop`) gives up every block in them.
        unsafe { cells_give(&self.cells) };
        self.cells.clear();
        self.cell_free = [ptr::null_mut(); CLASS_COUNT];
        (self.cell_bump, self.cell_end) = (0, 0);
        (self.cell_carved, self.cell_carved_blocks) = (0, 0);
        for (p, size) in self.large.drain() {
            // SAFETY: every entry of `large` is a live block of the fallback of that size, and
            // the caller of `reset` (or `drop`) gives up all blocks.
            unsafe {
                self.fallback
                    .deallocate(NonNull::new_unchecked(p as *mut u8), size)
            };
        }
        self.large_bytes = 0;
    }
}

// SAFETY:
// - small blocks are disjoint slots of pages or cells this value holds exclusively (a page is in
//   the pool, a cell page's pieces, or in exactly one value; a cell is free in its page or held
//   by exactly one value), aligned to 16 (pages and cells are 16-aligned, the header area is a
//   multiple of 16, class sizes are multiples of 16) and at least `size` bytes (the class rounds
//   up); large blocks come from `F`, which upholds the same contract;
// - sizes above MAX_SIZE are refused;
// - resize keeps the prefix (same block, or copy of `min(old, new)` bytes) and leaves the old
//   block live on `None`;
// - deallocate never fails; nothing panics or aborts on out-of-memory (mmap and the fallback
//   answer `None`; vectors and hash tables grow through `try_reserve`);
// - `owns` answers Owned only for addresses in our pages, our cells or our recorded large
//   blocks;
// - blocks live in pages, cells or the fallback, never in `self`, so moving the value moves
//   nothing;
// - `trim` only moves cached (free) blocks to their pages' free lists;
// - the fast paths do what `allocate` and `deallocate` would (they are their first half) or
//   change nothing before answering `Slow`.
unsafe impl<F: Backend> Backend for Slab<F> {
    fn name(&self) -> &str {
        "slab"
    }

    #[inline]
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        match self.allocate_fast(size, tag) {
            Fast::Done(b) => b,
            Fast::Slow => self.allocate_slow(size, tag),
        }
    }

    /// The hot cache, then the current page (or, with no current page, a free cell block): no
    /// call, no lock. `Slow` for a large block or when all are empty.
    #[inline(always)]
    fn allocate_fast(&mut self, size: usize, _tag: Tag) -> Fast<Option<NonNull<u8>>> {
        if size > MAX_SMALL {
            return Fast::Slow;
        }
        let class = class_of(size);
        let n = self.hot_len[class];
        if n != 0 {
            self.hot_len[class] = n - 1;
            // SAFETY: `n - 1 < hot_cap[class]`, an entry of the class's stack, which holds a
            // cached block (a small block of ours, used in its page, not handed out), hence
            // non-null.
            return Fast::Done(Some(unsafe {
                NonNull::new_unchecked(*self.hot_at[class].add(n as usize - 1))
            }));
        }
        let page = self.current[class];
        if !page.is_null() {
            // SAFETY: a current page is a page of ours.
            if let Some(b) = unsafe { Self::take(page) } {
                return Fast::Done(Some(b));
            }
        } else if let Some(b) = self.cell_pop(class) {
            // A compact value (never a current page) reuses its cells' free blocks here.
            return Fast::Done(Some(b));
        }
        Fast::Slow
    }

    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller's contract is `deallocate`'s.
        if let Fast::Slow = unsafe { self.deallocate_fast(ptr, size) } {
            // SAFETY: as above; the fast path left the block live and everything unchanged.
            unsafe { self.deallocate_slow(ptr, size) }
        }
    }

    /// The hot cache, or the block's page when that changes nothing else, or the cell free list
    /// for a block of a cell: no call. `Slow` for a large block, or when the page must change
    /// lists or go back to the pool.
    #[inline(always)]
    unsafe fn deallocate_fast(&mut self, ptr: NonNull<u8>, size: usize) -> Fast<()> {
        if size > MAX_SMALL {
            return Fast::Slow;
        }
        debug_assert!(
            self.by_addr
                .contains_key(&(ptr.as_ptr() as usize & !(PAGE_SIZE - 1)))
                || self.in_cells(ptr.as_ptr() as usize),
            "free of a foreign block"
        );
        let class = class_of(size);
        let n = self.hot_len[class];
        if n != self.hot_cap[class] {
            // The block stays used in its page; the cache holds it for the next allocation of
            // its class.
            // SAFETY: `n < hot_cap[class]`, an entry of the class's stack.
            unsafe { *self.hot_at[class].add(n as usize) = ptr.as_ptr() };
            self.hot_len[class] = n + 1;
            return Fast::Done(());
        }
        let page = page_of(ptr);
        // SAFETY: a block whose size is small is one of our small blocks (caller), so `page` is
        // the header of a page of ours or of a cell page one of whose cells we hold; the fields
        // read are, for a cell page, unchanged while we hold the cell, and read in place.
        // One test that is almost never true on a page of ours, so it predicts well. (Testing
        // the page's state would branch on which page a random free hits: a coin flip on a
        // growing heap, where many pages are full, and on any heap for "is it current?".)
        if unsafe { (*page).used - 1 == (*page).trigger } {
            // SAFETY: as above.
            if unsafe { (*page).class } == CELL_PAGE {
                // SAFETY: a live block of one of our cells, of class `class` (caller).
                unsafe { self.cell_push(ptr, class) };
                return Fast::Done(());
            }
            return Fast::Slow;
        }
        // SAFETY: not a cell page (its test is always true): a page of ours, exclusively ours,
        // and the block is its own, free from now on.
        unsafe { (*page).push_free(ptr) };
        Fast::Done(())
    }

    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        if old_size <= MAX_SMALL {
            // The block holds at least its size's class (more after an in-place shrink).
            let class = class_of(old_size);
            if new_size <= CLASS_SIZES[class] {
                let to = class_of(new_size);
                if to == class {
                    // Same class: the block already fits.
                    return Some(ptr);
                }
                // A shrink to a smaller class: move to free the memory, or stay if no block
                // can be had (never fail a shrink).
                // SAFETY: `ptr` is a live block of ours of size `old_size` (caller).
                if let Some(q) = unsafe { self.move_block(ptr, old_size, new_size) } {
                    return Some(q);
                }
                if self.in_cells(ptr.as_ptr() as usize) {
                    // Its later free files it under the smaller class: the rest is lost.
                    self.cell_carved -= CLASS_SIZES[class] - CLASS_SIZES[to];
                }
                return Some(ptr);
            }
        } else if new_size > MAX_SMALL {
            // Large to large: the fallback may do it in place.
            if new_size > MAX_SIZE {
                return None;
            }
            self.large.try_reserve(1).ok()?;
            // SAFETY: `ptr` is a live large block of ours, i.e. of the fallback, of size
            // `old_size` (caller).
            let q = unsafe { self.fallback.resize(ptr, old_size, new_size) }?;
            self.large.remove(&(ptr.as_ptr() as usize));
            self.large.insert(q.as_ptr() as usize, new_size);
            self.large_bytes = self.large_bytes - old_size + new_size;
            return Some(q);
        }
        // Small to bigger class or to large, large to small: a new block.
        // SAFETY: `ptr` is a live block of ours of size `old_size` (caller).
        unsafe { self.move_block(ptr, old_size, new_size) }
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        let addr = ptr.as_ptr() as usize;
        if self.by_addr.contains_key(&(addr & !(PAGE_SIZE - 1)))
            || self.large.contains_key(&addr)
            || self.in_cells(addr)
        {
            Ownership::Owned
        } else {
            Ownership::Foreign
        }
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        if size <= MAX_SMALL {
            // Every small block holds at least its size's class.
            CLASS_SIZES[class_of(size)]
        } else {
            // SAFETY: `ptr` is a live large block of ours, i.e. of the fallback (caller).
            unsafe { self.fallback.usable_size(ptr, size) }
        }
    }

    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        self.release_all();
        Ok(())
    }

    fn stats(&self) -> BackendStats {
        let mut allocated = self.large_bytes + self.cell_carved;
        let mut blocks = self.large.len() + self.cell_carved_blocks;
        for (_, &base) in &self.pages {
            // SAFETY: every registered page is ours, and so is its header.
            let h = unsafe { &*header_of(base) };
            allocated += h.used as usize * h.block as usize;
            blocks += h.used as usize;
        }
        for (class, &size) in CLASS_SIZES.iter().enumerate() {
            // Cached blocks are used in their pages but not live, and so are free cell blocks.
            let mut free = self.hot_len[class] as usize;
            let mut b = self.cell_free[class];
            while !b.is_null() {
                free += 1;
                // SAFETY: a free block of our cells; its first word links the next.
                b = unsafe { b.cast::<*mut u8>().read() };
            }
            allocated -= free * size;
            blocks -= free;
        }
        // `wasted` needs the requested sizes of live blocks, which only the caller counts (the
        // layer above counts live bytes once, so this backend does not count them again).
        let reserved =
            self.pages.len() * PAGE_SIZE + self.cells.len() * CELL_SIZE + self.large_bytes;
        BackendStats {
            allocated: Some(allocated),
            reserved: Some(reserved),
            wasted: None,
            blocks: Some(blocks),
        }
    }

    /// [`Slab::trim`] (cached blocks back to their pages, empty pages to the pool), then
    /// [`pool_trim`]: the pool's resident pages go back to the OS; then the value's registries
    /// shrink to what it holds and the fallback trims (after a 200 MiB spike, RSS went back to
    /// 1.15x what it was before, against 1.28x without these two).
    fn trim(&mut self) {
        Slab::trim(self);
        pool_trim();
        // The registries keep the capacity of the value's largest moment (a 200 MiB spike
        // leaves room for 13 000 pages); and the fallback keeps what its large blocks freed.
        self.by_addr.shrink_to_fit();
        self.large.shrink_to_fit();
        self.fallback.trim();
    }
}

// SAFETY: `owns` answers from this value's own registries (the page map keyed by page base, the
// sorted list of its cells, and the map of large blocks), never by reading the pointed-to memory:
// `Owned` exactly for addresses in a page or cell this value holds or at a large block it
// recorded, `Foreign` otherwise. A page or cell is held by one value at a time, so another
// value's live block is never in one of ours. It never says `Unknown` and never panics.
unsafe impl<F: Backend> ExactOwnership for Slab<F> {}

impl<F: Backend> Drop for Slab<F> {
    /// All pages go back to the pool, cells to their pages and large blocks to the fallback: a
    /// closed state leaves nothing behind but the pool's bounded retention.
    fn drop(&mut self) {
        self.release_all();
        if !self.paged.is_null() {
            // SAFETY: `paged` was allocated in `leave_compact` with this layout, and is freed
            // once; its contents need no drop (raw pointers).
            unsafe { std::alloc::dealloc(self.paged.cast(), std::alloc::Layout::new::<Paged>()) };
        }
    }
}

impl<F: Backend> std::fmt::Debug for Slab<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("compact", &self.is_compact())
            .field("cells", &self.cells.len())
            .field("pages", &self.pages.len())
            .field("large", &self.large.len())
            .field("cached", &self.cached_blocks())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_stacks_tile_one_array_and_the_value_stays_small() {
        assert_eq!(HOT_BASE[0], 0);
        for c in 0..CLASS_COUNT {
            assert_eq!(HOT_BASE[c + 1] - HOT_BASE[c], HOT_CAP[c]);
            assert!(HOT_CAP[c] > 0);
        }
        assert_eq!(
            HOT_SLOTS,
            HOT_CAP.iter().map(|&c| c as usize).sum::<usize>()
        );
        // The module docs name the worst case: 1184 pages of 16 KiB, 18.5 MiB.
        assert_eq!((HOT_SLOTS, HOT_SLOTS * PAGE_SIZE), (1184, 18_944 * 1024));
        // The module docs promise "about 1 KiB" for the value, and about 10 KiB more once paged.
        let size = size_of::<Slab>();
        assert!((900..1200).contains(&size), "{size}");
        assert!((9 * 1024..11 * 1024).contains(&size_of::<Paged>()));
    }

    #[test]
    fn class_table_rounds_up_to_the_smallest_class() {
        for size in 1..=MAX_SMALL {
            let c = class_of(size);
            assert!(CLASS_SIZES[c] >= size, "{size} -> {}", CLASS_SIZES[c]);
            assert!(
                c == 0 || CLASS_SIZES[c - 1] < size,
                "{size} not in the smallest class"
            );
        }
        assert!(CLASS_SIZES.iter().all(|s| s % ALIGN == 0));
        assert!(CLASS_SIZES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn headers_map_back_to_their_pages() {
        for base in [0x4000_0000usize, 0x4000_4000, 0x400f_c000] {
            assert_eq!(base_of_header(header_of(base)), base);
            assert_eq!(base_of_header(header_of(base + PAGE_SIZE - 16)), base);
        }
        assert_eq!(cell_mask(0x4000_0000), 0b1111_1100);
        assert_eq!(cell_mask(0x4000_4000), 0b1111_1111);
    }
}
