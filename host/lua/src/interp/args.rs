//! The Lua command line: options (`collectargs`), the `arg` table and `...`, the version and
//! the usage text, as `lua.c` of the version built has them (on LuaJIT, `luajit.c`).

use super::*;

pub(super) fn print_version() {
    stdio::out(version::LUA_COPYRIGHT.as_bytes());
    stdio::out(b"\n");
}

/// `print_usage`: the bad option, then the usage text, on stderr.
pub(super) fn print_usage(progname: &[u8], badoption: &[u8]) {
    let p = String::from_utf8_lossy(progname);
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
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
    // luajit.c names no bad option.
    #[cfg(feature = "luajit")]
    {
        let _ = badoption;
        stdio::err(
            format!(
                "usage: {p} [options]... [script [args]...].\n\
                 Available options are:\n\
                 \x20 -e chunk  Execute string 'chunk'.\n\
                 \x20 -l name   Require library 'name'.\n\
                 \x20 -b ...    Save or list bytecode.\n\
                 \x20 -j cmd    Perform LuaJIT control command.\n\
                 \x20 -O[opt]   Control LuaJIT optimizations.\n\
                 \x20 -i        Enter interactive mode after executing 'script'.\n\
                 \x20 -v        Show version information.\n\
                 \x20 -E        Ignore environment variables.\n\
                 \x20 --        Stop handling options.\n\
                 \x20 -         Execute stdin and stop handling options.\n"
            )
            .as_bytes(),
        );
    }
}

pub(super) const HAS_ERROR: u32 = 1;
pub(super) const HAS_I: u32 = 2;
pub(super) const HAS_V: u32 = 4;
pub(super) const HAS_E: u32 = 8;
pub(super) const HAS_BIG_E: u32 = 16;
/// `-e`, `-l` or `-j` (LuaJIT: `-b` must come before them).
#[cfg(feature = "luajit")]
pub(super) const HAS_OPTION: u32 = 32;

/// `collectargs`: scans the options. Returns the flags and `first`: the index of the script
/// (or `argv.len()` when there is none; on an error, the index of the bad option).
#[cfg(not(feature = "luajit"))]
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

/// `collectargs` of `luajit.c`: scans the options. Returns the flags and `first`: the index of
/// the script (or `argv.len()` when there is none; after `-b`, the index past it: the rest is
/// `-b`'s). On an error the flags are `HAS_ERROR`.
///
/// Unlike `lua.c`: `-E` takes a tail (`-Ex` is `-E`), `-O` takes any tail, `-j` takes an argument
/// as `-l` does, and `-b` must come before every option but `-O`.
#[cfg(feature = "luajit")]
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
            Some(c @ (b'i' | b'v')) => {
                if !tail_empty {
                    return (HAS_ERROR, i);
                }
                if c == b'i' {
                    args |= HAS_I;
                }
                args |= HAS_V;
            }
            Some(c @ (b'e' | b'j' | b'l')) => {
                if c == b'e' {
                    args |= HAS_E;
                }
                args |= HAS_OPTION;
                if tail_empty {
                    i += 1;
                    if i >= argv.len() {
                        return (HAS_ERROR, i - 1);
                    }
                }
            }
            Some(b'O') => {}
            Some(b'b') => {
                if args != 0 {
                    return (HAS_ERROR, i);
                }
                return (HAS_E, i + 1);
            }
            Some(b'E') => args |= HAS_BIG_E,
            Some(_) => return (HAS_ERROR, i),
        }
        i += 1;
    }
    (args, argv.len())
}

/// `createargtable`: `arg[0]` is the script, `arg[1..]` its arguments, negative indices the
/// interpreter and its options. Without a script, `lua.c` makes the program `arg[0]`, where
/// `luajit.c` puts every argument at a negative index.
///
/// # Safety
///
/// `l` is valid, in a protected call.
pub(super) unsafe fn createargtable(l: L, argv: &[CString], script: usize) {
    #[cfg(not(feature = "luajit"))]
    let (script, narg, nrec) = {
        let script = if script == argv.len() { 0 } else { script };
        let narg = argv.len() as c_int - (script as c_int + 1);
        (script, narg.max(0), script as c_int + 1)
    };
    #[cfg(feature = "luajit")]
    let (narg, nrec) = (argv.len() as c_int - script as c_int, script as c_int);
    // SAFETY: valid state (caller); each string is NUL-terminated.
    unsafe {
        ffi::lua_createtable(l, narg, nrec);
        for (i, a) in argv.iter().enumerate() {
            ffi::lua_pushstring(l, a.as_ptr());
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer - script as ffi::lua_Integer);
        }
        ffi::lua_setglobal(l, c"arg".as_ptr());
    }
}

/// `pushargs`: pushes `arg[1..#arg]` for the main script.
///
/// # Safety
///
/// `l` is valid, in a protected call.
#[cfg(not(feature = "luajit"))]
pub(super) unsafe fn pushargs(l: L) -> c_int {
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

/// `luajit.c`'s argument fetch for the main script: `arg[1]`, `arg[2]`, … up to the first nil
/// (none when `arg` is not a table). Returns how many it pushed.
///
/// # Safety
///
/// `l` is valid, in a protected call.
#[cfg(feature = "luajit")]
pub(super) unsafe fn pushargs(l: L) -> c_int {
    // SAFETY: valid state (caller); errors unwind frames owning nothing.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"arg".as_ptr());
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            return 0;
        }
        let mut n: c_int = 0;
        loop {
            ffi::luaL_checkstack(l, 2, c"too many arguments to script".as_ptr());
            n += 1;
            ffi::lua_rawgeti(l, -n, n as ffi::lua_Integer);
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                break;
            }
        }
        ffi::lua_pop(l, 1);
        ffi::lua_remove(l, -n);
        n - 1
    }
}
