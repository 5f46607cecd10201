//! The `lmem` Lua module (`require "lmem"`): the state's memory seen from Lua.
//!
//! - `lmem.backend()` → name of the backend new blocks come from;
//! - `lmem.stats()` → a table: `live`, `peak`, `allocations`, `frees`, `resizes`, `failures`,
//!   `emergencies`, `bytes_allocated`, `limit` (or nil), `backend`, `swaps`, `routing` (whether
//!   frees are routed through a swap chain), `reserved` (bytes the backend holds, if it says),
//!   `counting` and `uncounted` (see below), `by_tag`
//!   (`by_tag.string = {bytes=, count=}`, … : new blocks per Lua type) and `histogram` (counts of
//!   new blocks per power-of-two size bucket, `histogram[1]` = 1–16 B, …);
//! - `lmem.swap(name)` → `true`, or `nil, message` when the swap is refused (an unknown name is an
//!   error);
//! - `lmem.limit([bytes])` → sets the byte limit (`nil`/`false` lifts it; a string takes K/M/G
//!   suffixes), returns the previous limit (or nil); with no argument only returns it;
//! - `lmem.trim()` → gives the backend's unused memory back to its pool and the OS; returns the
//!   bytes the backend reserves afterwards (or nil if it does not say).
//!
//! Loading the module asks for the detailed figures: the state moves from the lean allocation
//! function to the counting one, and `stats()` counts from then on (`uncounted` is what was live
//! before; `counting` says `"since require"`, or `"from start"` under `--stats`).
//!
//! A swap leaves the state on a routing function while blocks of the old backend remain. A
//! *sentinel* watches for the moment they are gone: a userdata with a `__gc` metamethod that, at
//! the end of each collection cycle, asks the memory to settle (hand Lua the lean function of
//! the backend in use) and, while it cannot yet, leaves a new sentinel for the next cycle. A
//! finalizer runs outside the allocation function (never during an emergency collection), so it
//! may call `lua_setallocf`.
//!
//! Why the functions are shaped this way: they are C functions that Lua may leave by `longjmp`
//! (on a memory error while pushing results, or through `lua_error`). So every piece of Rust
//! work that owns heap memory runs in an inner function that returns plain `Copy` data, under
//! `catch_unwind`, and only then do the outer frames touch the Lua stack.

use crate::ffi;
use crate::memory::Memory;
use lmem::Tag;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A short message in a fixed buffer: `Copy`, so no destructor is pending when Lua unwinds.
#[derive(Clone, Copy)]
struct Msg {
    buf: [u8; 240],
    len: usize,
}

impl Msg {
    fn new(text: &str) -> Msg {
        let mut m = Msg {
            buf: [0; 240],
            len: 0,
        };
        let n = text.len().min(m.buf.len());
        m.buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        m.len = n;
        m
    }
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// `Stats` flattened into plain data.
#[derive(Clone, Copy)]
struct Snapshot {
    live: usize,
    peak: usize,
    allocations: usize,
    frees: usize,
    resizes: usize,
    failures: usize,
    emergencies: usize,
    bytes_allocated: usize,
    limit: Option<usize>,
    backend: Msg,
    swaps: usize,
    detailed: bool,
    routing: bool,
    uncounted: usize,
    reserved: Option<usize>,
    by_tag: [(usize, usize); 8],
    histogram: [usize; lmem::HISTOGRAM_BUCKETS],
}

/// The [`Memory`] behind the running C function (its first upvalue).
///
/// # Safety
///
/// `l` is a state running one of this module's functions, registered by [`luaopen_lmem`]; the
/// `Memory` outlives the state (the host closes the state before dropping it).
unsafe fn memory<'a>(l: *mut ffi::lua_State) -> &'a Memory {
    // SAFETY: upvalue 1 is the light userdata `luaopen_lmem` found in the registry, a pointer to
    // the live `Memory` (caller).
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Memory) }
}

/// Pushes a Rust byte string.
///
/// # Safety
///
/// `l` is a valid state with a free stack slot.
unsafe fn push_bytes(l: *mut ffi::lua_State, s: &[u8]) {
    // SAFETY: `s` is valid for `s.len()` bytes; Lua copies it.
    unsafe { ffi::lua_pushlstring(l, s.as_ptr() as *const c_char, s.len()) };
}

/// Sets `t[k] = n` for the table on top of the stack.
///
/// # Safety
///
/// `l` is valid, a table is on top of its stack, `k` is NUL-terminated.
unsafe fn set_int(l: *mut ffi::lua_State, k: &[u8], n: usize) {
    // SAFETY: table on top (caller); `k` NUL-terminated (caller).
    unsafe {
        ffi::lua_pushinteger(l, n.min(ffi::lua_Integer::MAX as usize) as ffi::lua_Integer);
        ffi::lua_setfield(l, -2, k.as_ptr() as *const c_char);
    }
}

/// Raises a Lua error with `msg`. Nothing with a destructor may be live in the caller's frames.
///
/// # Safety
///
/// `l` is a state running a C function.
unsafe fn raise(l: *mut ffi::lua_State, msg: &Msg) -> ! {
    // SAFETY: pushes a copy of the message, then unwinds the Lua way; `msg` is `Copy`.
    unsafe {
        ffi::luaL_where(l, 1);
        push_bytes(l, msg.bytes());
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

unsafe extern "C-unwind" fn l_backend(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `luaopen_lmem`.
    let m = unsafe { memory(l) };
    let name = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Lua is inside this C function, not the allocator; the guard is a temporary.
        let g = unsafe { m.enter() };
        Msg::new(&g.backend_name())
    }))
    .unwrap_or_else(|_| Msg::new("?"));
    // SAFETY: a C function has at least LUA_MINSTACK free slots.
    unsafe { push_bytes(l, name.bytes()) };
    1
}

unsafe extern "C-unwind" fn l_stats(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `luaopen_lmem`.
    let m = unsafe { memory(l) };
    let snap = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Lua is inside this C function, not the allocator; the guard drops before Lua
        // runs again.
        let mut g = unsafe { m.enter() };
        // SAFETY: `l` is the state the memory serves, in a C function.
        unsafe { g.settle(l) };
        let (s, backend, swaps, b) = (g.stats(), g.backend_name(), g.swaps(), g.backend_stats());
        let (limit, routing) = (g.limit(), g.is_routing());
        drop(g);
        let mut by_tag = [(0, 0); 8];
        for (i, t) in s.by_tag.iter().enumerate().take(8) {
            by_tag[i] = (t.bytes as usize, t.count as usize);
        }
        let mut histogram = [0; lmem::HISTOGRAM_BUCKETS];
        for (h, &n) in histogram.iter_mut().zip(s.histogram.buckets.iter()) {
            *h = n as usize;
        }
        Snapshot {
            live: s.live,
            peak: s.peak,
            allocations: s.allocations() as usize,
            frees: s.frees as usize,
            resizes: s.resizes as usize,
            failures: s.failures as usize,
            emergencies: s.emergencies as usize,
            bytes_allocated: s.bytes_allocated() as usize,
            limit,
            backend: Msg::new(&backend),
            swaps: swaps as usize,
            detailed: s.detailed,
            routing,
            uncounted: s.uncounted,
            reserved: b.reserved,
            by_tag,
            histogram,
        }
    }));
    let Ok(s) = snap else {
        // SAFETY: running a C function; nothing with a destructor is live here.
        unsafe { raise(l, &Msg::new("lmem.stats: internal error")) }
    };
    // SAFETY: a C function has LUA_MINSTACK (20) free slots; we use at most 4. Every key is
    // NUL-terminated.
    unsafe {
        ffi::lua_createtable(l, 0, 10);
        set_int(l, b"live\0", s.live);
        set_int(l, b"peak\0", s.peak);
        set_int(l, b"allocations\0", s.allocations);
        set_int(l, b"frees\0", s.frees);
        set_int(l, b"resizes\0", s.resizes);
        set_int(l, b"failures\0", s.failures);
        set_int(l, b"emergencies\0", s.emergencies);
        set_int(l, b"swaps\0", s.swaps);
        set_int(l, b"bytes_allocated\0", s.bytes_allocated);
        set_int(l, b"uncounted\0", s.uncounted);
        if let Some(limit) = s.limit {
            set_int(l, b"limit\0", limit);
        }
        if let Some(reserved) = s.reserved {
            set_int(l, b"reserved\0", reserved);
        }
        let counting: &[u8] = match (s.detailed, s.uncounted) {
            (false, _) => b"no",
            (true, 0) => b"from start",
            (true, _) => b"since require",
        };
        push_bytes(l, counting);
        ffi::lua_setfield(l, -2, c"counting".as_ptr());
        ffi::lua_pushboolean(l, s.routing as c_int);
        ffi::lua_setfield(l, -2, c"routing".as_ptr());
        push_bytes(l, s.backend.bytes());
        ffi::lua_setfield(l, -2, c"backend".as_ptr());
        ffi::lua_createtable(l, 0, 8);
        for t in Tag::ALL {
            let (bytes, count) = s.by_tag[t.index()];
            ffi::lua_createtable(l, 0, 2);
            set_int(l, b"bytes\0", bytes);
            set_int(l, b"count\0", count);
            push_bytes(l, t.name().as_bytes());
            ffi::lua_insert(l, -2);
            ffi::lua_settable(l, -3);
        }
        ffi::lua_setfield(l, -2, c"by_tag".as_ptr());
        ffi::lua_createtable(l, s.histogram.len() as c_int, 0);
        for (i, &n) in s.histogram.iter().enumerate() {
            ffi::lua_pushinteger(l, n as ffi::lua_Integer);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
        ffi::lua_setfield(l, -2, c"histogram".as_ptr());
    }
    1
}

#[allow(clippy::result_large_err)] // the error is a fixed buffer on purpose (see `Msg`)
unsafe extern "C-unwind" fn l_swap(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `luaopen_lmem`.
    let m = unsafe { memory(l) };
    let mut len = 0usize;
    // SAFETY: argument 1 is checked to be a string (raises a Lua error otherwise, with nothing
    // live here); the pointer stays valid while the string is on the stack.
    let name = unsafe {
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        std::slice::from_raw_parts(p as *const u8, len)
    };
    let outcome: Result<bool, (bool, Msg)> = catch_unwind(AssertUnwindSafe(|| {
        let Ok(name) = std::str::from_utf8(name) else {
            return Err((true, Msg::new("bad backend name")));
        };
        if !lmem::backends::is_compiled(name) {
            return Err((
                true,
                Msg::new(&format!(
                    "unknown backend '{name}' (compiled in: {})",
                    lmem::backends::names().join(", ")
                )),
            ));
        }
        // SAFETY: Lua is inside this C function, not the allocator; the guard drops before Lua
        // runs again.
        let mut g = unsafe { m.enter() };
        // SAFETY: `l` is the state the memory serves, in a C function.
        unsafe { g.swap_to(l, name) }.map_err(|e| (false, Msg::new(&e)))?;
        Ok(g.is_routing())
    }))
    .unwrap_or_else(|_| Err((true, Msg::new("lmem.swap: internal error"))));
    match outcome {
        Ok(routing) => {
            // SAFETY: a C function may allocate (a memory error unwinds only Lua frames and this
            // frame, which owns nothing with a destructor); free stack slots.
            unsafe {
                if routing {
                    watch(l);
                }
                ffi::lua_pushboolean(l, 1);
            }
            1
        }
        // SAFETY: running a C function; `msg` is `Copy`, nothing with a destructor is live.
        Err((true, msg)) => unsafe { raise(l, &msg) },
        Err((false, msg)) => {
            // SAFETY: free stack slots in a C function.
            unsafe {
                ffi::lua_pushnil(l);
                push_bytes(l, msg.bytes());
            }
            2
        }
    }
}

unsafe extern "C-unwind" fn l_limit(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `luaopen_lmem`.
    let m = unsafe { memory(l) };
    // SAFETY: Lua is inside this C function, not the allocator; the guard is a temporary.
    let previous = unsafe { m.enter() }.limit();
    // SAFETY: index 1 is a valid (maybe none) stack index.
    let ty = unsafe { ffi::lua_type(l, 1) };
    let new: Option<Option<usize>> = match ty {
        ffi::LUA_TNONE => None,
        ffi::LUA_TNIL => Some(None),
        // SAFETY: index 1 holds a boolean.
        ffi::LUA_TBOOLEAN if unsafe { ffi::lua_toboolean(l, 1) } == 0 => Some(None),
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            // SAFETY: index 1 holds a string; it stays on the stack while we read it.
            let bytes = unsafe {
                let p = ffi::lua_tolstring(l, 1, &mut len);
                std::slice::from_raw_parts(p as *const u8, len)
            };
            match std::str::from_utf8(bytes)
                .ok()
                .and_then(crate::options::parse_bytes)
            {
                Some(n) => Some(Some(n)),
                // SAFETY: running a C function, nothing with a destructor is live.
                None => unsafe {
                    raise(
                        l,
                        &Msg::new("bad argument #1 to 'limit' (bytes with K/M/G suffix expected)"),
                    )
                },
            }
        }
        _ => {
            let mut isnum = 0;
            // SAFETY: index 1 is valid.
            let n = unsafe { ffi::lua_tointegerx(l, 1, &mut isnum) };
            if isnum == 0 || n < 0 {
                // SAFETY: running a C function, nothing with a destructor is live.
                unsafe {
                    raise(
                        l,
                        &Msg::new("bad argument #1 to 'limit' (non-negative integer expected)"),
                    )
                }
            }
            Some(Some(n as usize))
        }
    };
    if let Some(limit) = new {
        // SAFETY: Lua is inside this C function, not the allocator; the guard is a temporary.
        unsafe { m.enter() }.set_limit(limit);
    }
    // SAFETY: free stack slot in a C function.
    unsafe {
        match previous {
            Some(n) => ffi::lua_pushinteger(l, n.min(ffi::lua_Integer::MAX as usize) as _),
            None => ffi::lua_pushnil(l),
        }
    }
    1
}

unsafe extern "C-unwind" fn l_trim(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `luaopen_lmem`.
    let m = unsafe { memory(l) };
    let reserved = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Lua is inside this C function, not the allocator; the guard drops here.
        let mut g = unsafe { m.enter() };
        g.trim();
        g.backend_stats().reserved
    }))
    .unwrap_or(None);
    // SAFETY: free stack slot in a C function.
    unsafe {
        match reserved {
            Some(n) => ffi::lua_pushinteger(l, n.min(ffi::lua_Integer::MAX as usize) as _),
            None => ffi::lua_pushnil(l),
        }
    }
    1
}

/// The sentinel's finalizer: settles the memory if it can, else leaves a new sentinel.
unsafe extern "C-unwind" fn l_sentinel(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `watch` with the memory's light userdata as upvalue 1.
    let m = unsafe { memory(l) };
    // SAFETY: a finalizer runs outside the allocation function; the guard drops here.
    let routing =
        catch_unwind(AssertUnwindSafe(|| unsafe { m.enter().settle(l) })).unwrap_or(false);
    if routing {
        // SAFETY: running a C function (the finalizer); nothing with a destructor is live.
        unsafe { watch(l) };
    }
    0
}

/// Leaves a sentinel: a garbage userdata whose `__gc` ([`l_sentinel`]) runs at the end of the
/// next collection cycle.
///
/// # Safety
///
/// `l` is a state whose registry holds [`REGISTRY_KEY`], in a C function or a protected call
/// with 3 free stack slots (this allocates and may raise a memory error).
pub unsafe fn watch(l: *mut ffi::lua_State) {
    // SAFETY: as the caller promises; every name is NUL-terminated.
    unsafe {
        ffi::lua_newuserdata(l, 1);
        if ffi::luaL_newmetatable(l, SENTINEL_KEY.as_ptr()) != 0 {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
            ffi::lua_pushcclosure(l, l_sentinel, 1);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pop(l, 1);
    }
}

/// Registry key of the sentinel's metatable.
const SENTINEL_KEY: &std::ffi::CStr = c"lmem.host.sentinel";

/// Registry key of the light userdata pointing at the host's [`Memory`].
pub const REGISTRY_KEY: &std::ffi::CStr = c"lmem.host.memory";

/// The `luaopen_lmem` function: builds the module table. Finds the [`Memory`] through the
/// registry field [`REGISTRY_KEY`] (set by [`preload`]).
///
/// # Safety
///
/// Called by Lua (through `require`).
pub unsafe extern "C-unwind" fn luaopen_lmem(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the registry field was set by `preload`; Lua is inside this C function.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
        let m = &*(ffi::lua_touserdata(l, -1) as *const Memory);
        ffi::lua_pop(l, 1);
        // Loading the module asks for the detailed figures; the guard is a temporary.
        let _ = catch_unwind(AssertUnwindSafe(|| m.enter().count_details(l)));
    }
    let funcs: [(&std::ffi::CStr, ffi::lua_CFunction); 5] = [
        (c"backend", l_backend),
        (c"stats", l_stats),
        (c"swap", l_swap),
        (c"limit", l_limit),
        (c"trim", l_trim),
    ];
    // SAFETY: a C function has LUA_MINSTACK free slots; we use 3. Names are NUL-terminated.
    unsafe {
        ffi::lua_createtable(l, 0, funcs.len() as c_int);
        for (name, f) in funcs {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}

/// Makes `require "lmem"` work in `l`: stores `memory` in the registry and puts
/// [`luaopen_lmem`] in `package.preload`; leaves a sentinel if a swap schedule keeps the state
/// routing.
///
/// # Safety
///
/// `l` is a valid state with the `package` library open and 3 free stack slots, running in a
/// protected call (this may raise memory errors); `memory` outlives the state.
pub unsafe fn preload(l: *mut ffi::lua_State, memory: &Memory) {
    // SAFETY: as the caller promises; the pointer is only read back as `&Memory`.
    unsafe {
        ffi::lua_pushlightuserdata(l, memory as *const Memory as *mut c_void);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
        if memory.enter().is_routing() {
            watch(l);
        }
        ffi::lua_getglobal(l, c"package".as_ptr());
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            ffi::lua_getfield(l, -1, c"preload".as_ptr());
            if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                ffi::lua_pushcfunction(l, luaopen_lmem);
                ffi::lua_setfield(l, -2, c"lmem".as_ptr());
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
    }
}
