//! The part of the Lua C API the `lmem` module calls, declared here for the Lua version chosen by
//! feature (`lua54` by default, `lua51`, `lua55`, `luajit`), with no Lua library linked: the
//! symbols are resolved by whoever links or loads the code — the vendored Lua of `lmem-lua`, or
//! the stock interpreter that loads `lmem-module`'s shared object.
//!
//! The declarations keep each version's exact C signatures (Lua 5.1's `lua_pushlstring`,
//! `lua_getfield` and `lua_rawseti` differ from 5.4's); the wrappers below the declarations give
//! the module one signature for what the versions spell differently (the C API's macros, and
//! the functions 5.1 lacks). LuaJIT 2.1 has Lua 5.1's C API (and ABI), so `luajit` declares
//! exactly what `lua51` does.
//!
//! Every Lua function may leave by `longjmp` (a Lua error; LuaJIT on x86-64 unwinds the frames
//! with the system unwinder instead), hence `C-unwind`; a caller must own nothing with a
//! destructor in any frame that such an error can cross.

#![allow(non_camel_case_types, missing_docs)]

use std::ffi::{c_char, c_int, c_void};

#[cfg(all(feature = "lua51", feature = "lua54"))]
compile_error!(
    "features `lua51` and `lua54` are mutually exclusive: pick one Lua version \
     (for 5.1: --no-default-features --features lua51)"
);
#[cfg(all(feature = "lua55", feature = "lua54"))]
compile_error!(
    "features `lua55` and `lua54` are mutually exclusive: pick one Lua version \
     (for 5.5: --no-default-features --features lua55)"
);
#[cfg(all(feature = "lua51", feature = "lua55"))]
compile_error!("features `lua51` and `lua55` are mutually exclusive: pick one Lua version");
#[cfg(all(feature = "luajit", feature = "lua54"))]
compile_error!(
    "features `luajit` and `lua54` are mutually exclusive: pick one Lua version \
     (for LuaJIT: --no-default-features --features luajit)"
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

/// `LUA_VERSION_NUM` of the API declared here.
pub const LUA_VERSION_NUM: u32 = if cfg!(any(feature = "lua51", feature = "luajit")) {
    501
} else if cfg!(feature = "lua55") {
    505
} else {
    504
};

/// A Lua state (opaque).
#[repr(C)]
pub struct lua_State {
    _opaque: [u8; 0],
}

pub type lua_CFunction = unsafe extern "C-unwind" fn(l: *mut lua_State) -> c_int;
pub type lua_Alloc = lmem::LuaAlloc;
pub type lua_Number = f64;
/// `ptrdiff_t` on 5.1, `long long` on 5.4 and 5.5.
#[cfg(any(feature = "lua51", feature = "luajit"))]
pub type lua_Integer = isize;
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
pub type lua_Integer = i64;

#[cfg(any(feature = "lua51", feature = "luajit"))]
pub const LUA_REGISTRYINDEX: c_int = -10000;
#[cfg(any(feature = "lua51", feature = "luajit"))]
pub const LUA_GLOBALSINDEX: c_int = -10002;
/// `-LUAI_MAXSTACK - 1000`.
#[cfg(all(feature = "lua54", not(any(feature = "lua51", feature = "luajit"))))]
pub const LUA_REGISTRYINDEX: c_int = -1_000_000 - 1000;
/// `-(INT_MAX/2 + 1000)`.
#[cfg(all(
    feature = "lua55",
    not(any(feature = "lua51", feature = "lua54", feature = "luajit"))
))]
pub const LUA_REGISTRYINDEX: c_int = -(c_int::MAX / 2 + 1000);

pub const LUA_TNONE: c_int = -1;
pub const LUA_TNIL: c_int = 0;
pub const LUA_TBOOLEAN: c_int = 1;
pub const LUA_TSTRING: c_int = 4;
pub const LUA_TTABLE: c_int = 5;

pub const LUA_GCCOUNT: c_int = 3;
pub const LUA_GCCOUNTB: c_int = 4;

// The functions with one signature on every version.
unsafe extern "C-unwind" {
    pub fn lua_settop(l: *mut lua_State, idx: c_int);
    pub fn lua_type(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_toboolean(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_isnumber(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_tolstring(l: *mut lua_State, idx: c_int, len: *mut usize) -> *const c_char;
    pub fn lua_touserdata(l: *mut lua_State, idx: c_int) -> *mut c_void;
    pub fn lua_pushvalue(l: *mut lua_State, idx: c_int);
    pub fn lua_pushnil(l: *mut lua_State);
    pub fn lua_pushinteger(l: *mut lua_State, n: lua_Integer);
    pub fn lua_pushboolean(l: *mut lua_State, b: c_int);
    pub fn lua_pushlightuserdata(l: *mut lua_State, p: *mut c_void);
    pub fn lua_pushcclosure(l: *mut lua_State, f: lua_CFunction, n: c_int);
    pub fn lua_pushthread(l: *mut lua_State) -> c_int;
    pub fn lua_createtable(l: *mut lua_State, narr: c_int, nrec: c_int);
    pub fn lua_setfield(l: *mut lua_State, idx: c_int, k: *const c_char);
    pub fn lua_settable(l: *mut lua_State, idx: c_int);
    pub fn lua_setmetatable(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_concat(l: *mut lua_State, n: c_int);
    pub fn lua_error(l: *mut lua_State) -> c_int;
    pub fn lua_getallocf(l: *mut lua_State, ud: *mut *mut c_void) -> Option<lua_Alloc>;
    pub fn lua_setallocf(l: *mut lua_State, f: lua_Alloc, ud: *mut c_void);

    pub fn luaL_where(l: *mut lua_State, lvl: c_int);
    pub fn luaL_checklstring(l: *mut lua_State, arg: c_int, len: *mut usize) -> *const c_char;
    pub fn luaL_newmetatable(l: *mut lua_State, tname: *const c_char) -> c_int;
}

#[cfg(not(any(feature = "lua51", feature = "luajit")))]
unsafe extern "C-unwind" {
    pub fn lua_version(l: *mut lua_State) -> lua_Number;
    pub fn lua_pushlstring(l: *mut lua_State, s: *const c_char, len: usize) -> *const c_char;
    pub fn lua_getfield(l: *mut lua_State, idx: c_int, k: *const c_char) -> c_int;
    pub fn lua_getglobal(l: *mut lua_State, name: *const c_char) -> c_int;
    pub fn lua_setglobal(l: *mut lua_State, name: *const c_char);
    pub fn lua_rawseti(l: *mut lua_State, idx: c_int, n: lua_Integer);
    pub fn lua_tointegerx(l: *mut lua_State, idx: c_int, isnum: *mut c_int) -> lua_Integer;
    pub fn lua_newuserdatauv(l: *mut lua_State, size: usize, nuvalue: c_int) -> *mut c_void;
    pub fn lua_rotate(l: *mut lua_State, idx: c_int, n: c_int);
    pub fn lua_gc(l: *mut lua_State, what: c_int, ...) -> c_int;
}

#[cfg(any(feature = "lua51", feature = "luajit"))]
unsafe extern "C-unwind" {
    pub fn lua_pushlstring(l: *mut lua_State, s: *const c_char, len: usize);
    pub fn lua_getfield(l: *mut lua_State, idx: c_int, k: *const c_char);
    pub fn lua_rawseti(l: *mut lua_State, idx: c_int, n: c_int);
    pub fn lua_tonumber(l: *mut lua_State, idx: c_int) -> lua_Number;
    pub fn lua_newuserdata(l: *mut lua_State, size: usize) -> *mut c_void;
    pub fn lua_insert(l: *mut lua_State, idx: c_int);
    pub fn lua_gc(l: *mut lua_State, what: c_int, data: c_int) -> c_int;
}

/// `lua_upvalueindex(i)`.
pub const fn lua_upvalueindex(i: c_int) -> c_int {
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    {
        LUA_GLOBALSINDEX - i
    }
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    {
        LUA_REGISTRYINDEX - i
    }
}

/// `lua_pop(l, n)`.
///
/// # Safety
///
/// `l` is valid with at least `n` values on its stack.
pub unsafe fn lua_pop(l: *mut lua_State, n: c_int) {
    // SAFETY: as the caller promises.
    unsafe { lua_settop(l, -n - 1) }
}

/// `lua_pushcfunction(l, f)`.
///
/// # Safety
///
/// `l` is valid with a free stack slot.
pub unsafe fn lua_pushcfunction(l: *mut lua_State, f: lua_CFunction) {
    // SAFETY: as the caller promises; no upvalues are taken.
    unsafe { lua_pushcclosure(l, f, 0) }
}

/// Pushes a byte string (Lua copies it).
///
/// # Safety
///
/// `l` is valid with a free stack slot.
pub unsafe fn push_bytes(l: *mut lua_State, s: &[u8]) {
    // SAFETY: `s` is valid for `s.len()` bytes (a slice); the caller's promise for `l`.
    unsafe {
        lua_pushlstring(l, s.as_ptr() as *const c_char, s.len());
    }
}

/// Pushes `t[k]` for the table at `idx` (its type is not returned: 5.1 does not say it).
///
/// # Safety
///
/// `l` is valid, `idx` is an acceptable index, `k` is NUL-terminated, a stack slot is free.
pub unsafe fn get_field(l: *mut lua_State, idx: c_int, k: *const c_char) {
    // SAFETY: as the caller promises.
    unsafe {
        lua_getfield(l, idx, k);
    }
}

/// Pushes the global `name`.
///
/// # Safety
///
/// As [`get_field`].
pub unsafe fn get_global(l: *mut lua_State, name: *const c_char) {
    // SAFETY: as the caller promises (5.1: globals are a pseudo-index).
    unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        lua_getfield(l, LUA_GLOBALSINDEX, name);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        lua_getglobal(l, name);
    }
}

/// Pops a value into the global `name`.
///
/// # Safety
///
/// `l` is valid with a value on top, `name` NUL-terminated.
pub unsafe fn set_global(l: *mut lua_State, name: *const c_char) {
    // SAFETY: as the caller promises (5.1: globals are a pseudo-index).
    unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        lua_setfield(l, LUA_GLOBALSINDEX, name);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        lua_setglobal(l, name);
    }
}

/// `t[n] = v` for the table at `idx`, `v` popped from the top (raw).
///
/// # Safety
///
/// `l` is valid, a table is at `idx` and a value on top; `n` fits the version's index type.
pub unsafe fn raw_set_i(l: *mut lua_State, idx: c_int, n: i64) {
    // SAFETY: as the caller promises.
    unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        lua_rawseti(l, idx, n as c_int);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        lua_rawseti(l, idx, n);
    }
}

/// The value at `idx` as an integer: a number with an integral value that fits (5.4 and 5.5
/// also convert a string such as `"10"`, as `lua_tointegerx` does; 5.1 as `lua_tonumber` does).
///
/// # Safety
///
/// `l` is valid and `idx` an acceptable index.
pub unsafe fn to_integer(l: *mut lua_State, idx: c_int) -> Option<i64> {
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    {
        let mut isnum = 0;
        // SAFETY: as the caller promises.
        let n = unsafe { lua_tointegerx(l, idx, &mut isnum) };
        (isnum != 0).then_some(n)
    }
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    {
        // SAFETY: as the caller promises.
        if unsafe { lua_isnumber(l, idx) } == 0 {
            return None;
        }
        // SAFETY: as above.
        let n = unsafe { lua_tonumber(l, idx) };
        let i = n as i64;
        (n >= i64::MIN as f64 && n < -(i64::MIN as f64) && i as f64 == n).then_some(i)
    }
}

/// A new full userdata of `size` bytes (no user values), pushed.
///
/// # Safety
///
/// `l` is valid with a free stack slot; raises a memory error on failure.
pub unsafe fn new_userdata(l: *mut lua_State, size: usize) -> *mut c_void {
    // SAFETY: as the caller promises.
    unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        return lua_newuserdata(l, size);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        return lua_newuserdatauv(l, size, 0);
    }
}

/// `lua_insert(l, idx)`: moves the top value into `idx`.
///
/// # Safety
///
/// `l` is valid and `idx` a valid (not pseudo) index.
pub unsafe fn insert(l: *mut lua_State, idx: c_int) {
    // SAFETY: as the caller promises.
    unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        lua_insert(l, idx);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        lua_rotate(l, idx, 1);
    }
}

/// Lua's own count of the bytes in its live blocks (`LUA_GCCOUNT` KiB plus `LUA_GCCOUNTB`
/// bytes); `None` when the collector refuses to answer (5.4 and 5.5, inside a finalizer).
///
/// # Safety
///
/// `l` is valid and not inside its allocation function.
pub unsafe fn gc_count(l: *mut lua_State) -> Option<usize> {
    // SAFETY: as the caller promises; both options take no argument (5.1 reads `data`, 0).
    let (kib, b) = unsafe {
        (
            lua_gc(l, LUA_GCCOUNT, 0 as c_int),
            lua_gc(l, LUA_GCCOUNTB, 0 as c_int),
        )
    };
    if kib < 0 || b < 0 {
        return None;
    }
    Some((kib as usize) * 1024 + b as usize)
}
