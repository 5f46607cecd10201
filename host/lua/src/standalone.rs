//! The `main` of `lmem-lua`, as a library function, so that the `lmem` tool can run the very same
//! interpreter in its own process (`lmem lua …`) when `lmem-lua` was not built next to it.

use crate::{Memory, interp, options};
use std::ffi::CString;
use std::io::Write;

/// Runs `lmem-lua` with the command line `raw` (program name first) and the process environment;
/// returns the exit status.
pub fn main_with_args(raw: &[Vec<u8>]) -> i32 {
    if raw.is_empty() {
        return fail("no program name");
    }
    let text: Vec<String> = raw
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let names = lmem::backends::names();
    let (opts, first_lua) = match options::parse(&text, |k| std::env::var(k).ok(), &names) {
        Ok(v) => v,
        Err(e) => return fail(&e.to_string()),
    };
    let memory = match Memory::new(&opts) {
        Ok(m) => m,
        Err(e) => return fail(&e.to_string()),
    };
    // The Lua command line: the program name, then everything after the lmem options.
    let mut argv: Vec<CString> = Vec::with_capacity(raw.len());
    for a in std::iter::once(&raw[0]).chain(&raw[first_lua.max(1)..]) {
        match CString::new(a.clone()) {
            Ok(c) => argv.push(c),
            Err(_) => return fail("argument contains a NUL byte"),
        }
    }
    let mut status = interp::run(&argv, &memory);
    // The state is closed: nothing allocates any more.
    // SAFETY: no Lua state uses the allocator now.
    let mut g = unsafe { memory.enter() };
    {
        if let Err(e) = g.finish_outputs() {
            let _ = writeln!(std::io::stderr(), "lmem-lua: {e}");
            status = status.max(2);
        }
        if opts.stats {
            let _ = std::io::stderr().write_all(g.report(true).as_bytes());
        }
        let live = g.stats().live;
        if let Some(complaints) = g.checker_complaints() {
            let _ = write!(
                std::io::stderr(),
                "lmem-lua: checker complaints:\n{complaints}"
            );
            status = 3;
        } else if live != 0 && opts.check {
            let _ = writeln!(
                std::io::stderr(),
                "lmem-lua: {live} bytes live after lua_close"
            );
            status = 3;
        }
    }
    status
}

fn fail(msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "lmem-lua: {msg}");
    let _ = writeln!(std::io::stderr(), "{}", options::LMEM_USAGE.trim_end());
    2
}
