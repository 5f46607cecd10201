//! The one place that knows which Lua this build links: the `compile_error!`s that keep the
//! version features exclusive, the version's constants, and making a state (with a fresh hash
//! seed on 5.5, `lua.c`'s panic function and its warning functions), and the collector's modes.
//! (The `lua.c` port in [`crate::interp`] still follows the `lua.c` of each version where they
//! differ: 5.1 has no warnings, no `-E`/`-W`, and another message handler.)

use crate::ffi;
use crate::interp::{stdio_err, to_bytes};
use std::ffi::{CStr, c_char, c_int, c_void};

#[cfg(all(feature = "lua51", feature = "lua54"))]
compile_error!(
    "features `lua51` and `lua54` are mutually exclusive: pick one Lua version \
     (for 5.1: --no-default-features --features lua51,all-backends)"
);
#[cfg(all(feature = "lua55", feature = "lua54"))]
compile_error!(
    "features `lua55` and `lua54` are mutually exclusive: pick one Lua version \
     (for 5.5: --no-default-features --features lua55,all-backends)"
);
#[cfg(all(feature = "lua51", feature = "lua55"))]
compile_error!("features `lua51` and `lua55` are mutually exclusive: pick one Lua version");
#[cfg(not(any(feature = "lua51", feature = "lua54", feature = "lua55")))]
compile_error!("no Lua version: enable one of the features `lua54` (default), `lua51`, `lua55`");

type L = *mut ffi::lua_State;

/// `LUA_VERSION_NUM` of the Lua this build links (for trace headers and reports).
pub const LUA_VERSION_NUM: u32 = if cfg!(feature = "lua51") {
    501
} else if cfg!(feature = "lua55") {
    505
} else {
    504
};

/// `LUA_COPYRIGHT` of the Lua built.
#[cfg(feature = "lua54")]
pub const LUA_COPYRIGHT: &str = "Lua 5.4.9  Copyright (C) 1994-2026 Lua.org, PUC-Rio";
/// `LUA_COPYRIGHT` of the Lua built.
#[cfg(feature = "lua55")]
pub const LUA_COPYRIGHT: &str = "Lua 5.5.1  Copyright (C) 1994-2026 Lua.org, PUC-Rio";
/// `LUA_COPYRIGHT` of the Lua built.
#[cfg(feature = "lua51")]
pub const LUA_COPYRIGHT: &str = "Lua 5.1.5  Copyright (C) 1994-2012 Lua.org, PUC-Rio";

#[cfg(feature = "lua54")]
pub(crate) const INIT_VERSION_VAR: &CStr = c"LUA_INIT_5_4";
#[cfg(feature = "lua55")]
pub(crate) const INIT_VERSION_VAR: &CStr = c"LUA_INIT_5_5";

/// A state from `luaL_newstate`: Lua's own `l_alloc`, panic and warning functions (the stock
/// baseline).
///
/// # Safety
///
/// None beyond the C API's: the state is closed with `lua_close`.
pub unsafe fn new_stock_state() -> L {
    // SAFETY: no precondition.
    unsafe { ffi::luaL_newstate() }
}

/// Makes a state on the allocation function `f` with `ud` (Lua 5.5 also takes a hash seed, a
/// fresh one from `luaL_makeseed`), with `lua.c`'s panic function and warnings off.
///
/// # Safety
///
/// `f` and `ud` form a valid allocation function pair that outlives the state; `f` never unwinds
/// and returns NULL on failure.
pub unsafe fn new_state(f: lmem::LuaAlloc, ud: *mut c_void) -> L {
    // SAFETY: the caller's promise is what lua_newstate needs.
    unsafe {
        #[cfg(not(feature = "lua55"))]
        let l = ffi::lua_newstate(f, ud);
        #[cfg(feature = "lua55")]
        let l = ffi::lua_newstate(f, ud, ffi::luaL_makeseed(std::ptr::null_mut()));
        if !l.is_null() {
            ffi::lua_atpanic(l, atpanic);
            #[cfg(not(feature = "lua51"))]
            ffi::lua_setwarnf(l, Some(warn_off), l.cast());
        }
        l
    }
}

/// Stops the collector (`lua.c` does while it sets up).
///
/// # Safety
///
/// `l` is a valid state.
pub unsafe fn gc_stop(l: L) {
    // SAFETY: valid state (caller).
    unsafe {
        #[cfg(not(feature = "lua51"))]
        ffi::lua_gc(l, ffi::LUA_GCSTOP);
        #[cfg(feature = "lua51")]
        ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
    }
}

/// Restarts the collector in the mode `lua.c` uses: generational on 5.4 and 5.5, incremental
/// on 5.1.
///
/// # Safety
///
/// `l` is a valid state.
pub unsafe fn gc_restart(l: L) {
    // SAFETY: valid state (caller).
    unsafe {
        #[cfg(feature = "lua54")]
        {
            ffi::lua_gc(l, ffi::LUA_GCRESTART);
            ffi::lua_gc(l, ffi::LUA_GCGEN, 0, 0);
        }
        #[cfg(feature = "lua55")]
        {
            ffi::lua_gc(l, ffi::LUA_GCRESTART);
            ffi::lua_gc(l, ffi::LUA_GCGEN);
        }
        #[cfg(feature = "lua51")]
        ffi::lua_gc(l, ffi::LUA_GCRESTART, 0);
    }
}

// The warning functions `luaL_newstate` installs (lua_newstate installs none): off by default,
// switched by the control messages `@on`/`@off`, pieces joined until the last one.

/// Handles a control message (`@on`, `@off`); true if `msg` was one.
///
/// # Safety
///
/// `ud` is the state the warning function was installed on; `msg` is NUL-terminated.
#[cfg(not(feature = "lua51"))]
unsafe fn warn_control(ud: *mut c_void, msg: *const c_char, tocont: c_int) -> bool {
    // SAFETY: `msg` is a NUL-terminated string from Lua (caller).
    let m = unsafe { CStr::from_ptr(msg) }.to_bytes();
    if tocont != 0 || m.first() != Some(&b'@') {
        return false;
    }
    let l: L = ud.cast();
    // SAFETY: `l` is the live state (caller); setting the warning function only stores it.
    unsafe {
        match &m[1..] {
            b"off" => ffi::lua_setwarnf(l, Some(warn_off), ud),
            b"on" => ffi::lua_setwarnf(l, Some(warn_on), ud),
            _ => {}
        }
    }
    true
}

#[cfg(not(feature = "lua51"))]
unsafe extern "C-unwind" fn warn_off(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: called by Lua with its state as `ud` and a NUL-terminated message.
    unsafe { warn_control(ud, msg, tocont) };
}

#[cfg(not(feature = "lua51"))]
unsafe extern "C-unwind" fn warn_on(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: called by Lua with its state as `ud` and a NUL-terminated message.
    unsafe {
        if warn_control(ud, msg, tocont) {
            return;
        }
        stdio_err(b"Lua warning: ");
        warn_cont(ud, msg, tocont);
    }
}

#[cfg(not(feature = "lua51"))]
unsafe extern "C-unwind" fn warn_cont(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: called by Lua with its state as `ud` and a NUL-terminated message.
    unsafe {
        stdio_err(CStr::from_ptr(msg).to_bytes());
        let l: L = ud.cast();
        if tocont != 0 {
            ffi::lua_setwarnf(l, Some(warn_cont), ud);
        } else {
            stdio_err(b"\n");
            ffi::lua_setwarnf(l, Some(warn_on), ud);
        }
    }
}

/// Like `luaL_newstate`'s panic function: print the message, then Lua aborts.
unsafe extern "C-unwind" fn atpanic(l: L) -> c_int {
    // SAFETY: called by Lua with the error object on top.
    let msg = unsafe { to_bytes(l, -1) }.unwrap_or(b"error object is not a string");
    stdio_err(b"PANIC: unprotected error in call to Lua API (");
    stdio_err(msg);
    stdio_err(b")\n");
    0
}
