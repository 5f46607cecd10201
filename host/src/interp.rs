//! The standalone interpreter: a port of PUC-Rio `lua.c` (of the Lua version built) over the C
//! API, on a state whose memory is an lmem [`Memory`].
//!
//! Behaviour follows `lua.c`: the options `-e -l -i -v -E -W - --` (5.1: no `-E`/`-W`), the `arg`
//! table with negative indices, `LUA_INIT_5_x`/`LUA_INIT`, `progname: message` errors with a
//! traceback from the message handler, the `usage:` text on a bad option, exit status 0/1, the
//! REPL with `_PROMPT`/`_PROMPT2`, `=expr` and continuation lines, and SIGINT stopping the running
//! chunk with `interrupted!`.
//!
//! Why the code looks the way it does: Lua raises errors with `longjmp`, which may cross any
//! Rust frame that calls the Lua API inside the protected `pmain`. Such frames own nothing with a
//! destructor: the arguments are borrowed from [`run`]'s caller, the REPL's line buffer is a raw
//! `getline` buffer kept in the context, and text is written with C stdio (the same streams
//! Lua's `print` and `io.write` use, so the output interleaves as in `lua`).

use crate::ffi;
use crate::memory::Memory;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

type L = *mut ffi::lua_State;

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
const INIT_VERSION_VAR: &CStr = c"LUA_INIT_5_4";
#[cfg(feature = "lua55")]
const INIT_VERSION_VAR: &CStr = c"LUA_INIT_5_5";

const PROMPT: &CStr = c"> ";
const PROMPT2: &CStr = c">> ";

mod stdio {
    //! The C library's standard streams (glibc exports them as variables).
    use std::ffi::c_int;

    unsafe extern "C" {
        #[link_name = "stdin"]
        static mut C_STDIN: *mut libc::FILE;
        #[link_name = "stdout"]
        static mut C_STDOUT: *mut libc::FILE;
        #[link_name = "stderr"]
        static mut C_STDERR: *mut libc::FILE;
    }

    pub fn stdin() -> *mut libc::FILE {
        // SAFETY: reading the C library's initialised stream pointer.
        unsafe { C_STDIN }
    }

    fn write(f: *mut libc::FILE, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        // SAFETY: `f` is a valid C stream; `b` is valid for `b.len()` bytes.
        unsafe {
            libc::fwrite(b.as_ptr().cast(), 1, b.len(), f);
            libc::fflush(f);
        }
    }

    /// Writes to C's stdout and flushes (`lua_writestring` + `lua_writeline`'s flush).
    pub fn out(b: &[u8]) {
        // SAFETY: reading the C library's initialised stream pointer.
        write(unsafe { C_STDOUT }, b)
    }

    /// Writes to C's stderr and flushes (`lua_writestringerror`).
    pub fn err(b: &[u8]) {
        // SAFETY: reading the C library's initialised stream pointer.
        write(unsafe { C_STDERR }, b)
    }

    pub fn stdin_is_tty() -> bool {
        // SAFETY: isatty has no preconditions.
        unsafe { libc::isatty(0 as c_int) != 0 }
    }
}

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
}

/// The state running a chunk, for the SIGINT handler.
static GLOBAL_L: AtomicPtr<ffi::lua_State> = AtomicPtr::new(ptr::null_mut());

/// Hook installed by the SIGINT handler: stops the running chunk with an error.
unsafe extern "C-unwind" fn lstop(l: L, _ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua as a hook on the running state; the error unwinds only Lua frames
    // and this frame, which owns nothing.
    unsafe {
        ffi::lua_sethook(l, None, 0, 0);
        ffi::luaL_error(l, c"interrupted!".as_ptr());
    }
}

/// SIGINT handler: on the first interrupt, ask Lua to stop at the next hook point; a second one
/// kills the process (the handler is reset to the default).
extern "C" fn laction(sig: c_int) {
    let flag = ffi::LUA_MASKCALL | ffi::LUA_MASKRET | ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT;
    // SAFETY: `signal` is async-signal-safe; `lua_sethook` is designed to be called from a
    // signal handler (it only stores fields), as `lua.c` does; GLOBAL_L is the running state.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let l = GLOBAL_L.load(Ordering::Relaxed);
        if !l.is_null() {
            ffi::lua_sethook(l, Some(lstop), flag, 1);
        }
    }
}

fn set_sigint(handler: Option<extern "C" fn(c_int)>) {
    let h = match handler {
        Some(f) => f as libc::sighandler_t,
        None => libc::SIG_DFL,
    };
    // SAFETY: installing a handler that only does async-signal-safe work (see `laction`).
    unsafe { libc::signal(libc::SIGINT, h) };
}

/// `l_message`: `pname: msg` on stderr.
fn l_message(pname: Option<&CStr>, msg: &[u8]) {
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
unsafe fn to_bytes<'s>(l: L, idx: c_int) -> Option<&'s [u8]> {
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
unsafe fn report(l: L, progname: Option<&CStr>, status: c_int) -> c_int {
    if status != ffi::LUA_OK {
        // SAFETY: error object on top (caller).
        unsafe {
            #[cfg(feature = "lua51")]
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
#[cfg(not(feature = "lua51"))]
unsafe extern "C-unwind" fn msghandler(l: L) -> c_int {
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
unsafe extern "C-unwind" fn msghandler(l: L) -> c_int {
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

/// `docall`: calls the function under `narg` arguments with the message handler and SIGINT
/// handling.
///
/// # Safety
///
/// `l` is valid with a function and `narg` arguments on top.
unsafe fn docall(l: L, narg: c_int, nres: c_int) -> c_int {
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
        #[cfg(feature = "lua51")]
        if status != ffi::LUA_OK {
            ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0);
        }
        status
    }
}

fn print_version() {
    stdio::out(LUA_COPYRIGHT.as_bytes());
    stdio::out(b"\n");
}

/// `print_usage`: the bad option, then the usage text, on stderr.
fn print_usage(progname: &[u8], badoption: &[u8]) {
    let p = String::from_utf8_lossy(progname);
    #[cfg(not(feature = "lua51"))]
    {
        let mut head = Vec::new();
        head.extend_from_slice(progname);
        head.extend_from_slice(b": ");
        if badoption.get(1).is_some_and(|&c| c == b'e' || c == b'l') {
            head.extend_from_slice(b"'");
            head.extend_from_slice(badoption);
            head.extend_from_slice(b"' needs argument\n");
        } else {
            head.extend_from_slice(b"unrecognized option '");
            head.extend_from_slice(badoption);
            head.extend_from_slice(b"'\n");
        }
        stdio::err(&head);
        stdio::err(
            format!(
                "usage: {p} [options] [script [args]]\n\
                 Available options are:\n\
                 \x20 -e stat   execute string 'stat'\n\
                 \x20 -i        enter interactive mode after executing 'script'\n\
                 \x20 -l mod    require library 'mod' into global 'mod'\n\
                 \x20 -l g=mod  require library 'mod' into global 'g'\n\
                 \x20 -v        show version information\n\
                 \x20 -E        ignore environment variables\n\
                 \x20 -W        turn warnings on\n\
                 \x20 --        stop handling options\n\
                 \x20 -         stop handling options and execute stdin\n"
            )
            .as_bytes(),
        );
    }
    #[cfg(feature = "lua51")]
    {
        let _ = badoption;
        stdio::err(
            format!(
                "usage: {p} [options] [script [args]].\n\
                 Available options are:\n\
                 \x20 -e stat  execute string 'stat'\n\
                 \x20 -l name  require library 'name'\n\
                 \x20 -i       enter interactive mode after executing 'script'\n\
                 \x20 -v       show version information\n\
                 \x20 --       stop handling options\n\
                 \x20 -        execute stdin and stop handling options\n"
            )
            .as_bytes(),
        );
    }
}

const HAS_ERROR: u32 = 1;
const HAS_I: u32 = 2;
const HAS_V: u32 = 4;
const HAS_E: u32 = 8;
const HAS_BIG_E: u32 = 16;

/// `collectargs`: scans the options. Returns the flags and `first`: the index of the script
/// (or `argv.len()` when there is none; on an error, the index of the bad option).
pub fn collectargs(argv: &[CString]) -> (u32, usize) {
    let mut args = 0;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].to_bytes();
        if a.first() != Some(&b'-') {
            return (args, i);
        }
        let tail_empty = a.len() <= 2;
        match a.get(1).copied() {
            Some(b'-') => {
                if !tail_empty {
                    return (HAS_ERROR, i);
                }
                return (args, i + 1);
            }
            None => return (args, i),
            #[cfg(not(feature = "lua51"))]
            Some(b'E') => {
                if !tail_empty {
                    return (HAS_ERROR, i);
                }
                args |= HAS_BIG_E;
            }
            #[cfg(not(feature = "lua51"))]
            Some(b'W') => {
                if !tail_empty {
                    return (HAS_ERROR, i);
                }
            }
            Some(c @ (b'i' | b'v')) => {
                if !tail_empty {
                    return (HAS_ERROR, i);
                }
                if c == b'i' {
                    args |= HAS_I;
                }
                args |= HAS_V;
            }
            Some(c @ (b'e' | b'l')) => {
                if c == b'e' {
                    args |= HAS_E;
                }
                if tail_empty {
                    i += 1;
                    match argv.get(i) {
                        None => return (HAS_ERROR, i - 1),
                        #[cfg(not(feature = "lua51"))]
                        Some(next) if next.to_bytes().first() == Some(&b'-') => {
                            return (HAS_ERROR, i - 1);
                        }
                        Some(_) => {}
                    }
                }
            }
            Some(_) => return (HAS_ERROR, i),
        }
        i += 1;
    }
    (args, argv.len())
}

/// `createargtable`: `arg[0]` is the script, `arg[1..]` its arguments, negative indices the
/// interpreter and its options.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn createargtable(l: L, argv: &[CString], script: usize) {
    let script = if script == argv.len() { 0 } else { script };
    let narg = argv.len() as c_int - (script as c_int + 1);
    // SAFETY: valid state (caller); each string is NUL-terminated.
    unsafe {
        ffi::lua_createtable(l, narg.max(0), script as c_int + 1);
        for (i, a) in argv.iter().enumerate() {
            ffi::lua_pushstring(l, a.as_ptr());
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer - script as ffi::lua_Integer);
        }
        ffi::lua_setglobal(l, c"arg".as_ptr());
    }
}

/// `dochunk`: runs a loaded chunk and reports.
///
/// # Safety
///
/// `l` is valid; on OK a function is on top, else an error message.
unsafe fn dochunk(l: L, progname: Option<&CStr>, mut status: c_int) -> c_int {
    // SAFETY: as the caller promises.
    unsafe {
        if status == ffi::LUA_OK {
            status = docall(l, 0, 0);
        }
        report(l, progname, status)
    }
}

/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn dofile(l: L, progname: Option<&CStr>, name: Option<&CStr>) -> c_int {
    // SAFETY: valid state (caller); `name` is NUL-terminated or NULL (stdin).
    unsafe {
        let st = ffi::luaL_loadfile(l, name.map_or(ptr::null(), |n| n.as_ptr()));
        dochunk(l, progname, st)
    }
}

/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn dostring(l: L, progname: Option<&CStr>, s: &[u8], name: &CStr) -> c_int {
    // SAFETY: `s` is valid for its length; `name` is NUL-terminated.
    unsafe {
        let st = ffi::luaL_loadbuffer(l, s.as_ptr() as *const c_char, s.len(), name.as_ptr());
        dochunk(l, progname, st)
    }
}

/// `dolibrary`: `-l mod` requires `mod` into global `mod` (without a `-suffix`); `-l g=mod`
/// into global `g`. Lua 5.1 only calls `require(mod)`.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn dolibrary(l: L, progname: Option<&CStr>, spec: &[u8]) -> c_int {
    #[cfg(not(feature = "lua51"))]
    let (glob, module): (&[u8], &[u8]) = match spec.iter().position(|&b| b == b'=') {
        Some(eq) => (&spec[..eq], &spec[eq + 1..]),
        None => {
            // The global drops a version suffix after '-' (`-l mod-2.0` sets `mod`).
            let g = match spec.iter().position(|&b| b == b'-') {
                Some(dash) => &spec[..dash],
                None => spec,
            };
            (g, spec)
        }
    };
    #[cfg(feature = "lua51")]
    let module = spec;
    // SAFETY: valid state (caller); lengths match the slices.
    unsafe {
        ffi::lua_getglobal(l, c"require".as_ptr());
        ffi::lua_pushlstring(l, module.as_ptr() as *const c_char, module.len());
        let status = docall(l, 1, 1);
        #[cfg(not(feature = "lua51"))]
        if status == ffi::LUA_OK {
            // globname = require(modname), through the global table as `lua_setglobal` does.
            ffi::lua_pushglobaltable(l);
            ffi::lua_insert(l, -2);
            ffi::lua_pushlstring(l, glob.as_ptr() as *const c_char, glob.len());
            ffi::lua_insert(l, -2);
            ffi::lua_settable(l, -3);
            ffi::lua_pop(l, 1);
        }
        #[cfg(feature = "lua51")]
        if status == ffi::LUA_OK {
            ffi::lua_pop(l, 1);
        }
        report(l, progname, status)
    }
}

/// `pushargs`: pushes `arg[1..#arg]` for the main script.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn pushargs(l: L) -> c_int {
    // SAFETY: valid state (caller); errors unwind frames owning nothing.
    unsafe {
        if ffi::lua_getglobal(l, c"arg".as_ptr()) != ffi::LUA_TTABLE {
            ffi::luaL_error(l, c"'arg' is not a table".as_ptr());
        }
        let n = ffi::luaL_len(l, -1) as c_int;
        ffi::luaL_checkstack(l, n + 3, c"too many arguments to script".as_ptr());
        let mut i = 1;
        while i <= n {
            ffi::lua_rawgeti(l, -i, i as ffi::lua_Integer);
            i += 1;
        }
        ffi::lua_remove(l, -i);
        n
    }
}

/// `handle_script`: loads the script (`-` is stdin unless after `--`) and calls it with the
/// script arguments.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn handle_script(l: L, progname: Option<&CStr>, argv: &[CString], script: usize) -> c_int {
    let fname = &argv[script];
    let stdin = fname.to_bytes() == b"-" && argv[script - 1].to_bytes() != b"--";
    // SAFETY: valid state (caller); names are NUL-terminated.
    unsafe {
        let mut status = ffi::luaL_loadfile(l, if stdin { ptr::null() } else { fname.as_ptr() });
        if status == ffi::LUA_OK {
            let n = pushargs(l);
            status = docall(l, n, ffi::LUA_MULTRET);
        }
        report(l, progname, status)
    }
}

/// `runargs`: runs `-e` and `-l` in order (and `-W`) up to `n`. False if one failed.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn runargs(l: L, progname: Option<&CStr>, argv: &[CString], n: usize) -> bool {
    let mut i = 1;
    while i < n {
        let a = argv[i].to_bytes();
        let option = a.get(1).copied().unwrap_or(0);
        match option {
            b'e' | b'l' => {
                let extra: &[u8] = if a.len() > 2 {
                    &a[2..]
                } else {
                    i += 1;
                    argv[i].to_bytes()
                };
                // SAFETY: valid state, in a protected call (caller).
                let status = unsafe {
                    if option == b'e' {
                        dostring(l, progname, extra, c"=(command line)")
                    } else {
                        dolibrary(l, progname, extra)
                    }
                };
                if status != ffi::LUA_OK {
                    return false;
                }
            }
            #[cfg(not(feature = "lua51"))]
            b'W' => {
                // SAFETY: valid state.
                unsafe { ffi::lua_warning(l, c"@on".as_ptr(), 0) };
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// `handle_luainit`: runs `LUA_INIT_5_x` or `LUA_INIT` (`@file` or a chunk).
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn handle_luainit(l: L, progname: Option<&CStr>) -> c_int {
    #[cfg(not(feature = "lua51"))]
    let vars: [&CStr; 2] = [INIT_VERSION_VAR, c"LUA_INIT"];
    #[cfg(feature = "lua51")]
    let vars: [&CStr; 1] = [c"LUA_INIT"];
    for var in vars {
        // SAFETY: getenv with a NUL-terminated name; the result is read before any setenv.
        let init = unsafe { libc::getenv(var.as_ptr()) };
        if init.is_null() {
            continue;
        }
        // SAFETY: getenv returned a NUL-terminated string.
        let init = unsafe { CStr::from_ptr(init) };
        let bytes = init.to_bytes();
        // SAFETY: valid state, in a protected call (caller).
        return unsafe {
            if bytes.first() == Some(&b'@') {
                let file = CStr::from_bytes_with_nul(&init.to_bytes_with_nul()[1..]).ok();
                dofile(l, progname, file)
            } else {
                // The chunk name is "=LUA_INIT_5_4" or "=LUA_INIT".
                let mut name = [0u8; 32];
                name[0] = b'=';
                let v = var.to_bytes();
                name[1..1 + v.len()].copy_from_slice(v);
                let name = CStr::from_bytes_until_nul(&name).unwrap_or(c"=LUA_INIT");
                dostring(l, progname, bytes, name)
            }
        };
    }
    ffi::LUA_OK
}

// ---------------------------------------------------------------------------------------------
// The REPL

/// `get_prompt`: `_PROMPT`/`_PROMPT2` through `tostring`, or the default. Leaves one value on
/// the stack (popped by the caller).
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn get_prompt(l: L, firstline: bool) -> *const c_char {
    let var = if firstline { c"_PROMPT" } else { c"_PROMPT2" };
    // SAFETY: valid state (caller).
    unsafe {
        if ffi::lua_getglobal(l, var.as_ptr()) == ffi::LUA_TNIL {
            // lua.c leaves the nil there and pops it with the prompt.
            if firstline { PROMPT } else { PROMPT2 }.as_ptr()
        } else {
            let p = ffi::luaL_tolstring(l, -1, ptr::null_mut());
            ffi::lua_remove(l, -2);
            p
        }
    }
}

/// `pushline`: prompts, reads a line from C's stdin and pushes it (without its newline; a
/// leading `=` on a first line becomes `return `). False at end of input.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn pushline(l: L, ctx: &mut Ctx<'_>, firstline: bool) -> bool {
    // SAFETY: valid state (caller); the prompt string stays on the stack while written; the
    // getline buffer is owned by `ctx` (malloc'd, grown by getline).
    unsafe {
        let prmt = get_prompt(l, firstline);
        stdio::out(CStr::from_ptr(prmt).to_bytes());
        let n = libc::getline(&mut ctx.line, &mut ctx.line_cap, stdio::stdin());
        ffi::lua_pop(l, 1);
        if n < 0 {
            return false;
        }
        let mut b = std::slice::from_raw_parts(ctx.line as *const u8, n as usize);
        if let Some(stripped) = b.strip_suffix(b"\n") {
            b = stripped;
        }
        if firstline && b.first() == Some(&b'=') {
            ffi::lua_pushstring(l, c"return ".as_ptr());
            ffi::lua_pushlstring(l, b[1..].as_ptr() as *const c_char, b.len() - 1);
            ffi::lua_concat(l, 2);
        } else {
            ffi::lua_pushlstring(l, b.as_ptr() as *const c_char, b.len());
        }
        true
    }
}

/// `incomplete`: whether a syntax error says the chunk ended early (`<eof>`); pops it then.
///
/// # Safety
///
/// `l` is valid; on a syntax error the message is on top.
unsafe fn incomplete(l: L, status: c_int) -> bool {
    #[cfg(not(feature = "lua51"))]
    const EOFMARK: &[u8] = b"<eof>";
    #[cfg(feature = "lua51")]
    const EOFMARK: &[u8] = b"'<eof>'";
    if status == ffi::LUA_ERRSYNTAX {
        // SAFETY: message on top (caller).
        unsafe {
            if to_bytes(l, -1).is_some_and(|m| m.ends_with(EOFMARK)) {
                ffi::lua_pop(l, 1);
                return true;
            }
        }
    }
    false
}

/// `addreturn`: tries the line as `return line;`.
///
/// # Safety
///
/// `l` is valid with the line on top, in a protected call.
#[cfg(not(feature = "lua51"))]
unsafe fn addreturn(l: L) -> c_int {
    // SAFETY: line on top (caller).
    unsafe {
        ffi::lua_pushstring(l, c"return ".as_ptr());
        ffi::lua_pushvalue(l, -2);
        ffi::lua_pushstring(l, c";".as_ptr());
        ffi::lua_concat(l, 3);
        let mut len = 0usize;
        let retline = ffi::lua_tolstring(l, -1, &mut len);
        let status = ffi::luaL_loadbuffer(l, retline, len, c"=stdin".as_ptr());
        if status == ffi::LUA_OK {
            ffi::lua_remove(l, -2);
        } else {
            ffi::lua_pop(l, 2);
        }
        status
    }
}

/// `multiline`: loads the line as a statement, reading continuation lines while it is
/// incomplete.
///
/// # Safety
///
/// `l` is valid with the line at index 1, in a protected call.
unsafe fn multiline(l: L, ctx: &mut Ctx<'_>) -> c_int {
    loop {
        // SAFETY: the line is at 1 (caller).
        unsafe {
            let mut len = 0usize;
            let line = ffi::lua_tolstring(l, 1, &mut len);
            let status = ffi::luaL_loadbuffer(l, line, len, c"=stdin".as_ptr());
            if !incomplete(l, status) || !pushline(l, ctx, false) {
                return status;
            }
            ffi::lua_pushstring(l, c"\n".as_ptr());
            ffi::lua_insert(l, -2);
            ffi::lua_concat(l, 3);
        }
    }
}

/// `loadline`: reads and compiles one input (expression or statement). -1 at end of input.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn loadline(l: L, ctx: &mut Ctx<'_>) -> c_int {
    // SAFETY: valid state (caller).
    unsafe {
        ffi::lua_settop(l, 0);
        if !pushline(l, ctx, true) {
            return -1;
        }
        #[cfg(not(feature = "lua51"))]
        let status = match addreturn(l) {
            ffi::LUA_OK => ffi::LUA_OK,
            _ => multiline(l, ctx),
        };
        #[cfg(feature = "lua51")]
        let status = multiline(l, ctx);
        ffi::lua_remove(l, 1);
        status
    }
}

/// `l_print`: prints the values left on the stack with the global `print`.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn l_print(l: L, progname: Option<&CStr>) {
    // SAFETY: valid state (caller).
    unsafe {
        let n = ffi::lua_gettop(l);
        if n > 0 {
            ffi::luaL_checkstack(l, ffi::LUA_MINSTACK, c"too many results to print".as_ptr());
            ffi::lua_getglobal(l, c"print".as_ptr());
            ffi::lua_insert(l, 1);
            if ffi::lua_pcall(l, n, 0, 0) != ffi::LUA_OK {
                ffi::lua_pushstring(l, c"error calling 'print' (".as_ptr());
                ffi::lua_insert(l, -2);
                ffi::lua_pushstring(l, c")".as_ptr());
                ffi::lua_concat(l, 3);
                l_message(progname, to_bytes(l, -1).unwrap_or(b""));
            }
        }
    }
}

/// `doREPL`: read, evaluate, print, until end of input.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn do_repl(l: L, ctx: &mut Ctx<'_>) {
    let old = ctx.progname.take();
    // SAFETY: valid state (caller).
    unsafe {
        loop {
            let mut status = loadline(l, ctx);
            if status == -1 {
                break;
            }
            if status == ffi::LUA_OK {
                status = docall(l, 0, ffi::LUA_MULTRET);
            }
            if status == ffi::LUA_OK {
                l_print(l, None);
            } else {
                report(l, None, status);
            }
        }
        ffi::lua_settop(l, 0);
    }
    stdio::out(b"\n");
    ctx.progname = old;
}

// ---------------------------------------------------------------------------------------------
// pmain and run

/// `pmain`: everything `lua.c` does inside the protected call. Argument 1 is the [`Ctx`].
unsafe extern "C-unwind" fn pmain(l: L) -> c_int {
    // SAFETY: `run` pushed a light userdata pointing at its live `Ctx` and nothing else touches
    // it meanwhile; every callee's precondition is "valid state in a protected call", which this
    // is. Lua errors raised here unwind frames that own nothing.
    unsafe {
        let ctx = &mut *(ffi::lua_touserdata(l, 1) as *mut Ctx<'_>);
        let argv = ctx.argv;
        let (args, script) = collectargs(argv);
        let optlim = if script < argv.len() {
            script
        } else {
            argv.len()
        };
        if args == HAS_ERROR {
            let bad = argv.get(script).map_or(&b""[..], |a| a.to_bytes());
            print_usage(ctx.progname.map_or(&b"lua"[..], |p| p.to_bytes()), bad);
            return 0;
        }
        if args & HAS_V != 0 {
            print_version();
        }
        if args & HAS_BIG_E != 0 {
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"LUA_NOENV".as_ptr());
        }
        ffi::luaL_openlibs(l);
        if !ctx.memory.is_stock() {
            crate::module::preload(l, ctx.memory);
        }
        #[cfg(not(feature = "lua51"))]
        createargtable(l, argv, script);
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
        if args & HAS_BIG_E == 0 && handle_luainit(l, ctx.progname) != ffi::LUA_OK {
            return 0;
        }
        if !runargs(l, ctx.progname, argv, optlim) {
            return 0;
        }
        if script < argv.len() {
            #[cfg(feature = "lua51")]
            createargtable(l, argv, script);
            if handle_script(l, ctx.progname, argv, script) != ffi::LUA_OK {
                return 0;
            }
        }
        if args & HAS_I != 0 {
            do_repl(l, ctx);
        } else if script >= argv.len() && args & (HAS_E | HAS_V) == 0 {
            if stdio::stdin_is_tty() {
                print_version();
                do_repl(l, ctx);
            } else {
                dofile(l, ctx.progname, None);
            }
        }
        ffi::lua_pushboolean(l, 1);
    }
    1
}

/// Calls `f` in protected mode with the light userdata `ud` as its only argument; returns the
/// status and whether `f`'s first result is true. On an error the message is on the stack.
///
/// Why not `lua_pushcfunction` + `lua_pcall` everywhere: in Lua 5.1 pushing a C function makes a
/// closure, which allocates, and an allocation failure there is unprotected (a panic). 5.1's
/// `lua.c` uses `lua_cpcall` for that reason, and so do we.
///
/// # Safety
///
/// `l` is a valid state with room for two stack slots; `f` accepts `ud` as its argument.
pub unsafe fn call_protected(l: L, f: ffi::lua_CFunction, ud: *mut c_void) -> (c_int, bool) {
    #[cfg(not(feature = "lua51"))]
    // SAFETY: pushing a light C function does not allocate in 5.2+; the call is protected.
    unsafe {
        ffi::lua_pushcfunction(l, f);
        ffi::lua_pushlightuserdata(l, ud);
        let status = ffi::lua_pcall(l, 1, 1, 0);
        (
            status,
            status == ffi::LUA_OK && ffi::lua_toboolean(l, -1) != 0,
        )
    }
    #[cfg(feature = "lua51")]
    {
        struct Call {
            f: ffi::lua_CFunction,
            ud: *mut c_void,
            result: bool,
        }
        unsafe extern "C-unwind" fn trampoline(l: L) -> c_int {
            // SAFETY: `lua_cpcall` passes the `Call` below as the only argument; it lives
            // across the call; everything here runs in protected mode.
            unsafe {
                let call = &mut *(ffi::lua_touserdata(l, 1) as *mut Call);
                ffi::lua_pushcfunction(l, call.f);
                ffi::lua_pushlightuserdata(l, call.ud);
                ffi::lua_call(l, 1, 1);
                call.result = ffi::lua_toboolean(l, -1) != 0;
            }
            0
        }
        let mut call = Call {
            f,
            ud,
            result: false,
        };
        // SAFETY: `call` outlives the protected call; `trampoline` takes it as its argument.
        let status =
            unsafe { ffi::lua_cpcall(l, trampoline, &mut call as *mut Call as *mut c_void) };
        (status, status == ffi::LUA_OK && call.result)
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
        return unsafe { ffi::luaL_newstate() };
    };
    // SAFETY: the function and ud come from the memory's live allocator, which outlives the
    // state (caller).
    unsafe { new_state_on(f, ud) }
}

/// Makes a state on the allocation function `f` with `ud` (Lua 5.5 also takes a hash seed, a
/// fresh one from `luaL_makeseed`), with `lua.c`'s panic function and warnings off.
///
/// # Safety
///
/// `f` and `ud` form a valid allocation function pair that outlives the state; `f` never unwinds
/// and returns NULL on failure.
pub unsafe fn new_state_on(f: lmem::LuaAlloc, ud: *mut c_void) -> L {
    // SAFETY: the caller's promise is what lua_newstate needs.
    unsafe {
        #[cfg(not(feature = "lua55"))]
        let l = ffi::lua_newstate(f, ud);
        #[cfg(feature = "lua55")]
        let l = ffi::lua_newstate(f, ud, ffi::luaL_makeseed(ptr::null_mut()));
        if !l.is_null() {
            ffi::lua_atpanic(l, atpanic);
            #[cfg(not(feature = "lua51"))]
            ffi::lua_setwarnf(l, Some(warn_off), l.cast());
        }
        l
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
        stdio::err(b"Lua warning: ");
        warn_cont(ud, msg, tocont);
    }
}

#[cfg(not(feature = "lua51"))]
unsafe extern "C-unwind" fn warn_cont(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: called by Lua with its state as `ud` and a NUL-terminated message.
    unsafe {
        stdio::err(CStr::from_ptr(msg).to_bytes());
        let l: L = ud.cast();
        if tocont != 0 {
            ffi::lua_setwarnf(l, Some(warn_cont), ud);
        } else {
            stdio::err(b"\n");
            ffi::lua_setwarnf(l, Some(warn_on), ud);
        }
    }
}

/// Like `luaL_newstate`'s panic function: print the message, then Lua aborts.
unsafe extern "C-unwind" fn atpanic(l: L) -> c_int {
    // SAFETY: called by Lua with the error object on top.
    let msg = unsafe { to_bytes(l, -1) }.unwrap_or(b"error object is not a string");
    stdio::err(b"PANIC: unprotected error in call to Lua API (");
    stdio::err(msg);
    stdio::err(b")\n");
    0
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
    let progname = argv
        .first()
        .filter(|a| !a.is_empty())
        .map(|a| a.as_c_str())
        .or(Some(c"lua"));
    let mut ctx = Ctx {
        argv,
        progname,
        memory,
        line: ptr::null_mut(),
        line_cap: 0,
    };
    // SAFETY: `l` is a fresh valid state; `ctx` lives across the protected call, and `pmain`
    // is the only user of the pointer. After `lua_close`, no Lua code runs.
    let ok = unsafe {
        #[cfg(not(feature = "lua51"))]
        ffi::lua_gc(l, ffi::LUA_GCSTOP);
        #[cfg(feature = "lua51")]
        ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
        let (status, result) = call_protected(l, pmain, &mut ctx as *mut Ctx<'_> as *mut c_void);
        report(l, ctx.progname, status);
        GLOBAL_L.store(ptr::null_mut(), Ordering::Relaxed);
        ffi::lua_close(l);
        result && status == ffi::LUA_OK
    };
    // SAFETY: the buffer was malloc'd by getline (or is NULL).
    unsafe { libc::free(ctx.line.cast()) };
    if ok { 0 } else { 1 }
}
