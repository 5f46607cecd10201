//! The `lua_Alloc` adapter: a C allocation function and its `ud` for any heap, exactly the
//! osize/nsize contract (DESIGN.md §2), never unwinding into C and never aborting.

use crate::heap::Heap;
use crate::stats::{Accounting, Detailed};
use lmem_backend::Backend;
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Lua's `lua_Alloc`: `void *(*)(void *ud, void *ptr, size_t osize, size_t nsize)`.
pub type LuaAlloc = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize) -> *mut c_void;

/// A heap behind a `lua_Alloc` function pointer, for `lua_newstate` and `lua_setallocf`.
///
/// The value is boxed so that its address — the `ud` Lua keeps — never moves. It must outlive
/// every Lua state that uses it (close the state first, then drop the allocator).
pub struct LuaAllocator<B: Backend, A: Accounting = Detailed> {
    heap: UnsafeCell<Heap<B, A>>,
}

impl<B: Backend, A: Accounting> LuaAllocator<B, A> {
    /// Puts `heap` behind the allocation function.
    pub fn new(heap: Heap<B, A>) -> Box<Self> {
        Box::new(LuaAllocator {
            heap: UnsafeCell::new(heap),
        })
    }

    /// The allocation function to give Lua together with [`LuaAllocator::ud`].
    pub fn function(&self) -> LuaAlloc {
        lua_alloc::<B, A>
    }

    /// The `ud` pointer to give Lua together with [`LuaAllocator::function`].
    pub fn ud(&self) -> *mut c_void {
        self.heap.get().cast()
    }

    /// Both at once, in `lua_newstate`'s order.
    pub fn raw(&self) -> (LuaAlloc, *mut c_void) {
        (self.function(), self.ud())
    }

    /// The heap, to read its statistics.
    ///
    /// # Safety
    ///
    /// No call of the allocation function is running (Lua is not inside an allocation) and none
    /// starts while the reference lives. On one thread this holds anywhere outside the
    /// allocation function itself, e.g. in a Lua C function or after `lua_close`.
    pub unsafe fn heap(&self) -> &Heap<B, A> {
        // SAFETY: no `&mut` to the heap exists meanwhile (caller).
        unsafe { &*self.heap.get() }
    }

    /// The heap, to change its limit or swap its backend.
    ///
    /// # Safety
    ///
    /// As [`LuaAllocator::heap`], and no other reference to the heap lives meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn heap_mut(&self) -> &mut Heap<B, A> {
        // SAFETY: exclusive access for the reference's lifetime (caller).
        unsafe { &mut *self.heap.get() }
    }

    /// Gives the heap back, once no state uses the allocator any more.
    #[allow(clippy::boxed_local)] // the allocator only ever exists boxed (its address is `ud`)
    pub fn into_heap(self: Box<Self>) -> Heap<B, A> {
        self.heap.into_inner()
    }
}

/// The allocation function for heaps over `B` counting with `A`.
///
/// # Safety
///
/// `ud` is the `ud` of a live [`LuaAllocator<B, A>`], not used by anything else during the call;
/// `ptr` is null or a live block of that heap whose size is `osize`.
pub unsafe extern "C" fn lua_alloc<B: Backend, A: Accounting>(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // A panic must not unwind into C: it becomes a failed allocation (NULL). A panic cannot
    // happen inside a free, which has no failure path, so no block is lost either way.
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ud` points to the heap of a live `LuaAllocator<B, A>`, used by nothing else
        // during this call (caller).
        let heap = unsafe { &mut *ud.cast::<Heap<B, A>>() };
        // SAFETY: `ptr` is null or a live block of `heap` of size `osize` (caller).
        unsafe { heap.lua_alloc(ptr.cast(), osize, nsize) }.cast::<c_void>()
    }))
    .unwrap_or(std::ptr::null_mut())
}
