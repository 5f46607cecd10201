#![doc = include_str!("../README.md")]

pub mod ffi;

use lmem::{BackendStats, Stats, Tag};
use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The memory of a state, as the module reaches it.
pub trait Memory {
    /// Access while no allocation runs.
    type Guard<'a>: Guard
    where
        Self: 'a;

    /// Reaches the memory between allocation calls.
    ///
    /// # Safety
    ///
    /// Lua is not inside the allocation function, and does not enter it while the guard lives
    /// (the module calls this from its C functions and drops the guard before touching Lua).
    unsafe fn enter(&self) -> Self::Guard<'_>;
}

/// What the module's functions ask of the memory, while no allocation runs.
pub trait Guard {
    /// Name of the backend new blocks come from.
    fn backend_name(&self) -> String;
    /// The accounting.
    fn stats(&self) -> Stats;
    /// What the backends say about the memory they hold.
    fn backend_stats(&self) -> BackendStats;
    /// Backend switches done so far.
    fn swaps(&mut self) -> u64;
    /// The byte limit in force.
    fn limit(&self) -> Option<usize>;
    /// Sets (or with `None` lifts) the byte limit; returns the previous one.
    fn set_limit(&mut self, limit: Option<usize>) -> Option<usize>;
    /// Gives the backends' unused memory back to their pools and the OS.
    fn trim(&mut self);
    /// Whether calls are routed through a swap chain.
    fn is_routing(&mut self) -> bool;
    /// Whether a sentinel should watch for the chain to settle: by default while routing; a
    /// memory whose chain cannot settle while the state lives says `false`.
    fn needs_sentinel(&mut self) -> bool {
        self.is_routing()
    }
    /// Starts the detailed figures if they are not counted yet, handing `l` the new pair.
    ///
    /// # Safety
    ///
    /// `l` is the state this memory serves, running a C function (not the allocator).
    unsafe fn count_details(&mut self, l: *mut ffi::lua_State);
    /// Switches new allocations to backend `name` (compiled in: the module checked), handing
    /// `l` the new pair; the error says why the swap is refused.
    ///
    /// # Safety
    ///
    /// As [`Guard::count_details`].
    unsafe fn swap_to(&mut self, l: *mut ffi::lua_State, name: &str) -> Result<(), String>;
    /// Hands `l` the lean function again if the swap chain has settled; returns whether the
    /// state is still routing.
    ///
    /// # Safety
    ///
    /// As [`Guard::count_details`].
    unsafe fn settle(&mut self, l: *mut ffi::lua_State) -> bool;
}

/// A short message in a fixed buffer: `Copy`, so no destructor is pending when Lua unwinds.
#[derive(Clone, Copy)]
pub struct Msg {
    buf: [u8; 240],
    len: usize,
}

impl Msg {
    /// `text`, cut to 240 bytes.
    pub fn new(text: &str) -> Msg {
        let mut m = Msg {
            buf: [0; 240],
            len: 0,
        };
        let mut n = text.len().min(m.buf.len());
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        m.buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        m.len = n;
        m
    }

    /// The text's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Raises a Lua error with `msg`, prefixed with the position (`luaL_where(l, 1)`). Nothing with
/// a destructor may be live in the caller's frames.
///
/// # Safety
///
/// `l` is a state running a C function.
pub unsafe fn raise(l: *mut ffi::lua_State, msg: &Msg) -> ! {
    // SAFETY: pushes a copy of the message, then unwinds the Lua way; `msg` is `Copy`.
    unsafe {
        ffi::luaL_where(l, 1);
        ffi::push_bytes(l, msg.bytes());
        ffi::lua_concat(l, 2);
        ffi::lua_error(l);
    }
    unreachable!("lua_error returned")
}

/// Parses a byte count: digits with an optional `K`, `M` or `G` suffix (powers of 1024; a
/// trailing `B`/`iB` is accepted: `64K`, `64KB`, `64KiB`).
pub fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match body.chars().last()? {
        'K' => (&body[..body.len() - 1], 10),
        'M' => (&body[..body.len() - 1], 20),
        'G' => (&body[..body.len() - 1], 30),
        _ => (body, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    n.checked_mul(1usize << shift)
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

/// The memory behind the running C function (its first upvalue).
///
/// # Safety
///
/// `l` is a state running one of this module's functions for memory type `M`, registered by
/// [`open`] or [`watch`], whose memory outlives the state's use of it.
unsafe fn memory<'a, M: Memory>(l: *mut ffi::lua_State) -> &'a M {
    // SAFETY: upvalue 1 is the light userdata `open`/`watch` were given: a pointer to the live
    // memory (caller).
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const M) }
}

/// Sets `t[k] = n` for the table on top of the stack.
///
/// # Safety
///
/// `l` is valid, a table is on top of its stack, `k` is NUL-terminated.
unsafe fn set_int(l: *mut ffi::lua_State, k: &CStr, n: usize) {
    // SAFETY: table on top (caller); `k` NUL-terminated (a `CStr`).
    unsafe {
        ffi::lua_pushinteger(l, n.min(ffi::lua_Integer::MAX as usize) as ffi::lua_Integer);
        ffi::lua_setfield(l, -2, k.as_ptr());
    }
}

/// Pushes `n` as an integer, or nil.
///
/// # Safety
///
/// `l` is valid with a free stack slot.
unsafe fn push_opt(l: *mut ffi::lua_State, n: Option<usize>) {
    // SAFETY: as the caller promises.
    unsafe {
        match n {
            Some(n) => ffi::lua_pushinteger(l, n.min(ffi::lua_Integer::MAX as usize) as _),
            None => ffi::lua_pushnil(l),
        }
    }
}

unsafe extern "C-unwind" fn l_backend<M: Memory>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `open`.
    let m = unsafe { memory::<M>(l) };
    let name = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Lua is inside this C function, not the allocator; the guard is a temporary.
        let g = unsafe { m.enter() };
        Msg::new(&g.backend_name())
    }))
    .unwrap_or_else(|_| Msg::new("?"));
    // SAFETY: a C function has at least LUA_MINSTACK free slots.
    unsafe { ffi::push_bytes(l, name.bytes()) };
    1
}

unsafe extern "C-unwind" fn l_stats<M: Memory>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `open`.
    let m = unsafe { memory::<M>(l) };
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
        set_int(l, c"live", s.live);
        set_int(l, c"peak", s.peak);
        set_int(l, c"allocations", s.allocations);
        set_int(l, c"frees", s.frees);
        set_int(l, c"resizes", s.resizes);
        set_int(l, c"failures", s.failures);
        set_int(l, c"emergencies", s.emergencies);
        set_int(l, c"swaps", s.swaps);
        set_int(l, c"bytes_allocated", s.bytes_allocated);
        set_int(l, c"uncounted", s.uncounted);
        if let Some(limit) = s.limit {
            set_int(l, c"limit", limit);
        }
        if let Some(reserved) = s.reserved {
            set_int(l, c"reserved", reserved);
        }
        let counting: &[u8] = match (s.detailed, s.uncounted) {
            (false, _) => b"no",
            (true, 0) => b"from start",
            (true, _) => b"since require",
        };
        ffi::push_bytes(l, counting);
        ffi::lua_setfield(l, -2, c"counting".as_ptr());
        ffi::lua_pushboolean(l, s.routing as c_int);
        ffi::lua_setfield(l, -2, c"routing".as_ptr());
        ffi::push_bytes(l, s.backend.bytes());
        ffi::lua_setfield(l, -2, c"backend".as_ptr());
        ffi::lua_createtable(l, 0, 8);
        for t in Tag::ALL {
            let (bytes, count) = s.by_tag[t.index()];
            ffi::lua_createtable(l, 0, 2);
            set_int(l, c"bytes", bytes);
            set_int(l, c"count", count);
            ffi::push_bytes(l, t.name().as_bytes());
            ffi::insert(l, -2);
            ffi::lua_settable(l, -3);
        }
        ffi::lua_setfield(l, -2, c"by_tag".as_ptr());
        ffi::lua_createtable(l, s.histogram.len() as c_int, 0);
        for (i, &n) in s.histogram.iter().enumerate() {
            ffi::lua_pushinteger(l, n.min(ffi::lua_Integer::MAX as usize) as ffi::lua_Integer);
            ffi::raw_set_i(l, -2, i as i64 + 1);
        }
        ffi::lua_setfield(l, -2, c"histogram".as_ptr());
    }
    1
}

#[allow(clippy::result_large_err)] // the error is a fixed buffer on purpose (see `Msg`)
unsafe extern "C-unwind" fn l_swap<M: Memory>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `open`.
    let m = unsafe { memory::<M>(l) };
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
        Ok(g.needs_sentinel())
    }))
    .unwrap_or_else(|_| Err((true, Msg::new("lmem.swap: internal error"))));
    match outcome {
        Ok(watched) => {
            // SAFETY: a C function may allocate (a memory error unwinds only Lua frames and this
            // frame, which owns nothing with a destructor); free stack slots.
            unsafe {
                if watched {
                    watch(l, m as *const M);
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
                ffi::push_bytes(l, msg.bytes());
            }
            2
        }
    }
}

unsafe extern "C-unwind" fn l_limit<M: Memory>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `open`.
    let m = unsafe { memory::<M>(l) };
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
            match std::str::from_utf8(bytes).ok().and_then(parse_bytes) {
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
            // SAFETY: index 1 is valid.
            match unsafe { ffi::to_integer(l, 1) } {
                Some(n) if n >= 0 => Some(Some(n as usize)),
                // SAFETY: running a C function, nothing with a destructor is live.
                _ => unsafe {
                    raise(
                        l,
                        &Msg::new("bad argument #1 to 'limit' (non-negative integer expected)"),
                    )
                },
            }
        }
    };
    if let Some(limit) = new {
        // SAFETY: Lua is inside this C function, not the allocator; the guard is a temporary.
        unsafe { m.enter() }.set_limit(limit);
    }
    // SAFETY: free stack slot in a C function.
    unsafe { push_opt(l, previous) };
    1
}

unsafe extern "C-unwind" fn l_trim<M: Memory>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `open`.
    let m = unsafe { memory::<M>(l) };
    let reserved = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Lua is inside this C function, not the allocator; the guard drops here.
        let mut g = unsafe { m.enter() };
        g.trim();
        g.backend_stats().reserved
    }))
    .unwrap_or(None);
    // SAFETY: free stack slot in a C function.
    unsafe { push_opt(l, reserved) };
    1
}

/// The sentinel's finalizer: settles the memory if it can, else leaves a new sentinel.
unsafe extern "C-unwind" fn l_sentinel<M: Memory>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `watch` with the memory's light userdata as upvalue 1.
    let m = unsafe { memory::<M>(l) };
    let again = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a finalizer runs outside the allocation function; the guard drops here.
        let mut g = unsafe { m.enter() };
        // SAFETY: as above; `l` is the state the memory serves.
        unsafe { g.settle(l) };
        g.needs_sentinel()
    }))
    .unwrap_or(false);
    if again {
        // SAFETY: running a C function (the finalizer); nothing with a destructor is live.
        unsafe { watch(l, m as *const M) };
    }
    0
}

/// Registry key of the sentinel's metatable.
const SENTINEL_KEY: &CStr = c"lmem.sentinel";

/// Leaves a sentinel: a garbage userdata whose `__gc` asks `memory` to settle at the end of the
/// next collection cycle (see the crate docs). The sentinels' metatable is made once per state,
/// for the first `memory` given: a state has one memory.
///
/// # Safety
///
/// `l` is a state served by `memory`, which outlives it, in a C function or a protected call
/// with 3 free stack slots (this allocates and may raise a memory error).
pub unsafe fn watch<M: Memory>(l: *mut ffi::lua_State, memory: *const M) {
    // SAFETY: as the caller promises; every name is NUL-terminated.
    unsafe {
        ffi::new_userdata(l, 1);
        if ffi::luaL_newmetatable(l, SENTINEL_KEY.as_ptr()) != 0 {
            ffi::lua_pushlightuserdata(l, memory as *mut c_void);
            ffi::lua_pushcclosure(l, l_sentinel::<M>, 1);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pop(l, 1);
    }
}

/// Opens the module on `memory`: asks it for the detailed figures, then pushes the module table
/// (each function holds `memory` as a light userdata upvalue). Returns 1, the number of results
/// a `luaopen_` function returns.
///
/// # Safety
///
/// `l` is a state served by `memory`, which outlives it, running a C function (a `luaopen_`
/// function) with 3 free stack slots.
pub unsafe fn open<M: Memory>(l: *mut ffi::lua_State, memory: *const M) -> c_int {
    // SAFETY: `memory` is live (caller); Lua is inside this C function, not the allocator; the
    // guard is a temporary.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        (*memory).enter().count_details(l)
    }));
    let funcs: [(&CStr, ffi::lua_CFunction); 5] = [
        (c"backend", l_backend::<M>),
        (c"stats", l_stats::<M>),
        (c"swap", l_swap::<M>),
        (c"limit", l_limit::<M>),
        (c"trim", l_trim::<M>),
    ];
    // SAFETY: a C function has LUA_MINSTACK free slots; we use 3. Names are NUL-terminated.
    unsafe {
        ffi::lua_createtable(l, 0, funcs.len() as c_int);
        for (name, f) in funcs {
            ffi::lua_pushlightuserdata(l, memory as *mut c_void);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}

/// Reads a light userdata the registry holds at `key` (null when there is none).
///
/// # Safety
///
/// `l` is valid with a free stack slot; `key` is NUL-terminated.
pub unsafe fn registry_pointer(l: *mut ffi::lua_State, key: &CStr) -> *mut c_void {
    // SAFETY: as the caller promises; a field of the registry is read and popped.
    unsafe {
        ffi::get_field(l, ffi::LUA_REGISTRYINDEX, key.as_ptr());
        let p = ffi::lua_touserdata(l, -1);
        ffi::lua_pop(l, 1);
        p
    }
}

/// Stores `p` as a light userdata in the registry at `key`.
///
/// # Safety
///
/// `l` is valid with a free stack slot, in a C function or protected call (may raise a memory
/// error); `key` is NUL-terminated.
pub unsafe fn set_registry_pointer(l: *mut ffi::lua_State, key: &CStr, p: *mut c_void) {
    // SAFETY: as the caller promises.
    unsafe {
        ffi::lua_pushlightuserdata(l, p);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, key.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_take_suffixes() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("64K"), Some(64 << 10));
        assert_eq!(parse_bytes("64kb"), Some(64 << 10));
        assert_eq!(parse_bytes("2M"), Some(2 << 20));
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        for bad in ["", "K", "-1", "1.5M", "12Q", "1TB"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_message_is_cut_on_a_character_boundary() {
        let long = "é".repeat(200);
        let m = Msg::new(&long);
        assert!(m.bytes().len() <= 240);
        assert!(std::str::from_utf8(m.bytes()).is_ok());
        assert_eq!(Msg::new("short").bytes(), b"short");
    }
}
