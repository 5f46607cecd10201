//! Resident memory per live Lua state, for a host that keeps many small states.
//!
//!     cargo build --release -p lmem-lua --example footprint
//!     target/release/examples/footprint BACKEND [N]     # N states (default 2000)
//!     target/release/examples/footprint stock [N]       # Lua's own allocator (libc realloc)
//!
//! Opens N states on backend BACKEND (each with its own allocator), gives each the standard
//! libraries and a small script (about 30 KiB of Lua live bytes per state), keeps them all live,
//! and prints the growth of the process's resident set per state, the Lua live bytes per state,
//! and the last state's backend statistics. Then it closes every state.
use lmem_lua::ffi;
use std::ffi::CString;

/// The process's resident set, in bytes (`/proc/self/statm`, in 4 KiB pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm's second field");
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "slab".to_string());
    let n: usize = args.next().map_or(2000, |s| s.parse().expect("N"));
    let code = CString::new(
        "local t = {} for i = 1, 50 do t[i] = { i, tostring(i) } end \
         function f(x) return x * 2 end s = string.rep('x', 300)",
    )
    .unwrap();
    let before = rss();
    let mut states = Vec::with_capacity(n);
    let mut live = 0;
    for _ in 0..n {
        let (state, alloc) = if name == "stock" {
            // SAFETY: the state is closed with `lua_close` below.
            (unsafe { lmem_lua::version::new_stock_state() }, None)
        } else {
            let alloc = lmem::Allocator::new(&name).unwrap_or_else(|e| panic!("{e}"));
            // SAFETY: the pair comes from `alloc`, which is dropped only after the state is
            // closed; its function never unwinds and answers NULL on failure.
            let state = unsafe { lmem_lua::version::new_state(alloc.function(), alloc.ud()) };
            (state, Some(alloc))
        };
        assert!(!state.is_null(), "no memory for a state");
        // SAFETY: a fresh state; the chunk runs in protected mode.
        unsafe {
            ffi::luaL_openlibs(state);
            assert_eq!(ffi::luaL_loadstring(state, code.as_ptr()), ffi::LUA_OK);
            assert_eq!(ffi::lua_pcall(state, 0, 0, 0), ffi::LUA_OK);
            live += ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0) as usize * 1024;
        }
        states.push((state, alloc));
    }
    let after = rss();
    if let Some((_, Some(alloc))) = states.last() {
        // SAFETY: no Lua code runs, so no allocation is running.
        let layer = unsafe { alloc.enter() };
        println!("last state: {:?}", layer.backend_stats());
    }
    println!(
        "{name} n={n} rss/state {:.1} KiB  lua live/state {:.1} KiB",
        after.saturating_sub(before) as f64 / n as f64 / 1024.0,
        live as f64 / n as f64 / 1024.0
    );
    for (state, alloc) in states {
        // SAFETY: a live state, closed once, before its allocator goes.
        unsafe { ffi::lua_close(state) };
        drop(alloc);
    }
}
