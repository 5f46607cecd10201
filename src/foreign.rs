//! [`ForeignAlloc`]: a `lua_Alloc` function pair that lmem did not make (the one a stock
//! interpreter's state already uses, say) as a backend, so that an [`Allocator`](crate::Allocator)
//! can take over a running state: the blocks made before go back to their own allocator through
//! it, while new blocks come from a backend swapped to.

use crate::lua_alloc::LuaAlloc;
use lmem_backend::{Backend, MAX_SIZE, Tag};
use std::ffi::c_void;
use std::ptr::NonNull;

/// Another allocator's `lua_Alloc` function and `ud`, called exactly as Lua calls it.
///
/// It cannot tell its own blocks (a plain `malloc` cannot), so in a swap chain it can only be the
/// first member, which is where taking over a running state puts it.
pub struct ForeignAlloc {
    function: LuaAlloc,
    ud: *mut c_void,
}

impl ForeignAlloc {
    /// The pair, as `lua_getallocf` returns it.
    ///
    /// # Safety
    ///
    /// `function` and `ud` form a valid allocation function pair that keeps the `lua_Alloc`
    /// contract (null on failure, never unwinding, a shrink may fail only as Lua 5.4 allows) for
    /// as long as this value lives, and its blocks are 16-aligned (every malloc on 64-bit
    /// targets gives that for blocks of 16 bytes or more, and the stock `l_alloc` is `realloc`).
    pub unsafe fn new(function: LuaAlloc, ud: *mut c_void) -> Self {
        ForeignAlloc { function, ud }
    }

    /// The pair.
    pub fn pair(&self) -> (LuaAlloc, *mut c_void) {
        (self.function, self.ud)
    }

    #[inline]
    fn call(&mut self, ptr: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        // SAFETY: the pair is valid (`new`'s contract), and every caller passes null with a
        // type tag, or a live block of the pair with its size.
        unsafe { (self.function)(self.ud, ptr.cast(), osize, nsize) }.cast()
    }
}

impl std::fmt::Debug for ForeignAlloc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignAlloc")
            .field("ud", &self.ud)
            .finish_non_exhaustive()
    }
}

// SAFETY: every call goes to a function that keeps the `lua_Alloc` contract (`new`'s contract),
// which is this trait's: a fresh block or null, the prefix kept by a resize and the old block
// left live on null, frees that never fail, no unwinding; 16-alignment is `new`'s contract;
// requests above MAX_SIZE are refused here; a shrink that fails keeps the old block (large
// enough). The blocks live in the other allocator, never in `self`.
unsafe impl Backend for ForeignAlloc {
    fn name(&self) -> &str {
        "foreign"
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        if size > MAX_SIZE {
            return None;
        }
        NonNull::new(self.call(std::ptr::null_mut(), tag.to_lua(), size))
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        self.call(ptr.as_ptr(), size, 0);
    }

    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        if new_size > MAX_SIZE {
            return None;
        }
        match NonNull::new(self.call(ptr.as_ptr(), old_size, new_size)) {
            Some(q) => Some(q),
            // A shrink never fails: the old block is large enough.
            None => (new_size <= old_size).then_some(ptr),
        }
    }
}
