//! The one place that knows which Lua this build links: the `compile_error!`s that keep the
//! version features exclusive, the version's constants, and making a state (with a fresh hash
//! seed on 5.5, `lua.c`'s panic function and its warning functions; on LuaJIT the report of
//! errors in finalizers that its `luaL_newstate` installs), and the collector's modes.
//! (The `lua.c` port in [`crate::interp`] still follows the `lua.c` of each version where they
//! differ: 5.1 has no warnings, no `-E`/`-W`, and another message handler; LuaJIT's `luajit.c`
//! is 5.1's with `-E`, `-j`, `-O` and `-b`, another order of steps and its own messages.)

use crate::ffi;
use crate::interp::{stdio_err, to_bytes};
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
use std::ffi::{CStr, c_char};
use std::ffi::{c_int, c_void};

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
#[cfg(all(feature = "luajit", feature = "lua54"))]
compile_error!(
    "features `luajit` and `lua54` are mutually exclusive: pick one Lua version \
     (for LuaJIT: --no-default-features --features luajit,all-backends)"
);
#[cfg(all(feature = "luajit", feature = "lua51"))]
compile_error!("features `luajit` and `lua51` are mutually exclusive: pick one Lua version");
#[cfg(all(feature = "luajit", feature = "lua55"))]
compile_error!("features `luajit` and `lua55` are mutually exclusive: pick one Lua version");
#[cfg(not(any(
    feature = "lua51",
    feature = "lua54",
    feature = "lua55",
    feature = "luajit"
)))]
compile_error!(
    "no Lua version: enable one of the features `lua54` (default), `lua51`, `lua55`, `luajit`"
);

type L = *mut ffi::lua_State;

/// `LUA_VERSION_NUM` of the Lua this build links (for trace headers and reports): 501 for
/// LuaJIT, whose C API and `_VERSION` are 5.1's.
pub const LUA_VERSION_NUM: u32 = if cfg!(any(feature = "lua51", feature = "luajit")) {
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

/// `LUAJIT_VERSION` of the LuaJIT built (the vendored one: `luajit-src` through `mlua-sys`).
#[cfg(feature = "luajit")]
macro_rules! luajit_version {
    () => {
        "LuaJIT 2.1.1788856981"
    };
}
/// `LUAJIT_VERSION` of the LuaJIT built, which is also its `jit.version`.
#[cfg(feature = "luajit")]
pub const LUAJIT_VERSION: &str = luajit_version!();
/// The version line `luajit -v` prints: `LUAJIT_VERSION -- LUAJIT_COPYRIGHT. LUAJIT_URL` (LuaJIT's
/// own `LUA_COPYRIGHT` is the PUC-Rio one of 5.1, which its interpreter never prints).
#[cfg(feature = "luajit")]
pub const LUA_COPYRIGHT: &str = concat!(
    luajit_version!(),
    " -- Copyright (C) 2005-2026 Mike Pall. https://luajit.org/"
);

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
            #[cfg(not(any(feature = "lua51", feature = "luajit")))]
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
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        ffi::lua_gc(l, ffi::LUA_GCSTOP);
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
    }
}

/// Restarts the collector in the mode `lua.c` uses: generational on 5.4 and 5.5, incremental
/// on 5.1 and LuaJIT (whose `luajit.c` restarts it with -1: the next cycle starts once the heap
/// has grown by the pause, not at once).
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
        #[cfg(feature = "luajit")]
        ffi::lua_gc(l, ffi::LUA_GCRESTART, -1);
    }
}

// The warning functions `luaL_newstate` installs (lua_newstate installs none): off by default,
// switched by the control messages `@on`/`@off`, pieces joined until the last one.

/// Handles a control message (`@on`, `@off`); true if `msg` was one.
///
/// # Safety
///
/// `ud` is the state the warning function was installed on; `msg` is NUL-terminated.
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
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

#[cfg(not(any(feature = "lua51", feature = "luajit")))]
unsafe extern "C-unwind" fn warn_off(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: called by Lua with its state as `ud` and a NUL-terminated message.
    unsafe { warn_control(ud, msg, tocont) };
}

#[cfg(not(any(feature = "lua51", feature = "luajit")))]
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

#[cfg(not(any(feature = "lua51", feature = "luajit")))]
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

/// Like `luaL_newstate`'s panic function: print the message, then Lua aborts (LuaJIT exits with
/// status 1).
unsafe extern "C-unwind" fn atpanic(l: L) -> c_int {
    #[cfg(not(feature = "luajit"))]
    const NOT_A_STRING: &[u8] = b"error object is not a string";
    #[cfg(feature = "luajit")]
    const NOT_A_STRING: &[u8] = b"?";
    // SAFETY: called by Lua with the error object on top.
    let msg = unsafe { to_bytes(l, -1) }.unwrap_or(NOT_A_STRING);
    stdio_err(b"PANIC: unprotected error in call to Lua API (");
    stdio_err(msg);
    stdio_err(b")\n");
    0
}

/// What LuaJIT's `luaL_newstate` does about an error in a `__gc` finalizer: print
/// `ERROR in finalizer: msg` on stderr and go on. LuaJIT sends such errors as a VM event, and a
/// state from `lua_newstate` has no handler for it (the error is dropped silently), so the
/// interpreter attaches one with `jit.attach(handler, "errfin")` once the libraries are open.
///
/// # Safety
///
/// `l` is valid with the `jit` library open, in a protected call, with 3 free stack slots.
#[cfg(feature = "luajit")]
pub unsafe fn report_finalizer_errors(l: L) {
    // SAFETY: valid state in a protected call (caller); errors unwind frames that own nothing.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"_LOADED".as_ptr());
        ffi::lua_getfield(l, -1, c"jit".as_ptr());
        ffi::lua_remove(l, -2);
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            ffi::lua_getfield(l, -1, c"attach".as_ptr());
            if ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION {
                ffi::lua_pushcfunction(l, error_finalizer);
                ffi::lua_pushstring(l, c"errfin".as_ptr());
                ffi::lua_call(l, 2, 0);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pop(l, 1);
    }
}

/// The `errfin` handler: the error object is its last argument.
#[cfg(feature = "luajit")]
unsafe extern "C-unwind" fn error_finalizer(l: L) -> c_int {
    // SAFETY: called by LuaJIT's VM event machinery with the error object on top.
    let msg = unsafe { to_bytes(l, -1) }.unwrap_or(b"?");
    stdio_err(b"ERROR in finalizer: ");
    stdio_err(msg);
    stdio_err(b"\n");
    0
}
