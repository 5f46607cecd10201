//! mlua on an lmem backend: the state is made with `lua_newstate` over a [`LuaAllocator`], then
//! handed to mlua with `mlua::Lua::get_or_init_from_ptr`. mlua does not own such a state: the
//! host closes it, then reads the heap's accounting.

use lmem::{Backend, Heap, LuaAllocator, Stats};
use mlua::ffi;

/// A Lua state on `backend`, usable from mlua, closed on drop.
pub struct MluaState<B: Backend> {
    alloc: Box<LuaAllocator<B>>,
    state: *mut ffi::lua_State,
}

impl<B: Backend> MluaState<B> {
    /// Makes the state (standard libraries open). `None` if the backend cannot even allocate it.
    pub fn new(backend: B) -> Option<Self> {
        let alloc = LuaAllocator::new(Heap::new(backend));
        // SAFETY: the function and ud come from `alloc`, which outlives the state (it is closed
        // in `drop` before `alloc` goes); the function never unwinds.
        let state = unsafe {
            #[cfg(not(feature = "lua55"))]
            let l = ffi::lua_newstate(alloc.function(), alloc.ud());
            #[cfg(feature = "lua55")]
            let l = ffi::lua_newstate(alloc.function(), alloc.ud(), 0x5eed);
            l
        };
        if state.is_null() {
            return None;
        }
        // SAFETY: a fresh valid state; openlibs runs unprotected, as in `lua.c` (a memory
        // error here would hit the panic function, not unwind into Rust).
        unsafe { ffi::luaL_openlibs(state) };
        Some(MluaState { alloc, state })
    }

    /// The mlua handle on the state.
    pub fn lua(&self) -> &mlua::Lua {
        // SAFETY: `state` is a valid main state that lives as long as `self`; mlua attaches its
        // extra data without taking ownership.
        unsafe { mlua::Lua::get_or_init_from_ptr(self.state) }
    }

    /// The raw state.
    pub fn as_ptr(&self) -> *mut ffi::lua_State {
        self.state
    }

    /// A copy of the heap's accounting (live bytes, per type, …).
    pub fn stats(&self) -> Stats {
        // SAFETY: called from Rust while Lua is not inside its allocation function.
        unsafe { self.alloc.heap() }.stats().clone()
    }

    /// Sets (or lifts) the heap's byte limit: allocations past it fail and Lua raises `not
    /// enough memory` (mlua: `Error::MemoryError`).
    pub fn set_limit(&self, limit: Option<usize>) {
        // SAFETY: called from Rust while Lua is not inside its allocation function, and no other
        // reference to the heap is live.
        unsafe { self.alloc.heap_mut() }.set_limit(limit);
    }

    /// Closes the state and returns the accounting after `lua_close` (`live` is 0 unless
    /// something leaked).
    pub fn close(mut self) -> Stats {
        self.close_state();
        self.stats()
    }

    fn close_state(&mut self) {
        if !self.state.is_null() {
            // SAFETY: the state is valid and not used after this; mlua's extra data is released
            // by the state's own finalisers.
            unsafe { ffi::lua_close(self.state) };
            self.state = std::ptr::null_mut();
        }
    }
}

impl<B: Backend> Drop for MluaState<B> {
    fn drop(&mut self) {
        self.close_state();
    }
}
