#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use lmem_backend::{ALIGN, Backend, MAX_SIZE, Tag};
use std::ffi::c_void;
use std::ptr::NonNull;

/// libc `malloc`/`realloc`/`free`. Holds no state: every value shares the process heap.
#[derive(Clone, Copy, Debug, Default)]
pub struct System;

impl System {
    /// The system backend.
    pub const fn new() -> Self {
        System
    }
}

/// What we ask libc for: at least [`ALIGN`] bytes, so that the answer is 16-aligned.
#[inline]
fn request(size: usize) -> usize {
    size.max(ALIGN)
}

/// Moves `p` (a malloc block of `keep` meaningful bytes, misaligned) to a 16-aligned block of
/// `size` bytes. Frees `p` on success; on failure `p` stays live (and is returned as `Err`).
#[cold]
fn realign(p: NonNull<c_void>, keep: usize, size: usize) -> Result<NonNull<u8>, NonNull<u8>> {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `out` is a valid place to write a pointer; ALIGN is a power of two and a multiple
    // of `size_of::<*mut c_void>()`, as posix_memalign requires.
    let rc = unsafe { libc::posix_memalign(&mut out, ALIGN, request(size)) };
    let Some(q) = NonNull::new(out).filter(|_| rc == 0) else {
        return Err(p.cast());
    };
    // SAFETY: `p` has at least `keep` readable bytes, `q` at least `size >= keep` writable
    // bytes, and they are distinct live blocks.
    unsafe { std::ptr::copy_nonoverlapping(p.as_ptr().cast::<u8>(), q.as_ptr().cast(), keep) };
    // SAFETY: `p` came from malloc/realloc and is not used again.
    unsafe { libc::free(p.as_ptr()) };
    Ok(q.cast())
}

// SAFETY: malloc/realloc return NULL or fresh blocks of at least the requested size that overlap
// no live block; misaligned answers are moved to posix_memalign blocks (16-aligned); requests
// above MAX_SIZE are refused before reaching libc; realloc keeps the prefix and leaves the old
// block alone when it fails; free never fails; nothing here unwinds or aborts.
unsafe impl Backend for System {
    fn name(&self) -> &str {
        "system"
    }

    #[inline]
    fn allocate(&mut self, size: usize, _tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_SIZE {
            return None;
        }
        // SAFETY: malloc has no preconditions; it returns NULL or a fresh block.
        let p = NonNull::new(unsafe { libc::malloc(request(size)) })?;
        if !(p.as_ptr() as usize).is_multiple_of(ALIGN) {
            return realign(p, 0, size).ok();
        }
        Some(p.cast())
    }

    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, _size: usize) {
        // SAFETY: `ptr` is a live block of ours (caller), so it came from malloc, realloc or
        // posix_memalign, all of which free accepts; it is not used again.
        unsafe { libc::free(ptr.as_ptr().cast()) }
    }

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
        // SAFETY: `ptr` is a live block from malloc/realloc/posix_memalign (caller); realloc
        // accepts any of them and leaves it live on failure.
        let Some(q) =
            NonNull::new(unsafe { libc::realloc(ptr.as_ptr().cast(), request(new_size)) })
        else {
            // A shrink never fails: the old block is large enough.
            return (new_size <= old_size).then_some(ptr);
        };
        if !(q.as_ptr() as usize).is_multiple_of(ALIGN) {
            // realloc moved the block somewhere misaligned and `ptr` is gone. Move it once more;
            // if even that fails, `q` is the only copy of the caller's data, so hand it back
            // misaligned rather than answer `None`, which would tell the caller that the freed
            // `ptr` is still theirs. No malloc we know of gets here: all give 16-aligned blocks
            // for requests of 16 bytes or more.
            return Some(realign(q, old_size.min(new_size), new_size).unwrap_or_else(|q| q));
        }
        Some(q.cast())
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: `ptr` is a live block from malloc/realloc/posix_memalign (caller).
        let usable = unsafe { libc::malloc_usable_size(ptr.as_ptr().cast()) };
        usable.max(size)
    }

    /// `malloc_trim(0)` on glibc: free memory at the top of the heap and whole free pages inside
    /// it go back to the OS. The heap is the process's, so this trims what every user of malloc
    /// left unused. Elsewhere (another libc, or a malloc preloaded in its place that has no
    /// such call) it does nothing.
    fn trim(&mut self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim has no preconditions; it only releases free memory.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_blocks_are_16_aligned_and_usable() {
        let mut s = System::new();
        let p = s.allocate(1, Tag::String).unwrap();
        assert_eq!(p.as_ptr() as usize % ALIGN, 0);
        // SAFETY: live block of size 1.
        assert!(unsafe { s.usable_size(p, 1) } >= ALIGN);
        // SAFETY: live block of size 1.
        unsafe { s.deallocate(p, 1) };
    }
}
