//! What only `luajit.c` does: the JIT control options (`-j cmd`, `-O[opt]`), `-b` (bytecode,
//! through the `jit.bcsave` add-on module), the `JIT: ON …` status line, and `pmain` in its
//! order: the `arg` table before `LUA_INIT`, the version line after it.
//!
//! `-j` commands that are not functions of the `jit` library (`-jv`, `-jdump`, `-jp`) and `-b`
//! load an add-on module `jit.NAME` with `require`; these are Lua files that come with a LuaJIT
//! installation, not with the vendored library, so they are found only when `package.path`
//! (`LUA_PATH`) reaches a `jit/` directory of the same LuaJIT version. Without them the command
//! fails as `luajit`'s does: `unknown luaJIT command or jit.* modules not installed`.

use super::*;

unsafe extern "C-unwind" {
    /// LuaJIT's own `luaL_traceback` (the Lua 5.2 function LuaJIT provides), which `mlua-sys`
    /// does not bind for LuaJIT (it brings a Rust version for 5.1). Declared under another Rust
    /// name; the symbol is the library's.
    #[link_name = "luaL_traceback"]
    fn lj_traceback(l: L, l1: L, msg: *const c_char, level: c_int);
}

/// Pushes a traceback of `l1` from `level` on, after `msg` (if not NULL), onto `l`.
///
/// # Safety
///
/// `l` and `l1` are valid, `msg` is NULL or NUL-terminated; `l` has a free stack slot.
pub(super) unsafe fn traceback(l: L, l1: L, msg: *const c_char, level: c_int) {
    // SAFETY: as the caller promises; the signature is LuaJIT's `lauxlib.h` one.
    unsafe { lj_traceback(l, l1, msg, level) }
}

/// Pushes `package.loaded[name]` (the registry's `_LOADED`, as `luajit.c` reads it).
///
/// # Safety
///
/// `l` is valid with the base library open and 2 free stack slots.
unsafe fn push_loaded(l: L, name: &CStr) {
    // SAFETY: as the caller promises.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"_LOADED".as_ptr());
        ffi::lua_getfield(l, -1, name.as_ptr());
        ffi::lua_remove(l, -2);
    }
}

/// `print_jit_status`: `JIT: ON` or `JIT: OFF`, then what `jit.status()` says (CPU features and
/// optimisations), on stdout; clears the stack.
///
/// # Safety
///
/// `l` is valid, in a protected call, with the libraries open.
pub(super) unsafe fn print_jit_status(l: L) {
    // SAFETY: valid state in a protected call (caller); errors unwind frames owning nothing.
    unsafe {
        push_loaded(l, c"jit");
        ffi::lua_getfield(l, -1, c"status".as_ptr());
        ffi::lua_remove(l, -2);
        let mut n = ffi::lua_gettop(l);
        ffi::lua_call(l, 0, ffi::LUA_MULTRET);
        stdio::out(if ffi::lua_toboolean(l, n) != 0 {
            b"JIT: ON"
        } else {
            b"JIT: OFF"
        });
        n += 1;
        while let Some(s) = to_bytes(l, n) {
            stdio::out(b" ");
            stdio::out(s);
            n += 1;
        }
        stdio::out(b"\n");
        ffi::lua_settop(l, 0);
    }
}

/// `loadjitmodule`: with a command name on top, `require("jit." .. name)` and push its `start`
/// function. False (after a message) when the module is not there or has no `start`.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn loadjitmodule(l: L, progname: Option<&CStr>) -> bool {
    // SAFETY: valid state in a protected call (caller).
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"require".as_ptr());
        ffi::lua_pushstring(l, c"jit.".as_ptr());
        ffi::lua_pushvalue(l, -3);
        ffi::lua_concat(l, 2);
        if ffi::lua_pcall(l, 1, 1, 0) != ffi::LUA_OK {
            let missing = to_bytes(l, -1).is_some_and(|m| m.starts_with(b"module "));
            if !missing {
                report(l, progname, 1);
                return false;
            }
        } else {
            ffi::lua_getfield(l, -1, c"start".as_ptr());
            if ffi::lua_type(l, -1) != ffi::LUA_TNIL {
                ffi::lua_remove(l, -2);
                return true;
            }
        }
        l_message(
            progname,
            b"unknown luaJIT command or jit.* modules not installed",
        );
        false
    }
}

/// `runcmdopt`: calls the function on top with the comma-separated pieces of `opt` (an empty
/// piece is nil) and reports an error. True if the call succeeded.
///
/// # Safety
///
/// `l` is valid, in a protected call, with a function on top.
unsafe fn runcmdopt(l: L, progname: Option<&CStr>, opt: Option<&[u8]>) -> bool {
    let mut narg = 0;
    // SAFETY: valid state in a protected call (caller); lengths match the slices.
    unsafe {
        if let Some(opt) = opt.filter(|o| !o.is_empty()) {
            ffi::luaL_checkstack(l, 2, c"too many options".as_ptr());
            for piece in opt.split(|&b| b == b',') {
                ffi::luaL_checkstack(l, 2, c"too many options".as_ptr());
                if piece.is_empty() {
                    ffi::lua_pushnil(l);
                } else {
                    ffi::lua_pushlstring(l, piece.as_ptr() as *const c_char, piece.len());
                }
                narg += 1;
            }
        }
        report(l, progname, ffi::lua_pcall(l, narg, 0, 0)) == ffi::LUA_OK
    }
}

/// `dojitcmd`: `-j name[=opt,…]` calls `jit.name(opt, …)` (`-jon`, `-joff`, `-jflush`), or else
/// the `start` function of the add-on module `jit.name` (`-jv`, `-jdump=…`).
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn dojitcmd(l: L, progname: Option<&CStr>, cmd: &[u8]) -> bool {
    let (name, opt) = match cmd.iter().position(|&b| b == b'=') {
        Some(eq) => (&cmd[..eq], Some(&cmd[eq + 1..])),
        None => (cmd, None),
    };
    // SAFETY: valid state in a protected call (caller); lengths match the slices.
    unsafe {
        ffi::lua_pushlstring(l, name.as_ptr() as *const c_char, name.len());
        push_loaded(l, c"jit");
        ffi::lua_pushvalue(l, -2);
        ffi::lua_gettable(l, -2);
        if ffi::lua_type(l, -1) != ffi::LUA_TFUNCTION {
            ffi::lua_pop(l, 2);
            if !loadjitmodule(l, progname) {
                return false;
            }
        } else {
            ffi::lua_remove(l, -2);
        }
        ffi::lua_remove(l, -2);
        runcmdopt(l, progname, opt)
    }
}

/// `dojitopt`: `-O[opt]` calls `jit.opt.start(opt, …)`.
///
/// # Safety
///
/// `l` is valid, in a protected call.
unsafe fn dojitopt(l: L, progname: Option<&CStr>, opt: &[u8]) -> bool {
    // SAFETY: valid state in a protected call (caller).
    unsafe {
        push_loaded(l, c"jit.opt");
        ffi::lua_getfield(l, -1, c"start".as_ptr());
        ffi::lua_remove(l, -2);
        runcmdopt(l, progname, Some(opt))
    }
}

/// `dobytecode`: `-b[flags] args…` calls `jit.bcsave.start` with `-flags` (if any) and every
/// argument after `-b`. What it returns or raises does not change the exit status (as in
/// `luajit`: `bcsave` exits by itself on a usage error); a missing module does.
///
/// # Safety
///
/// `l` is valid, in a protected call; `b` is the index of the `-b` option in `argv`.
unsafe fn dobytecode(l: L, progname: Option<&CStr>, argv: &[CString], b: usize) -> bool {
    // SAFETY: valid state in a protected call (caller); each string is NUL-terminated or has its
    // length.
    unsafe {
        ffi::lua_pushstring(l, c"bcsave".as_ptr());
        if !loadjitmodule(l, progname) {
            return false;
        }
        let mut narg = 0;
        let flags = &argv[b].to_bytes()[2..];
        if !flags.is_empty() {
            ffi::lua_pushstring(l, c"-".as_ptr());
            ffi::lua_pushlstring(l, flags.as_ptr() as *const c_char, flags.len());
            ffi::lua_concat(l, 2);
            narg += 1;
        }
        for a in &argv[b + 1..] {
            ffi::luaL_checkstack(l, 2, c"too many arguments".as_ptr());
            ffi::lua_pushstring(l, a.as_ptr());
            narg += 1;
        }
        report(l, progname, ffi::lua_pcall(l, narg, 0, 0));
        true
    }
}

/// What `runargs` ends with.
pub(super) enum Ran {
    /// Every option ran.
    Ok,
    /// One failed (its message is printed): exit status 1.
    Failed,
    /// `-b` ran and took the rest of the command line: nothing else runs, exit status 0.
    Bytecode,
}

/// `runargs` of `luajit.c`: runs `-e`, `-l`, `-j`, `-O` in order up to `n`, and `-b`.
///
/// # Safety
///
/// `l` is valid, in a protected call.
pub(super) unsafe fn runargs(l: L, progname: Option<&CStr>, argv: &[CString], n: usize) -> Ran {
    let mut i = 1;
    while i < n {
        let a = argv[i].to_bytes();
        let option = a.get(1).copied().unwrap_or(0);
        let ok = match option {
            b'e' | b'l' | b'j' => {
                let extra: &[u8] = if a.len() > 2 {
                    &a[2..]
                } else {
                    i += 1;
                    argv[i].to_bytes()
                };
                // SAFETY: valid state, in a protected call (caller): what each callee asks.
                unsafe {
                    match option {
                        b'e' => dostring(l, progname, extra, c"=(command line)") == ffi::LUA_OK,
                        b'l' => dolibrary(l, progname, extra) == ffi::LUA_OK,
                        _ => dojitcmd(l, progname, extra),
                    }
                }
            }
            // SAFETY: valid state, in a protected call (caller).
            b'O' => unsafe { dojitopt(l, progname, &a[2..]) },
            b'b' => {
                // SAFETY: valid state, in a protected call (caller); `i` is the index of `-b`.
                let ran = unsafe { dobytecode(l, progname, argv, i) };
                return if ran { Ran::Bytecode } else { Ran::Failed };
            }
            _ => true,
        };
        if !ok {
            return Ran::Failed;
        }
        i += 1;
    }
    Ran::Ok
}

/// `pmain` of `luajit.c`, called by `lua_cpcall` with the [`Ctx`] as argument 1. Sets `ctx.ok`
/// when it gets to its end (exit status 0).
pub(super) unsafe extern "C-unwind" fn pmain(l: L) -> c_int {
    // SAFETY: `run` pushed a light userdata pointing at its live `Ctx` and nothing else touches
    // it meanwhile; every callee's precondition is "valid state in a protected call", which this
    // is. Lua errors raised here unwind frames that own nothing.
    unsafe {
        let ctx = &mut *(ffi::lua_touserdata(l, 1) as *mut Ctx<'_>);
        let argv = ctx.argv;
        let (args, argn) = collectargs(argv);
        if args == HAS_ERROR {
            print_usage(ctx.progname.map_or(&b"luajit"[..], |p| p.to_bytes()), b"");
            return 0;
        }
        if args & HAS_BIG_E != 0 {
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"LUA_NOENV".as_ptr());
        }
        version::gc_stop(l);
        ffi::luaL_openlibs(l);
        version::gc_restart(l);
        version::report_finalizer_errors(l);
        if !ctx.memory.is_stock() {
            crate::module::preload(l, ctx.memory);
        }
        createargtable(l, argv, argn);
        if args & HAS_BIG_E == 0 && handle_luainit(l, ctx.progname) != ffi::LUA_OK {
            return 0;
        }
        if args & HAS_V != 0 {
            print_version();
        }
        match runargs(l, ctx.progname, argv, argn) {
            Ran::Ok => {}
            Ran::Failed => return 0,
            Ran::Bytecode => {
                ctx.ok = true;
                return 0;
            }
        }
        if argn < argv.len() && handle_script(l, ctx.progname, argv, argn) != ffi::LUA_OK {
            return 0;
        }
        if args & HAS_I != 0 {
            print_jit_status(l);
            do_repl(l, ctx);
        } else if argn >= argv.len() && args & (HAS_E | HAS_V) == 0 {
            if stdio::stdin_is_tty() {
                print_version();
                print_jit_status(l);
                do_repl(l, ctx);
            } else {
                dofile(l, ctx.progname, None);
            }
        }
        ctx.ok = true;
    }
    0
}
