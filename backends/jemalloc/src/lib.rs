#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use lmem_backend::{ALIGN, Backend, BackendStats, MAX_SIZE, Tag};
#[cfg(feature = "stats")]
use std::ffi::c_void;
use std::ptr::NonNull;
use tikv_jemalloc_sys as je;

/// jemalloc (prefixed, from `tikv-jemalloc-sys`) as an `lmem` backend.
///
/// Every value shares jemalloc's process-wide arenas; the value itself only remembers whether
/// sized free is still exact for its blocks (see the crate docs on shrinks). It is `Send` and
/// `Sync`: jemalloc's caches are per thread, not per value.
#[derive(Debug)]
pub struct Jemalloc {
    /// Whether every live block's size class is the one its caller-known size maps to, so that
    /// `sdallocx` may be given that size. Cleared for good by the first shrink that had to keep a
    /// larger block.
    sized_free: bool,
}

impl Default for Jemalloc {
    fn default() -> Self {
        Self::new()
    }
}

impl Jemalloc {
    /// A jemalloc backend: frees are sized (`sdallocx`) unless the `unsized-free` feature is on.
    pub const fn new() -> Self {
        Jemalloc {
            sized_free: !cfg!(feature = "unsized-free"),
        }
    }

    /// A jemalloc backend whose frees go through `free`, which finds the block's size class
    /// itself: for a caller that may name a wrong size on a free.
    pub const fn unsized_free() -> Self {
        Jemalloc { sized_free: false }
    }

    /// Whether frees still go through `sdallocx` (sized) rather than `free`: `false` once a shrink
    /// had to keep a larger block because jemalloc was out of memory.
    pub fn uses_sized_free(&self) -> bool {
        self.sized_free
    }
}

/// What we ask jemalloc for a block of `size` bytes: at least [`ALIGN`], because jemalloc's tiny
/// 8-byte class is only 8-aligned while every class from 16 up is 16-aligned. The same value goes
/// back to `sdallocx`, so that free names the class the block was made in.
#[inline]
fn request(size: usize) -> usize {
    size.max(ALIGN)
}

// SAFETY: malloc/rallocx return NULL or a fresh block of at least the requested size that
// overlaps no live block, and every request is at least 16 bytes, which jemalloc serves 16-aligned
// on the targets it supports (its quantum); xallocx never moves a block and reports whether it
// now holds the requested size; requests above MAX_SIZE are refused before reaching jemalloc;
// rallocx keeps the prefix and leaves the old block alone when it fails; a shrink that fails keeps
// the old block, which is large enough; frees (sdallocx while sizes name the right class, free
// otherwise) never fail; nothing here unwinds, and jemalloc returns NULL on out-of-memory unless
// the process opted into `xmalloc`. Blocks live in jemalloc's memory, never in `self`.
unsafe impl Backend for Jemalloc {
    fn name(&self) -> &str {
        "jemalloc"
    }

    /// Plain `malloc` rather than `mallocx`: no flags are needed, and jemalloc's `malloc` fast
    /// path is about twice as fast for Lua-sized blocks.
    #[inline]
    fn allocate(&mut self, size: usize, _tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_SIZE {
            return None;
        }
        // SAFETY: malloc has no preconditions; it returns NULL or a fresh block of
        // `request(size)` bytes.
        let p = NonNull::new(unsafe { je::malloc(request(size)) })?;
        debug_assert_eq!(
            p.as_ptr() as usize % ALIGN,
            0,
            "jemalloc gave a misaligned block"
        );
        Some(p.cast())
    }

    /// Sized free: jemalloc takes the size class from `size` instead of looking the block up,
    /// which is the cheapest free it has. Falls back to `free` once sizes may name the wrong class.
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        if self.sized_free {
            // SAFETY: `ptr` is a live jemalloc block (caller) last allocated or resized with
            // `request(size)` bytes, and while `sized_free` holds, its size class is exactly the
            // one `request(size)` maps to, as sdallocx requires; flags 0 are valid; `ptr` is not
            // used again.
            unsafe { je::sdallocx(ptr.as_ptr().cast(), request(size), 0) }
        } else {
            // SAFETY: `ptr` is a live block from jemalloc's malloc/rallocx (caller), which free
            // accepts; it is not used again.
            unsafe { je::free(ptr.as_ptr().cast()) }
        }
    }

    /// Grows in place with `xallocx` when the block has room (its size class, or free pages
    /// after a large block), then moves with `rallocx`; shrinks with `rallocx`, which returns a
    /// large block's tail or moves a small one to a smaller class, and never fails a shrink.
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
        let new_req = request(new_size);
        if new_size > old_size {
            // SAFETY: `ptr` is a live jemalloc block (caller); `new_req` is in 16..=MAX_SIZE, so
            // neither 0 nor above PTRDIFF_MAX; extra 0 and flags 0 are valid. xallocx never moves
            // the block and leaves it untouched if it cannot resize it.
            let usable = unsafe { je::xallocx(ptr.as_ptr().cast(), new_req, 0, 0) };
            if usable >= new_req {
                // Grown in place, to exactly the class of `new_req` (extra was 0).
                return Some(ptr);
            }
        }
        // SAFETY: `ptr` is a live jemalloc block (caller); `new_req` is in 16..=MAX_SIZE, so
        // neither 0 nor above PTRDIFF_MAX; flags 0 ask for no alignment beyond the class's own.
        // On NULL the old block is untouched and still live.
        match NonNull::new(unsafe { je::rallocx(ptr.as_ptr().cast(), new_req, 0) }) {
            Some(q) => {
                debug_assert_eq!(
                    q.as_ptr() as usize % ALIGN,
                    0,
                    "jemalloc gave a misaligned block"
                );
                Some(q.cast())
            }
            None if new_size <= old_size => Some(self.keep_for_shrink(ptr)),
            None => None,
        }
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: `ptr` is a live block from jemalloc's malloc/rallocx (caller); flags 0 are
        // valid for sallocx.
        let usable = unsafe { je::sallocx(ptr.as_ptr().cast(), 0) };
        usable.max(size)
    }

    fn stats(&self) -> BackendStats {
        process_stats()
    }

    /// Flushes this thread's cache of free blocks back to its arena, then purges every arena:
    /// the unused dirty pages go back to the OS at once instead of after jemalloc's decay time.
    /// The arenas are the process's, so this trims what every user of the prefixed jemalloc
    /// left unused, not this value alone.
    fn trim(&mut self) {
        for name in [c"thread.tcache.flush", c"arena.4096.purge"] {
            // SAFETY: both names are NUL-terminated controls that take no value and return
            // none (NULL pointers, length 0), as jemalloc documents them; 4096 is
            // MALLCTL_ARENAS_ALL, "every arena". A failure (a tcache disabled) changes nothing.
            unsafe {
                je::mallctl(
                    name.as_ptr(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                )
            };
        }
    }
}

impl Jemalloc {
    /// A shrink that jemalloc could not serve keeps the old, larger block — Lua 5.1 assumes a
    /// shrink never fails. The caller will free it with the smaller size, which may name another
    /// size class, so sized free is off from here on.
    #[cold]
    fn keep_for_shrink(&mut self, ptr: NonNull<u8>) -> NonNull<u8> {
        self.sized_free = false;
        ptr
    }
}

/// Reads one `size_t` statistic by name through `mallctl`.
#[cfg(feature = "stats")]
fn read_size_t(name: &std::ffi::CStr) -> Option<usize> {
    let mut value: usize = 0;
    let mut len = std::mem::size_of::<usize>();
    // SAFETY: `name` is a NUL-terminated C string;
    // `value`/`len` are valid places for a `size_t` and its length, which is the type jemalloc
    // documents for these statistics; no new value is written (NULL, 0).
    let rc = unsafe {
        je::mallctl(
            name.as_ptr().cast(),
            (&raw mut value).cast::<c_void>(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0 && len == std::mem::size_of::<usize>()).then_some(value)
}

/// jemalloc's process-wide statistics, refreshed (`epoch`) first: `allocated` is
/// `stats.allocated` (bytes in live blocks, after size-class rounding), `reserved` is
/// `stats.resident` (physically resident pages, metadata included). They cover every user of the
/// prefixed jemalloc in the process, not this value alone.
#[cfg(feature = "stats")]
fn process_stats() -> BackendStats {
    let mut epoch: u64 = 1;
    // SAFETY: "epoch" is NUL-terminated; writing a `uint64_t` (its documented type) with its
    // length refreshes the statistics; no old value is read (NULL).
    unsafe {
        je::mallctl(
            c"epoch".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw mut epoch).cast::<c_void>(),
            std::mem::size_of::<u64>(),
        )
    };
    BackendStats {
        allocated: read_size_t(c"stats.allocated"),
        reserved: read_size_t(c"stats.resident"),
        wasted: None,
        blocks: None,
    }
}

/// Without the `stats` feature jemalloc is built with `--disable-stats` and knows nothing to say.
#[cfg(not(feature = "stats"))]
fn process_stats() -> BackendStats {
    BackendStats::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_blocks_are_16_aligned_and_usable() {
        let mut b = Jemalloc::new();
        for size in 1..=16 {
            let p = b.allocate(size, Tag::String).unwrap();
            assert_eq!(p.as_ptr() as usize % ALIGN, 0);
            // SAFETY: live block of `size` bytes.
            assert!(unsafe { b.usable_size(p, size) } >= ALIGN);
            // SAFETY: live block of `size` bytes.
            unsafe { b.deallocate(p, size) };
        }
        assert_eq!(b.uses_sized_free(), !cfg!(feature = "unsized-free"));
        assert!(!Jemalloc::unsized_free().uses_sized_free());
    }

    #[test]
    fn the_backend_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Jemalloc>();
    }
}
