//! `lmem-lua`: the standalone `lua` interpreter on lmem's allocator backends.
//!
//! `lmem-lua [lmem options] [lua options] [script [args]]`; see the crate README.

use std::os::unix::ffi::OsStringExt;

fn main() {
    let raw: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    std::process::exit(lmem_lua::standalone::main_with_args(&raw));
}
