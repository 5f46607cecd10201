//! The interactive loop of `lua.c`: prompts (`_PROMPT`, `_PROMPT2`), continuation lines,
//! `=expr` and a `return` prepended to expressions (5.2+), results printed.

use super::*;

pub(super) const PROMPT: &CStr = c"> ";
pub(super) const PROMPT2: &CStr = c">> ";

/// `get_prompt`: `_PROMPT`/`_PROMPT2` through `tostring`, or the default. Leaves one value on
/// the stack (popped by the caller).
///
/// # Safety
///
/// `l` is valid, in a protected call.
#[cfg(not(feature = "luajit"))]
pub(super) unsafe fn get_prompt(l: L, firstline: bool) -> *const c_char {
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

/// `write_prompt` of `luajit.c`: `_PROMPT`/`_PROMPT2` if it is a string or a number (no
/// `__tostring`), or the default. Leaves one value on the stack (popped by the caller).
///
/// # Safety
///
/// `l` is valid, in a protected call.
#[cfg(feature = "luajit")]
pub(super) unsafe fn get_prompt(l: L, firstline: bool) -> *const c_char {
    let var = if firstline { c"_PROMPT" } else { c"_PROMPT2" };
    // SAFETY: valid state (caller).
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, var.as_ptr());
        let p = ffi::lua_tolstring(l, -1, ptr::null_mut());
        if p.is_null() {
            if firstline { PROMPT } else { PROMPT2 }.as_ptr()
        } else {
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
pub(super) unsafe fn pushline(l: L, ctx: &mut Ctx<'_>, firstline: bool) -> bool {
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
pub(super) unsafe fn incomplete(l: L, status: c_int) -> bool {
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    const EOFMARK: &[u8] = b"<eof>";
    #[cfg(any(feature = "lua51", feature = "luajit"))]
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
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
pub(super) unsafe fn addreturn(l: L) -> c_int {
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
pub(super) unsafe fn multiline(l: L, ctx: &mut Ctx<'_>) -> c_int {
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
pub(super) unsafe fn loadline(l: L, ctx: &mut Ctx<'_>) -> c_int {
    // SAFETY: valid state (caller).
    unsafe {
        ffi::lua_settop(l, 0);
        if !pushline(l, ctx, true) {
            return -1;
        }
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        let status = match addreturn(l) {
            ffi::LUA_OK => ffi::LUA_OK,
            _ => multiline(l, ctx),
        };
        #[cfg(any(feature = "lua51", feature = "luajit"))]
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
pub(super) unsafe fn l_print(l: L, progname: Option<&CStr>) {
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
pub(super) unsafe fn do_repl(l: L, ctx: &mut Ctx<'_>) {
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
