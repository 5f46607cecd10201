//! The `lmem` Lua module (`require "lmem"`): the state's memory seen from Lua.
//!
//! - `lmem.backend()` → name of the backend new blocks come from;
//! - `lmem.stats()` → a table: `live`, `peak`, `allocations`, `frees`, `resizes`, `failures`,
//!   `emergencies`, `bytes_allocated`, `limit` (or nil), `backend`, `swaps`, `routing` (whether
//!   frees are routed through a swap chain), `reserved` (bytes the backend holds, if it says),
//!   `counting` and `uncounted` (see below), `by_tag`
//!   (`by_tag.string = {bytes=, count=}`, … : new blocks per Lua type) and `histogram` (counts of
//!   new blocks per power-of-two size bucket, `histogram[1]` = 1–16 B, …);
//! - `lmem.swap(name)` → `true`, or `nil, message` when the swap is refused (an unknown name is an
//!   error);
//! - `lmem.limit([bytes])` → sets the byte limit (`nil`/`false` lifts it; a string takes K/M/G
//!   suffixes), returns the previous limit (or nil); with no argument only returns it;
//! - `lmem.trim()` → gives the backend's unused memory back to its pool and the OS; returns the
//!   bytes the backend reserves afterwards (or nil if it does not say).
//!
//! Loading the module asks for the detailed figures: the state moves from the lean allocation
//! function to the counting one, and `stats()` counts from then on (`uncounted` is what was live
//! before; `counting` says `"since require"`, or `"from start"` under `--stats`).
//!
//! A swap leaves the state on a routing function while blocks of the old backend remain; a
//! `__gc` sentinel hands Lua the lean function again once they are gone.
//!
//! The functions themselves are `lmem-module-core`'s, the same ones the stock interpreters'
//! module (`lmem-module`) runs; this module gives them the host's [`Memory`] and makes
//! `require "lmem"` find them (`package.preload`).

use crate::ffi;
use crate::memory::{Guard, Memory};
use lmem_module_core as core;
use std::ffi::c_int;

impl core::Memory for Memory {
    type Guard<'a> = Guard<'a>;

    unsafe fn enter(&self) -> Guard<'_> {
        // SAFETY: the caller's promise is the one `Memory::enter` asks for.
        unsafe { Memory::enter(self) }
    }
}

impl core::Guard for Guard<'_> {
    fn backend_name(&self) -> String {
        Guard::backend_name(self)
    }
    fn stats(&self) -> lmem::Stats {
        Guard::stats(self)
    }
    fn backend_stats(&self) -> lmem::BackendStats {
        Guard::backend_stats(self)
    }
    fn swaps(&mut self) -> u64 {
        Guard::swaps(self)
    }
    fn limit(&self) -> Option<usize> {
        Guard::limit(self)
    }
    fn set_limit(&mut self, limit: Option<usize>) -> Option<usize> {
        Guard::set_limit(self, limit)
    }
    fn trim(&mut self) {
        Guard::trim(self)
    }
    fn is_routing(&mut self) -> bool {
        Guard::is_routing(self)
    }
    unsafe fn count_details(&mut self, l: *mut core::ffi::lua_State) {
        // SAFETY: as ours; both declarations name the same C state.
        unsafe { Guard::count_details(self, l.cast()) }
    }
    unsafe fn swap_to(&mut self, l: *mut core::ffi::lua_State, name: &str) -> Result<(), String> {
        // SAFETY: as ours.
        unsafe { Guard::swap_to(self, l.cast(), name) }
    }
    unsafe fn settle(&mut self, l: *mut core::ffi::lua_State) -> bool {
        // SAFETY: as ours.
        unsafe { Guard::settle(self, l.cast()) }
    }
}

/// Registry key of the light userdata pointing at the host's [`Memory`].
pub const REGISTRY_KEY: &std::ffi::CStr = c"lmem.host.memory";

/// The `luaopen_lmem` function: builds the module table on the [`Memory`] the registry field
/// [`REGISTRY_KEY`] points at (set by [`preload`]).
///
/// # Safety
///
/// Called by Lua (through `require`).
pub unsafe extern "C-unwind" fn luaopen_lmem(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the registry field was set by `preload` to a `Memory` that outlives the state;
    // Lua is inside this C function.
    unsafe {
        let m = core::registry_pointer(l.cast(), REGISTRY_KEY) as *const Memory;
        core::open(l.cast(), m)
    }
}

/// Makes `require "lmem"` work in `l`: stores `memory` in the registry and puts
/// [`luaopen_lmem`] in `package.preload`; leaves a sentinel if a swap schedule keeps the state
/// routing.
///
/// # Safety
///
/// `l` is a valid state with the `package` library open and 3 free stack slots, running in a
/// protected call (this may raise memory errors); `memory` outlives the state.
pub unsafe fn preload(l: *mut ffi::lua_State, memory: &Memory) {
    let m = memory as *const Memory;
    // SAFETY: as the caller promises; the pointer is only read back as `&Memory`.
    unsafe {
        core::set_registry_pointer(l.cast(), REGISTRY_KEY, m as *mut _);
        if memory.enter().is_routing() {
            core::watch(l.cast(), m);
        }
        ffi::lua_getglobal(l, c"package".as_ptr());
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            ffi::lua_getfield(l, -1, c"preload".as_ptr());
            if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                ffi::lua_pushcfunction(l, luaopen_lmem);
                ffi::lua_setfield(l, -2, c"lmem".as_ptr());
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
    }
}
