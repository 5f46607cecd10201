#![doc = include_str!("../README.md")]

use lmem_core::{AnyBackend, ExactBackend, ForeignAlloc, Install, Session};
use lmem_module_core::{self as module, Msg, ffi};
use std::cell::Cell;
use std::ffi::{CStr, c_int, c_void};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

/// Registry key of the light userdata pointing at the state's [`Stock`] memory.
const MEMORY_KEY: &CStr = c"lmem.module.memory";
/// Registry key of the closer (see the crate docs).
const CLOSER_KEY: &CStr = c"lmem.module.closer";
/// Registry key `lmem-lua` keeps its own memory at: such a state is lmem's already.
const HOST_KEY: &CStr = c"lmem.host.memory";

/// The memory of one taken-over state.
struct Stock {
    alloc: lmem_core::Allocator,
    /// Set by the closer: Lua holds [`closing_alloc`], which forwards to the allocator's pair,
    /// so a change of pair must not be handed to Lua any more.
    closing: Cell<bool>,
    /// The state's main block, whose free is the last call of `lua_close` (set by the closer).
    main_block: Cell<*mut c_void>,
    /// Report on stderr after `lua_close` (`LMEM_STATS`).
    report: bool,
}

/// [`Stock`] between allocation calls.
struct StockGuard<'a> {
    session: Session<'a>,
    closing: bool,
}

impl StockGuard<'_> {
    /// Hands `l` the pair, unless the closer's function holds it (it forwards to the new pair).
    ///
    /// # Safety
    ///
    /// `l` is the state this memory serves, not inside its allocation function.
    unsafe fn install(&self, l: *mut ffi::lua_State, install: Option<Install>) {
        if let Some(i) = install
            && !self.closing
        {
            // SAFETY: `l` is valid and between allocation calls (caller); the pair is the one
            // Lua must hold from now on, and lives in the allocator, which outlives the state.
            unsafe { ffi::lua_setallocf(l, i.function, i.ud) };
        }
    }
}

impl module::Memory for Stock {
    type Guard<'a> = StockGuard<'a>;

    unsafe fn enter(&self) -> StockGuard<'_> {
        StockGuard {
            // SAFETY: the caller's promise is the one `Allocator::enter` asks for.
            session: unsafe { self.alloc.enter() },
            closing: self.closing.get(),
        }
    }
}

impl module::Guard for StockGuard<'_> {
    fn backend_name(&self) -> String {
        self.session.backend()
    }
    fn stats(&self) -> lmem_core::Stats {
        self.session.stats()
    }
    fn backend_stats(&self) -> lmem_core::BackendStats {
        self.session.backend_stats()
    }
    fn swaps(&mut self) -> u64 {
        self.session.swaps()
    }
    fn limit(&self) -> Option<usize> {
        self.session.limit()
    }
    fn set_limit(&mut self, limit: Option<usize>) -> Option<usize> {
        self.session.set_limit(limit)
    }
    fn trim(&mut self) {
        self.session.trim()
    }
    fn is_routing(&mut self) -> bool {
        self.session.is_routing()
    }
    fn needs_sentinel(&mut self) -> bool {
        // The interpreter's allocator holds the main block until `lua_close`: a chain with it
        // never settles while the state lives.
        false
    }
    unsafe fn count_details(&mut self, l: *mut ffi::lua_State) {
        let i = self.session.count_details();
        // SAFETY: as ours.
        unsafe { self.install(l, i) };
    }
    unsafe fn swap_to(&mut self, l: *mut ffi::lua_State, name: &str) -> Result<(), String> {
        let next = swap_target(name)?;
        let i = self.session.swap_to(next);
        // SAFETY: as ours.
        unsafe { self.install(l, i) };
        Ok(())
    }
    unsafe fn settle(&mut self, l: *mut ffi::lua_State) -> bool {
        let i = self.session.settle();
        // SAFETY: as ours.
        unsafe { self.install(l, i) };
        self.session.is_routing()
    }
}

/// The compiled-in backends a state can be swapped to: those that tell their own blocks.
fn exact_names() -> Vec<&'static str> {
    lmem_core::backends::names()
        .into_iter()
        .filter(|n| lmem_core::backends::declares_exact_ownership(n) == Some(true))
        .collect()
}

/// Backend `name` as a swap target, if it tells its own blocks.
fn swap_target(name: &str) -> Result<ExactBackend, String> {
    let any = AnyBackend::by_name(name).ok_or_else(|| {
        format!(
            "unknown backend '{name}' (compiled in: {})",
            lmem_core::backends::names().join(", ")
        )
    })?;
    ExactBackend::declared(any).map_err(|_| {
        format!(
            "cannot swap to '{name}': its blocks cannot be told from the blocks the \
             interpreter's own allocator made before; swap to a backend that tells its own \
             blocks ({})",
            exact_names().join(", ")
        )
    })
}

/// Pins this shared object so that `dlclose` (Lua's, during `lua_close`) never unloads it: the
/// state frees blocks through its code after that. Done once per process.
fn pin() -> Result<(), String> {
    static PINNED: OnceLock<Result<(), String>> = OnceLock::new();
    PINNED
        .get_or_init(|| {
            // SAFETY: `Dl_info` is plain data, all-zero is a valid value.
            let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
            let addr = luaopen_lmem as *const c_void;
            // SAFETY: `addr` is an address in this object; `info` is writable.
            if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
                return Err("cannot find the module's own file (dladdr)".to_owned());
            }
            // SAFETY: `dli_fname` is a NUL-terminated path (dladdr); the object is loaded
            // already, so this only takes a reference, which is never closed.
            let handle =
                unsafe { libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NODELETE) };
            if handle.is_null() {
                // SAFETY: dlerror returns null or a NUL-terminated message.
                let why = unsafe {
                    let e = libc::dlerror();
                    if e.is_null() {
                        "unknown error".to_owned()
                    } else {
                        CStr::from_ptr(e).to_string_lossy().into_owned()
                    }
                };
                return Err(format!("cannot keep the module loaded (dlopen): {why}"));
            }
            Ok(())
        })
        .clone()
}

/// Whether an environment variable is set to something true (not empty, not `0`).
fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Takes over `l`'s memory: everything but what allocates Lua memory. Returns the new memory,
/// which Lua's allocation function now uses.
///
/// # Safety
///
/// `l` is a state running `luaopen_lmem`, not yet taken over.
unsafe fn take_over(l: *mut ffi::lua_State) -> Result<*mut Stock, String> {
    #[cfg(not(feature = "lua51"))]
    {
        // SAFETY: `l` is valid (caller).
        let v = unsafe { ffi::lua_version(l) };
        if v != f64::from(ffi::LUA_VERSION_NUM) {
            return Err(format!(
                "this lmem module was built for Lua {}.{}, not for the Lua {} loading it",
                ffi::LUA_VERSION_NUM / 100,
                ffi::LUA_VERSION_NUM % 100,
                v
            ));
        }
    }
    let target = match std::env::var("LMEM_BACKEND") {
        Ok(name) if !name.is_empty() => {
            Some(swap_target(&name).map_err(|e| format!("LMEM_BACKEND={name}: {e}"))?)
        }
        Ok(_) => None,
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err("LMEM_BACKEND is not valid UTF-8".to_owned());
        }
    };
    pin()?;
    // SAFETY: `l` is valid and in a C function, not in its allocator.
    let live = unsafe { ffi::gc_count(l) }.ok_or_else(|| {
        "cannot take over the state's memory while the collector is stopped (inside a \
         finalizer): require it elsewhere"
            .to_owned()
    })?;
    let mut ud = std::ptr::null_mut();
    // SAFETY: `l` is valid; `ud` is writable.
    let function = unsafe { ffi::lua_getallocf(l, &mut ud) }
        .ok_or_else(|| "the state has no allocation function".to_owned())?;
    // SAFETY: the state's own pair keeps the `lua_Alloc` contract, and stays valid: nothing
    // replaces or frees it while the state lives but this module, which keeps it inside. Its
    // blocks are malloc's (16-aligned) in the stock interpreter.
    let foreign = unsafe { ForeignAlloc::new(function, ud) };
    let stock = Box::new(Stock {
        alloc: lmem_core::Allocator::take_over(AnyBackend::new(foreign), live),
        closing: Cell::new(false),
        main_block: Cell::new(std::ptr::null_mut()),
        report: env_flag("LMEM_STATS"),
    });
    {
        // SAFETY: Lua is inside this C function, not its allocator; the session ends here.
        let mut s = unsafe { stock.alloc.enter() };
        let mut install = s.count_details();
        if let Some(next) = target {
            install = s.swap_to(next).or(install);
        }
        if let Some(i) = install {
            // SAFETY: `l` is between allocation calls; the pair lives in `stock`, which outlives
            // the state (see the crate docs). Nothing allocates from Lua between reading the
            // count above and this call.
            unsafe { ffi::lua_setallocf(l, i.function, i.ud) };
        }
    }
    Ok(Box::into_raw(stock))
}

/// Leaves the closer: a userdata anchored in the registry whose `__gc` ([`l_closer`]) runs when
/// the state is closed.
///
/// # Safety
///
/// `l` is a state served by `stock`, in a C function with 3 free stack slots (allocates).
unsafe fn arm_closer(l: *mut ffi::lua_State, stock: *const Stock) {
    // SAFETY: as the caller promises; names are NUL-terminated.
    unsafe {
        ffi::new_userdata(l, 1);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushlightuserdata(l, stock as *mut c_void);
        ffi::lua_pushcclosure(l, l_closer, 1);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, CLOSER_KEY.as_ptr());
    }
}

/// The state's main block, given its main thread (the `LG` block of `lstate.c`: 5.4 puts
/// `LUA_EXTRASPACE`, one pointer, before the thread; 5.1 nothing).
fn main_block(main: *mut ffi::lua_State) -> *mut c_void {
    #[cfg(feature = "lua51")]
    let extra = 0;
    #[cfg(not(feature = "lua51"))]
    let extra = std::mem::size_of::<*mut c_void>();
    main.cast::<u8>().wrapping_sub(extra).cast()
}

/// The closer's finalizer: runs once the state is being closed (the closer is anchored in the
/// registry), on its main thread. From now on Lua holds [`closing_alloc`].
unsafe extern "C-unwind" fn l_closer(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: registered by `arm_closer` with the memory as upvalue 1.
    let stock = unsafe { ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) } as *mut Stock;
    // SAFETY: a finalizer is a C function with free stack slots; the thread is popped again.
    let main = unsafe {
        let main = ffi::lua_pushthread(l) == 1;
        ffi::lua_pop(l, 1);
        main
    };
    if !main {
        // Not `lua_close` (which runs finalizers on the main thread): the closer was made
        // unreachable by hand. Leave another one.
        // SAFETY: in a finalizer, a C function; nothing with a destructor is live.
        unsafe { arm_closer(l, stock) };
        return 0;
    }
    // SAFETY: the memory lives until `closing_alloc` frees it, which is after this.
    let s = unsafe { &*stock };
    if !s.closing.replace(true) {
        s.main_block.set(main_block(l));
        // SAFETY: a finalizer runs between allocation calls; `stock` stays live until the main
        // block's free, the state's last call.
        unsafe { ffi::lua_setallocf(l, closing_alloc, stock.cast()) };
    }
    0
}

/// The allocation function from the closer on: forwards to the allocator's current pair, and
/// frees the allocator after forwarding the free of the state's main block (its last call).
unsafe extern "C" fn closing_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    let stock = ud as *mut Stock;
    // SAFETY: `ud` is the live memory the closer installed.
    let (function, fud, last) = unsafe {
        let s = &*stock;
        let last = nsize == 0 && !ptr.is_null() && ptr == s.main_block.get();
        (s.alloc.function(), s.alloc.ud(), last)
    };
    // SAFETY: Lua's call, passed on unchanged to the pair Lua would hold otherwise.
    let r = unsafe { function(fud, ptr, osize, nsize) };
    if last {
        // SAFETY: the main block was the state's last block: Lua calls no allocation function
        // of it again, so the memory can go.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { finish(stock) }));
    }
    r
}

/// Frees the memory after `lua_close`'s last free, reporting first if asked.
///
/// # Safety
///
/// `stock` came from [`take_over`], and its state makes no more calls.
unsafe fn finish(stock: *mut Stock) {
    // SAFETY: made by `Box::into_raw` in `take_over`, freed only here (caller).
    let stock = unsafe { Box::from_raw(stock) };
    if stock.report {
        // SAFETY: no allocation runs: the state is gone.
        let mut s = unsafe { stock.alloc.enter() };
        let _ = s.settle();
        // Signed: a count that started short (see the crate docs) ends below zero.
        let (live, settled) = (s.live() as isize, !s.is_routing());
        drop(s);
        let _ = writeln!(
            std::io::stderr(),
            "lmem: live after lua_close: {live} bytes\n\
             lmem: every backend got its blocks back: {}",
            if settled { "yes" } else { "no" }
        );
    }
    drop(stock);
}

/// `require "lmem"`: takes over the state's memory the first time (see the crate docs), then
/// opens the module on it.
///
/// # Safety
///
/// Called by Lua (through `require` or `package.loadlib`), as a C function.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_lmem(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a C function has free stack slots; the key is NUL-terminated.
    let mut stock = unsafe { module::registry_pointer(l, MEMORY_KEY) } as *mut Stock;
    if stock.is_null() {
        // SAFETY: as above.
        if !unsafe { module::registry_pointer(l, HOST_KEY) }.is_null() {
            let msg = Msg::new("lmem: this state's memory is lmem-lua's: its own module is there");
            // SAFETY: running a C function; nothing with a destructor is live.
            unsafe { module::raise(l, &msg) }
        }
        // SAFETY: `l` runs this C function and is not taken over (no registry entry).
        let taken = catch_unwind(AssertUnwindSafe(|| unsafe { take_over(l) }))
            .unwrap_or_else(|_| Err("internal error".to_owned()))
            .map_err(|e| Msg::new(&format!("lmem: {e}")));
        stock = match taken {
            Ok(stock) => stock,
            // SAFETY: running a C function; `msg` is `Copy`, nothing with a destructor is live.
            Err(msg) => unsafe { module::raise(l, &msg) },
        };
        // SAFETY: a C function with free stack slots; `stock` lives as long as the state.
        // These allocate through the new allocator (a memory error leaves the state taken over
        // without its registry entry: still sound, the memory is then never freed).
        unsafe {
            module::set_registry_pointer(l, MEMORY_KEY, stock.cast());
            arm_closer(l, stock);
        }
    }
    // SAFETY: `stock` serves `l` and outlives it; a C function with free stack slots.
    let n = unsafe { module::open(l, stock as *const Stock) };
    #[cfg(feature = "lua51")]
    // SAFETY: the module table is on top; 5.1's modules set their global (as `luaL_register`).
    unsafe {
        ffi::lua_pushvalue(l, -1);
        ffi::set_global(l, c"lmem".as_ptr());
    }
    n
}
