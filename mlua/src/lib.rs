//! mlua on an lmem backend: the state is made with `lua_newstate` over an [`lmem::Allocator`] (the
//! same path `lmem-lua` runs), then handed to mlua with `mlua::Lua::get_or_init_from_ptr`. mlua
//! does not own such a state: this value closes it, then reads the accounting.

use lmem::{Allocator, Stats, UnknownBackend};
use mlua::ffi;

/// A Lua state on an lmem backend, usable from mlua, closed on drop.
pub struct MluaState {
    alloc: Allocator,
    state: *mut ffi::lua_State,
}

impl MluaState {
    /// Makes the state on backend `name` (standard libraries open), counting the detailed figures
    /// from the start. `Ok(None)` if the backend cannot even allocate the state.
    pub fn new(name: &str) -> Result<Option<Self>, UnknownBackend> {
        let alloc = Allocator::new(name)?;
        // SAFETY: no state uses the allocator yet; the pair is read back below.
        let _ = unsafe { alloc.enter() }.count_details();
        // SAFETY: the function and ud come from `alloc`, which outlives the state (it is closed
        // in `drop` before `alloc` goes); the function never unwinds.
        let state = unsafe {
            #[cfg(not(feature = "lua55"))]
            let l = ffi::lua_newstate(alloc.function(), alloc.ud());
            #[cfg(feature = "lua55")]
            let l = ffi::lua_newstate(
                alloc.function(),
                alloc.ud(),
                ffi::luaL_makeseed(std::ptr::null_mut()),
            );
            l
        };
        if state.is_null() {
            return Ok(None);
        }
        // SAFETY: a fresh valid state; openlibs runs unprotected, as in `lua.c` (a memory
        // error here would hit the panic function, not unwind into Rust).
        unsafe { ffi::luaL_openlibs(state) };
        Ok(Some(MluaState { alloc, state }))
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

    /// A copy of the accounting (live bytes, per type, …).
    pub fn stats(&self) -> Stats {
        // SAFETY: called from Rust while Lua is not inside its allocation function.
        unsafe { self.alloc.enter() }.stats()
    }

    /// Sets (or lifts) the byte limit: allocations past it fail and Lua raises `not enough
    /// memory` (mlua: `Error::MemoryError`).
    pub fn set_limit(&self, limit: Option<usize>) {
        // SAFETY: called from Rust while Lua is not inside its allocation function.
        unsafe { self.alloc.enter() }.set_limit(limit);
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

impl Drop for MluaState {
    fn drop(&mut self) {
        self.close_state();
    }
}
