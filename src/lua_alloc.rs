//! The `lua_Alloc` function: a C allocation function and its `ud` for a [`Layer`], exactly the
//! osize/nsize contract, never unwinding into C and never aborting; and [`LuaAllocator`], which
//! owns the layer that `ud` points to.

use crate::layer::Layer;
use crate::stats::{Accounting, Basic};
use lmem_backend::{Backend, Fast};
use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

/// Lua's `lua_Alloc`: `void *(*)(void *ud, void *ptr, size_t osize, size_t nsize)`.
pub type LuaAlloc = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize) -> *mut c_void;

/// The allocation function for layers over `B` counting with `A`: one monomorphic function per
/// backend and accounting, into which the layer and the backend's fast path are inlined.
///
/// The common calls (a free, or an allocation the backend's fast path serves) run in this
/// function without a call of their own; everything else (resizes, the limit in reach, the
/// backend's slow path, failures) goes to one out-of-line function, reached by a tail call. So
/// the fast path needs no stack frame.
///
/// # Safety
///
/// `ud` points to a live `Layer<B, A>` that nothing else uses during the call (the `ud` of a
/// [`LuaAllocator<B, A>`]); `ptr` is null or a live block of that layer whose size is `osize`.
pub unsafe extern "C" fn lua_alloc<B: Backend, A: Accounting>(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // A panic must not unwind into C: it becomes a failed allocation (NULL). No backend panics
    // on its fast path (the catch costs nothing there); a checking wrapper may, on a broken
    // contract. A free has no failure path, so no block is lost either way.
    let fast = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ud` points to a live layer, used by nothing else during this call (caller).
        let layer = unsafe { &mut *ud.cast::<Layer<B, A>>() };
        // SAFETY: `ptr` is null or a live block of `layer` of size `osize` (caller).
        unsafe { layer.realloc_fast(ptr.cast(), osize, nsize) }
    }));
    match fast {
        Ok(Fast::Done(p)) => p.cast(),
        // SAFETY: the caller's contract is the slow path's; the fast path changed nothing.
        Ok(Fast::Slow) => unsafe { lua_alloc_slow::<B, A>(ud, ptr, osize, nsize) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Everything [`lua_alloc`] does not do inline: the whole of [`Layer::realloc`].
///
/// # Safety
///
/// As [`lua_alloc`].
#[inline(never)]
unsafe extern "C" fn lua_alloc_slow<B: Backend, A: Accounting>(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ud` points to a live layer, used by nothing else during this call (caller).
        let layer = unsafe { &mut *ud.cast::<Layer<B, A>>() };
        // SAFETY: `ptr` is null or a live block of `layer` of size `osize` (caller).
        unsafe { layer.realloc(ptr.cast(), osize, nsize) }.cast::<c_void>()
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// A [`Layer`] behind a `lua_Alloc` function pointer, for `lua_newstate` and `lua_setallocf`.
///
/// The layer lives on the heap, owned by this value through the pointer Lua gets as `ud` (made
/// by `Box::into_raw`, given back to `Box` only when this value drops), so it never moves and no
/// reference to it exists while Lua holds the pointer. Rust code reaches it only through a
/// [`Guard`], whose one promise is that no allocation is running. The allocator must outlive
/// every Lua state that uses it: close the state first, then drop the allocator.
pub struct LuaAllocator<B: Backend, A: Accounting = Basic> {
    /// The layer, owned: `Box::into_raw` of a `Box<Layer<B, A>>`.
    layer: NonNull<Layer<B, A>>,
    /// Whether a guard lives (at most one does).
    entered: Cell<bool>,
    /// Owns a `Layer<B, A>`; not `Sync`, and `Send` only as the layer is (see below).
    _owns: PhantomData<Box<Layer<B, A>>>,
}

// SAFETY: the value owns its layer (like a `Box`); moving it to another thread moves that
// ownership, which is sound when the layer itself may move (`Send`). Lua states that use it
// must move with it, which the host of a state does anyway.
unsafe impl<B: Backend + Send, A: Accounting + Send> Send for LuaAllocator<B, A> {}

impl<B: Backend, A: Accounting> LuaAllocator<B, A> {
    /// Puts `layer` behind the allocation function.
    pub fn new(layer: Layer<B, A>) -> Self {
        LuaAllocator {
            layer: NonNull::from(Box::leak(Box::new(layer))),
            entered: Cell::new(false),
            _owns: PhantomData,
        }
    }

    /// The allocation function to give Lua together with [`LuaAllocator::ud`].
    pub fn function(&self) -> LuaAlloc {
        lua_alloc::<B, A>
    }

    /// The `ud` pointer to give Lua together with [`LuaAllocator::function`].
    pub fn ud(&self) -> *mut c_void {
        self.layer.as_ptr().cast()
    }

    /// Both at once, in `lua_newstate`'s order.
    pub fn raw(&self) -> (LuaAlloc, *mut c_void) {
        (self.function(), self.ud())
    }

    /// The layer, to read its statistics or change its limit, between allocation calls.
    ///
    /// # Panics
    ///
    /// If a guard of this allocator is alive already.
    ///
    /// # Safety
    ///
    /// No call of the allocation function is running, and none starts while the guard lives.
    /// On one thread this holds anywhere outside the allocation function itself: in a Lua C
    /// function, before `lua_newstate`, after `lua_close`, or while no Lua code runs.
    pub unsafe fn enter(&self) -> Guard<'_, B, A> {
        assert!(
            !self.entered.replace(true),
            "lmem: a guard of this allocator is alive already"
        );
        Guard {
            // SAFETY: the layer is live (owned by `self`); no allocation runs while the guard
            // lives (caller) and no other guard exists (checked above), so this is the only
            // reference.
            layer: unsafe { &mut *self.layer.as_ptr() },
            entered: &self.entered,
        }
    }

    /// The layer, for the crate's own forms, which hold it by `&mut self`.
    ///
    /// # Safety
    ///
    /// As [`LuaAllocator::enter`]: no allocation runs while the reference lives.
    pub(crate) unsafe fn layer_mut(&mut self) -> &mut Layer<B, A> {
        // SAFETY: the layer is live (owned by `self`); `&mut self` excludes guards, and no
        // allocation runs meanwhile (caller), so this is the only reference.
        unsafe { &mut *self.layer.as_ptr() }
    }

    /// The layer, given back once no state uses the allocator any more.
    pub fn into_layer(self) -> Layer<B, A> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `layer` came from `Box::leak` and is given back once (`this` is not dropped).
        *unsafe { Box::from_raw(this.layer.as_ptr()) }
    }
}

impl<B: Backend, A: Accounting> Drop for LuaAllocator<B, A> {
    fn drop(&mut self) {
        // SAFETY: `layer` came from `Box::leak` and is given back once; the state that used it is
        // closed (the type's contract), so nothing calls the function with this `ud` again.
        drop(unsafe { Box::from_raw(self.layer.as_ptr()) });
    }
}

impl<B: Backend, A: Accounting> std::fmt::Debug for LuaAllocator<B, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaAllocator")
            .field("ud", &self.layer)
            .finish_non_exhaustive()
    }
}

/// Access to a [`LuaAllocator`]'s layer while no allocation is running. Dereferences to the
/// [`Layer`].
pub struct Guard<'a, B: Backend, A: Accounting> {
    layer: &'a mut Layer<B, A>,
    entered: &'a Cell<bool>,
}

impl<B: Backend, A: Accounting> Deref for Guard<'_, B, A> {
    type Target = Layer<B, A>;
    fn deref(&self) -> &Layer<B, A> {
        self.layer
    }
}

impl<B: Backend, A: Accounting> DerefMut for Guard<'_, B, A> {
    fn deref_mut(&mut self) -> &mut Layer<B, A> {
        self.layer
    }
}

impl<B: Backend, A: Accounting> Drop for Guard<'_, B, A> {
    fn drop(&mut self) {
        self.entered.set(false);
    }
}
