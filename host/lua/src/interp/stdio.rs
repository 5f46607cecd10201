//! The C library's standard streams (glibc exports them as variables): what Lua's `print` and
//! `io.write` write to, so the interpreter's own output interleaves with theirs as in `lua`.
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
