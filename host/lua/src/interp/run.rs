//! Running chunks the way `lua.c` does: in protected mode with a message handler (`docall`),
//! files, strings and libraries, `LUA_INIT`, the script, SIGINT stopping a running chunk, and
//! `pmain`, everything `lua.c` does inside its protected call.

use super::*;

/// The state running a chunk, for the SIGINT handler.
pub(super) static GLOBAL_L: AtomicPtr<ffi::lua_State> = AtomicPtr::new(ptr::null_mut());

/// Hook installed by the SIGINT handler: stops the running chunk with an error.
pub(super) unsafe extern "C-unwind" fn lstop(l: L, _ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua as a hook on the running state; the error unwinds only Lua frames
    // and this frame, which owns nothing.
    unsafe {
        ffi::lua_sethook(l, None, 0, 0);
        #[cfg(not(feature = "luajit"))]
        ffi::luaL_error(l, c"interrupted!".as_ptr());
        // A LuaJIT hook adds no frame of its own: the position is that of level 0.
        #[cfg(feature = "luajit")]
        {
            ffi::luaL_where(l, 0);
            ffi::lua_pushstring(l, c"interrupted!".as_ptr());
            ffi::lua_concat(l, 2);
            ffi::lua_error(l);
        }
    }
}

/// SIGINT handler: on the first interrupt, ask Lua to stop at the next hook point; a second one
/// kills the process (the handler is reset to the default).
pub(super) extern "C" fn laction(sig: c_int) {
    #[cfg(not(feature = "luajit"))]
    let flag = ffi::LUA_MASKCALL | ffi::LUA_MASKRET | ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT;
    #[cfg(feature = "luajit")]
    let flag = ffi::LUA_MASKCALL | ffi::LUA_MASKRET | ffi::LUA_MASKCOUNT;
    // SAFETY: `signal` is async-signal-safe; `lua_sethook` is designed to be called from a
    // signal handler (it only stores fields), as `lua.c` does; GLOBAL_L is the running state.
    unsafe {
        set_signal(sig, libc::SIG_DFL);
        let l = GLOBAL_L.load(Ordering::Relaxed);
        if !l.is_null() {
            ffi::lua_sethook(l, Some(lstop), flag, 1);
        }
    }
}

pub(super) fn set_sigint(handler: Option<extern "C" fn(c_int)>) {
    let h = match handler {
        Some(f) => f as libc::sighandler_t,
        None => libc::SIG_DFL,
    };
    // SAFETY: installing a handler that only does async-signal-safe work (see `laction`).
    unsafe { set_signal(libc::SIGINT, h) };
}

/// Sets the handler of `sig`: with `signal` as `lua.c` does (BSD semantics: interrupted system
/// calls restart), or on LuaJIT with `sigaction` and no flags, as `luajit.c` does (a read
/// waiting for input is interrupted, so Ctrl-C stops `io.read()`).
///
/// # Safety
///
/// `h` is `SIG_DFL`, `SIG_IGN` or a handler that only does async-signal-safe work.
unsafe fn set_signal(sig: c_int, h: libc::sighandler_t) {
    #[cfg(not(feature = "luajit"))]
    // SAFETY: as the caller promises.
    unsafe {
        libc::signal(sig, h);
    }
    #[cfg(feature = "luajit")]
    // SAFETY: as the caller promises; `sa` is fully initialised (zeroed, then the handler and an
    // empty mask).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = h;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, ptr::null_mut());
    }
}

/// `dochunk`: runs a loaded chunk and reports.
///
/// # Safety
///
/// `l` is valid; on OK a function is on top, else an error message.
pub(super) unsafe fn dochunk(l: L, progname: Option<&CStr>, mut status: c_int) -> c_int {
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
pub(super) unsafe fn dofile(l: L, progname: Option<&CStr>, name: Option<&CStr>) -> c_int {
    // SAFETY: valid state (caller); `name` is NUL-terminated or NULL (stdin).
    unsafe {
        let st = ffi::luaL_loadfile(l, name.map_or(ptr::null(), |n| n.as_ptr()));
        dochunk(l, progname, st)
    }
}

/// # Safety
///
/// `l` is valid, in a protected call.
pub(super) unsafe fn dostring(l: L, progname: Option<&CStr>, s: &[u8], name: &CStr) -> c_int {
    // SAFETY: `s` is valid for its length; `name` is NUL-terminated.
    unsafe {
        let st = ffi::luaL_loadbuffer(l, s.as_ptr() as *const c_char, s.len(), name.as_ptr());
        dochunk(l, progname, st)
    }
}

/// `dolibrary`: `-l mod` requires `mod` into global `mod` (without a `-suffix`); `-l g=mod`
/// into global `g`. Lua 5.1 and LuaJIT only call `require(mod)`.
///
/// # Safety
///
/// `l` is valid, in a protected call.
pub(super) unsafe fn dolibrary(l: L, progname: Option<&CStr>, spec: &[u8]) -> c_int {
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
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
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    let module = spec;
    // SAFETY: valid state (caller); lengths match the slices.
    unsafe {
        ffi::lua_getglobal(l, c"require".as_ptr());
        ffi::lua_pushlstring(l, module.as_ptr() as *const c_char, module.len());
        let status = docall(l, 1, 1);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        if status == ffi::LUA_OK {
            // globname = require(modname), through the global table as `lua_setglobal` does.
            ffi::lua_pushglobaltable(l);
            ffi::lua_insert(l, -2);
            ffi::lua_pushlstring(l, glob.as_ptr() as *const c_char, glob.len());
            ffi::lua_insert(l, -2);
            ffi::lua_settable(l, -3);
            ffi::lua_pop(l, 1);
        }
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        if status == ffi::LUA_OK {
            ffi::lua_pop(l, 1);
        }
        report(l, progname, status)
    }
}

/// `handle_script`: loads the script (`-` is stdin unless after `--`) and calls it with the
/// script arguments.
///
/// # Safety
///
/// `l` is valid, in a protected call.
pub(super) unsafe fn handle_script(
    l: L,
    progname: Option<&CStr>,
    argv: &[CString],
    script: usize,
) -> c_int {
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
#[cfg(not(feature = "luajit"))]
pub(super) unsafe fn runargs(l: L, progname: Option<&CStr>, argv: &[CString], n: usize) -> bool {
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

/// `handle_luainit`: runs `LUA_INIT_5_x` or `LUA_INIT` (`@file` or a chunk; 5.1 and LuaJIT read
/// `LUA_INIT` only).
///
/// # Safety
///
/// `l` is valid, in a protected call.
pub(super) unsafe fn handle_luainit(l: L, progname: Option<&CStr>) -> c_int {
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    let vars: [&CStr; 2] = [version::INIT_VERSION_VAR, c"LUA_INIT"];
    #[cfg(any(feature = "lua51", feature = "luajit"))]
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

/// `pmain`: everything `lua.c` does inside the protected call. Argument 1 is the [`Ctx`].
#[cfg(not(feature = "luajit"))]
pub(super) unsafe extern "C-unwind" fn pmain(l: L) -> c_int {
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
        version::gc_restart(l);
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
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
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
    #[cfg(any(feature = "lua51", feature = "luajit"))]
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
