//! The standalone interpreter: a port of PUC-Rio `lua.c` (of the Lua version built; on LuaJIT,
//! of its `luajit.c`) over the C API, on a state whose memory is an lmem [`Memory`].
//!
//! By job: [`args`] reads the Lua command line (`collectargs`, the `arg` table, the usage text),
//! [`run`] runs chunks in protected mode (`pmain`, files, strings, libraries, `LUA_INIT`, SIGINT),
//! [`repl`] is the interactive loop, and [`stdio`] writes through C's streams; on LuaJIT,
//! `luajit` has what only `luajit.c` does (`-j`, `-O`, `-b`, the JIT status line, its order of
//! steps in `pmain`).
//!
//! Behaviour follows `lua.c`: the options `-e -l -i -v -E -W - --` (5.1: no `-E`/`-W`; LuaJIT:
//! `-E`, `-j`, `-O`, `-b` and no `-W`), the `arg` table with negative indices,
//! `LUA_INIT_5_x`/`LUA_INIT`, `progname: message` errors with a traceback from the message
//! handler, the `usage:` text on a bad option, exit status 0/1, the REPL with
//! `_PROMPT`/`_PROMPT2`, `=expr` and continuation lines, and SIGINT stopping the running chunk
//! with `interrupted!`.
//!
//! Why the code looks the way it does: Lua raises errors with `longjmp` (LuaJIT on x86-64 with
//! the system unwinder, through the same frames), which may cross any Rust frame that calls the
//! Lua API inside the protected `pmain`. Such frames own nothing with a destructor: the
//! arguments are borrowed from [`run`]'s caller, the REPL's line buffer is a raw `getline`
//! buffer kept in the context, and text is written with C stdio (the same streams Lua's `print`
//! and `io.write` use, so the output interleaves as in `lua`).

use crate::ffi;
use crate::memory::Memory;
use crate::version;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

mod args;
#[cfg(feature = "luajit")]
mod luajit;
mod repl;
mod run;
mod stdio;

use args::*;
#[cfg(feature = "luajit")]
use luajit::pmain;
use repl::*;
use run::*;

pub use args::collectargs;
pub use run::call_protected;
pub(crate) use stdio::err as stdio_err;

type L = *mut ffi::lua_State;

/// What `pmain` works on. Lives in [`run`]'s frame, outside the protected call.
struct Ctx<'a> {
    /// The Lua command line: `argv[0]` is the program name, then the Lua options.
    argv: &'a [CString],
    /// `progname` of `lua.c`: `None` in the REPL (errors print without a prefix).
    progname: Option<&'a CStr>,
    memory: &'a Memory,
    /// `getline` buffer of the REPL (malloc'd; freed by [`run`]).
    line: *mut c_char,
    line_cap: usize,
    /// Whether `pmain` got to its end (LuaJIT's `pmain` says so here rather than by a result,
    /// being called by `lua_cpcall` directly, as in `luajit.c`).
    #[cfg(feature = "luajit")]
    ok: bool,
}

/// `l_message`: `pname: msg` on stderr.
pub(super) fn l_message(pname: Option<&CStr>, msg: &[u8]) {
    if let Some(p) = pname {
        stdio::err(p.to_bytes());
        stdio::err(b": ");
    }
    stdio::err(msg);
    stdio::err(b"\n");
}

/// Bytes of the string at `idx`, if it is a string or a number.
///
/// # Safety
///
/// `l` is valid and `idx` acceptable. The slice lives while the value stays on the stack.
pub(super) unsafe fn to_bytes<'s>(l: L, idx: c_int) -> Option<&'s [u8]> {
    let mut len = 0usize;
    // SAFETY: valid state and index (caller).
    let p = unsafe { ffi::lua_tolstring(l, idx, &mut len) };
    // SAFETY: Lua returned a pointer to `len` bytes kept alive by the stack value.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p as *const u8, len) })
}

/// `report`: prints the error message on top of the stack (if `status` is not OK) and pops it.
///
/// # Safety
///
/// `l` is valid; an error status means an error object is on top.
pub(super) unsafe fn report(l: L, progname: Option<&CStr>, status: c_int) -> c_int {
    if status != ffi::LUA_OK {
        // SAFETY: error object on top (caller).
        unsafe {
            #[cfg(any(feature = "lua51", feature = "luajit"))]
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                return status;
            }
            let msg = to_bytes(l, -1).unwrap_or(b"(error object is not a string)");
            l_message(progname, msg);
            ffi::lua_pop(l, 1);
        }
    }
    status
}

/// The message handler: adds a traceback to string messages; other objects use `__tostring`
/// or become `(error object is a T value)`.
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
pub(super) unsafe extern "C-unwind" fn msghandler(l: L) -> c_int {
    // SAFETY: called by Lua as a message handler with the error object at 1; this frame owns
    // nothing, so Lua errors may unwind it.
    unsafe {
        let mut msg = ffi::lua_tostring(l, 1);
        if msg.is_null() {
            if ffi::luaL_callmeta(l, 1, c"__tostring".as_ptr()) != 0
                && ffi::lua_type(l, -1) == ffi::LUA_TSTRING
            {
                return 1;
            }
            ffi::lua_pushstring(l, c"(error object is a ".as_ptr());
            ffi::lua_pushstring(l, ffi::luaL_typename(l, 1));
            ffi::lua_pushstring(l, c" value)".as_ptr());
            ffi::lua_concat(l, 3);
            msg = ffi::lua_tostring(l, -1);
        }
        ffi::luaL_traceback(l, l, msg, 1);
    }
    1
}

/// Lua 5.1's `traceback`: `debug.traceback(msg, 2)` for string messages.
#[cfg(feature = "lua51")]
pub(super) unsafe extern "C-unwind" fn msghandler(l: L) -> c_int {
    // SAFETY: called by Lua as a message handler with the error object at 1; this frame owns
    // nothing.
    unsafe {
        if ffi::lua_isstring(l, 1) == 0 {
            return 1;
        }
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"debug".as_ptr());
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            return 1;
        }
        ffi::lua_getfield(l, -1, c"traceback".as_ptr());
        if ffi::lua_type(l, -1) != ffi::LUA_TFUNCTION {
            ffi::lua_pop(l, 2);
            return 1;
        }
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushinteger(l, 2);
        ffi::lua_call(l, 2, 1);
    }
    1
}

/// `luajit.c`'s `traceback`: a non-string error object is replaced by the string its
/// `__tostring` gives (or returned as it is), then LuaJIT's own `luaL_traceback` is added.
#[cfg(feature = "luajit")]
pub(super) unsafe extern "C-unwind" fn msghandler(l: L) -> c_int {
    // SAFETY: called by Lua as a message handler with the error object at 1; this frame owns
    // nothing.
    unsafe {
        if ffi::lua_isstring(l, 1) == 0 {
            if ffi::lua_type(l, 1) <= ffi::LUA_TNIL
                || ffi::luaL_callmeta(l, 1, c"__tostring".as_ptr()) == 0
                || ffi::lua_isstring(l, -1) == 0
            {
                return 1;
            }
            ffi::lua_remove(l, 1);
        }
        luajit::traceback(l, l, ffi::lua_tostring(l, 1), 1);
    }
    1
}

/// `docall`: calls the function under `narg` arguments with the message handler and SIGINT
/// handling.
///
/// # Safety
///
/// `l` is valid with a function and `narg` arguments on top.
pub(super) unsafe fn docall(l: L, narg: c_int, nres: c_int) -> c_int {
    // SAFETY: function and arguments on the stack (caller).
    unsafe {
        let base = ffi::lua_gettop(l) - narg;
        ffi::lua_pushcfunction(l, msghandler);
        ffi::lua_insert(l, base);
        GLOBAL_L.store(l, Ordering::Relaxed);
        set_sigint(Some(laction));
        let status = ffi::lua_pcall(l, narg, nres, base);
        set_sigint(None);
        ffi::lua_remove(l, base);
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        if status != ffi::LUA_OK {
            ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0);
        }
        status
    }
}

/// Makes a state on `memory`'s allocation function (Lua 5.5 also takes a hash seed), or with
/// `luaL_newstate` in the stock form.
///
/// # Safety
///
/// `memory` outlives the state.
pub unsafe fn new_state(memory: &Memory) -> L {
    let Some((f, ud)) = memory.pair() else {
        // SAFETY: no precondition; Lua's own allocator, panic and warning functions.
        return unsafe { version::new_stock_state() };
    };
    // SAFETY: the function and ud come from the memory's live allocator, which outlives the
    // state (caller).
    unsafe { version::new_state(f, ud) }
}

/// Runs the interpreter on the Lua command line `argv` (`argv[0]` is the program name) over
/// `memory`, and closes the state. Returns the exit status (0 or 1) of `lua`.
pub fn run(argv: &[CString], memory: &Memory) -> i32 {
    // SAFETY: `memory` outlives the state, which is closed below.
    let l = unsafe { new_state(memory) };
    if l.is_null() {
        l_message(
            argv.first().map(|a| a.as_c_str()),
            b"cannot create state: not enough memory",
        );
        return 1;
    }
    #[cfg(not(feature = "luajit"))]
    const PROGNAME: &CStr = c"lua";
    #[cfg(feature = "luajit")]
    const PROGNAME: &CStr = c"luajit";
    let progname = argv
        .first()
        .filter(|a| !a.is_empty())
        .map(|a| a.as_c_str())
        .or(Some(PROGNAME));
    let mut ctx = Ctx {
        argv,
        progname,
        memory,
        line: ptr::null_mut(),
        line_cap: 0,
        #[cfg(feature = "luajit")]
        ok: false,
    };
    // SAFETY: `l` is a fresh valid state; `ctx` lives across the protected call, and `pmain`
    // is the only user of the pointer. After `lua_close`, no Lua code runs.
    let ok = unsafe {
        version::gc_stop(l);
        let ud = &mut ctx as *mut Ctx<'_> as *mut c_void;
        #[cfg(not(feature = "luajit"))]
        let (status, result) = call_protected(l, pmain, ud);
        // Straight from `lua_cpcall`: no frame of ours in the traceback, as in `luajit`.
        #[cfg(feature = "luajit")]
        let (status, result) = {
            let status = ffi::lua_cpcall(l, pmain, ud);
            (status, ctx.ok)
        };
        report(l, ctx.progname, status);
        GLOBAL_L.store(ptr::null_mut(), Ordering::Relaxed);
        ffi::lua_close(l);
        result && status == ffi::LUA_OK
    };
    // SAFETY: the buffer was malloc'd by getline (or is NULL).
    unsafe { libc::free(ctx.line.cast()) };
    if ok { 0 } else { 1 }
}
