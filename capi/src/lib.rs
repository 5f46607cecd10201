#![doc = include_str!("../README.md")]
// The C names are the API: `lmem_allocator`, `lmem_statistics`, `LMEM_TYPE_STRING`, ...
#![allow(non_camel_case_types)]

use lmem::{Allocator, HISTOGRAM_BUCKETS, Session, Tag};
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lua's `lua_Alloc`: the allocation function a state calls for every block. NULL only where
/// a function of this library failed (`lmem_function(NULL)`).
pub type lmem_alloc_fn = Option<
    unsafe extern "C" fn(
        ud: *mut c_void,
        ptr: *mut c_void,
        osize: usize,
        nsize: usize,
    ) -> *mut c_void,
>;

/// The memory of one Lua state: a backend chosen by name behind the `lua_Alloc` function and
/// `ud` that the state holds. Made by `lmem_new` or `lmem_new_detailed`, destroyed by `lmem_free`
/// after `lua_close`. Opaque.
pub struct lmem_allocator {
    alloc: Allocator,
    /// The thread that made it: the only one that may use it (some backends, such as mimalloc's
    /// heaps, belong to the thread that made them).
    thread: u64,
    /// The backend's name as a C string, when it is not one of `lmem_backends()`.
    name: RefCell<Option<CString>>,
}

/// Number of Lua types in `lmem_statistics.by_type`.
pub const LMEM_TYPES: usize = 8;

/// Number of size buckets in `lmem_statistics.sizes`.
pub const LMEM_SIZE_BUCKETS: usize = 18;

const _: () = assert!(LMEM_TYPES == Tag::COUNT);
const _: () = assert!(LMEM_SIZE_BUCKETS == HISTOGRAM_BUCKETS);

/// The Lua types of new blocks, as indices into `lmem_statistics.by_type` (these are not Lua's type
/// numbers: `LUA_TSTRING` is 4, `LMEM_TYPE_STRING` is 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lmem_type {
    /// Strings (`LUA_TSTRING`).
    LMEM_TYPE_STRING = 0,
    /// Tables, and their array and hash parts (`LUA_TTABLE`).
    LMEM_TYPE_TABLE = 1,
    /// Closures (`LUA_TFUNCTION`).
    LMEM_TYPE_FUNCTION = 2,
    /// Full userdata (`LUA_TUSERDATA`).
    LMEM_TYPE_USERDATA = 3,
    /// Coroutines and the main thread (`LUA_TTHREAD`).
    LMEM_TYPE_THREAD = 4,
    /// Upvalues (`LUA_TUPVAL`).
    LMEM_TYPE_UPVALUE = 5,
    /// Function prototypes (`LUA_TPROTO`).
    LMEM_TYPE_PROTO = 6,
    /// Everything else: vectors, buffers, stacks, and blocks the host allocates itself.
    LMEM_TYPE_OTHER = 7,
}

const _: () = {
    assert!(lmem_type::LMEM_TYPE_STRING as usize == Tag::String.index());
    assert!(lmem_type::LMEM_TYPE_TABLE as usize == Tag::Table.index());
    assert!(lmem_type::LMEM_TYPE_FUNCTION as usize == Tag::Function.index());
    assert!(lmem_type::LMEM_TYPE_USERDATA as usize == Tag::Userdata.index());
    assert!(lmem_type::LMEM_TYPE_THREAD as usize == Tag::Thread.index());
    assert!(lmem_type::LMEM_TYPE_UPVALUE as usize == Tag::Upvalue.index());
    assert!(lmem_type::LMEM_TYPE_PROTO as usize == Tag::Proto.index());
    assert!(lmem_type::LMEM_TYPE_OTHER as usize == Tag::Other.index());
};

/// The names `lmem_type_name` gives, in `lmem_type` order (Lua's `type()` names, plus
/// `upvalue`, `proto` and `other`).
const TYPE_NAMES: [&CStr; LMEM_TYPES] = [
    c"string",
    c"table",
    c"function",
    c"userdata",
    c"thread",
    c"upvalue",
    c"proto",
    c"other",
];

/// New blocks made for one Lua type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lmem_type_stats {
    /// New blocks made for this type.
    pub count: u64,
    /// Bytes those new blocks asked for (a block's later growth is in `grown`).
    pub bytes: u64,
}

/// What `lmem_stats` reads. Sizes are the bytes Lua asked for (its `osize`/`nsize`), before any
/// rounding by the backend, except the `backend_*` fields, which are the backend's own view.
///
/// Always counted: `live`, `limit`, `failures`, `swaps`, `routing` and the `backend_*` fields.
/// The detailed figures (`uncounted` to `sizes`) are counted only when `detailed` is true (the
/// allocator was made by `lmem_new_detailed`, or `lmem_count_details` was called); otherwise
/// they read 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lmem_statistics {
    /// Bytes in live blocks: what Lua counts as its memory (`collectgarbage("count")` * 1024).
    /// Exact on every path; 0 after `lua_close` unless a block leaked.
    pub live: usize,
    /// The limit on `live` in force, 0 when there is none.
    pub limit: usize,
    /// Requests that failed (past the limit, or the backend had no memory): each one made Lua
    /// run an emergency collection and, if that did not help, raise `not enough memory`.
    pub failures: u64,
    /// Backend swaps made so far (`lmem_swap`).
    pub swaps: u64,
    /// Whether calls are routed through a swap chain: a swap was made and an older backend
    /// still holds blocks (until `lmem_settle` succeeds).
    pub routing: bool,
    /// Whether the detailed figures below are counted.
    pub detailed: bool,
    /// Bytes that were live when detailed counting began: 0 for `lmem_new_detailed`, the live
    /// bytes of that moment for `lmem_count_details`. The counts below never saw those blocks.
    pub uncounted: usize,
    /// Highest `live` since detailed counting began (at least `uncounted`).
    pub peak: usize,
    /// New blocks made (the sum of `by_type[i].count`).
    pub allocations: u64,
    /// Blocks freed.
    pub frees: u64,
    /// Blocks resized (grown or shrunk).
    pub resizes: u64,
    /// Bytes added by growing resizes.
    pub grown: u64,
    /// New blocks per Lua type, indexed by `lmem_type`: how many were made and the bytes they
    /// asked for, since detailed counting began. These count allocations, not what is live now
    /// (a free does not say the type of its block).
    pub by_type: [lmem_type_stats; LMEM_TYPES],
    /// Sizes of new blocks: `sizes[0]` counts blocks of 1 to 16 bytes, `sizes[i]` blocks of
    /// `(8 << i) + 1` to `16 << i` bytes, the last one every block above 1 MiB.
    pub sizes: [u64; LMEM_SIZE_BUCKETS],
    /// Bytes in live blocks as the backend counts them (after its rounding), or `LMEM_UNKNOWN`.
    pub backend_allocated: usize,
    /// Bytes the backend holds from the system or its pool (chunks, pages, arenas), live or
    /// not, or `LMEM_UNKNOWN` (the `system` backend cannot say). With `jemalloc`, the figure is
    /// the whole process's jemalloc.
    pub backend_reserved: usize,
    /// Bytes the backend holds that Lua cannot use (rounding, fragmentation, freed memory not
    /// yet reused), or `LMEM_UNKNOWN`.
    pub backend_wasted: usize,
    /// Live blocks as the backend counts them, or `LMEM_UNKNOWN`.
    pub backend_blocks: usize,
}

/// Marks a `backend_*` figure of `lmem_statistics` that the backend does not know (`SIZE_MAX`). The
/// header defines it through cbindgen.toml's `after_includes` (cbindgen does not translate
/// `usize::MAX`).
pub const LMEM_UNKNOWN: usize = usize::MAX;

// ---------------------------------------------------------------------------------------------
// Errors: one message per thread, set by the call that failed.

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: Option<CString>) {
    // `try_with`: a call made while the thread's locals are being destroyed just loses its
    // message. `try_borrow_mut` cannot fail (nothing holds a borrow across calls).
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            *e = message;
        }
    });
}

fn c_message(message: String) -> CString {
    CString::new(message.replace('\0', "\\0")).unwrap_or_default()
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic"
    }
}

/// Runs the body of the exported function `func`: clears the thread's message, catches every
/// panic, and turns an error (or a panic) into `fail` and a message naming `func`.
fn call<T>(func: &str, fail: T, body: impl FnOnce() -> Result<T, String>) -> T {
    set_last_error(None);
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(message)) => {
            set_last_error(Some(c_message(format!("{func}: {message}"))));
            fail
        }
        Err(payload) => {
            let message = format!("{func}: internal error: {}", panic_message(&*payload));
            // Dropping a payload can panic in turn (in its own `Drop`): never let that out.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            set_last_error(Some(c_message(message)));
            fail
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments.

/// A number for the calling thread, never given to another thread. (Not `std::thread::current`,
/// which keeps a heap block per thread that leak checkers report as possibly lost in a C host
/// whose threads are not Rust's.)
fn thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    ID.try_with(|id| {
        if id.get() == 0 {
            id.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        id.get()
    })
    // While the thread's locals are being destroyed: a number no allocator has.
    .unwrap_or(0)
}

/// The allocator `a` points to, checked to be non-NULL and used on its own thread.
///
/// # Safety
///
/// `a` is NULL or was returned by `lmem_new`/`lmem_new_detailed` and not yet given to
/// `lmem_free`.
unsafe fn handle<'a>(a: *const lmem_allocator) -> Result<&'a lmem_allocator, String> {
    // SAFETY: `a` is NULL or points to a live allocator (caller); nothing holds a `&mut` to it
    // (every access goes through shared references, the allocator's own guard checks the rest).
    let h = unsafe { a.as_ref() }.ok_or("the allocator is NULL")?;
    if h.thread != thread_id() {
        return Err("the allocator is used on a thread other than the one that made it".into());
    }
    Ok(h)
}

/// A session on `h`'s memory.
///
/// # Safety
///
/// No call of `h`'s allocation function is running, and none starts while the session lives:
/// the host's contract for every lmem call (the header's "Calling rules").
unsafe fn session(h: &lmem_allocator) -> Session<'_> {
    // SAFETY: the caller's promise is `enter`'s; a second session of the same allocator (a
    // host calling lmem from inside its allocation function) panics, and the panic becomes an
    // error code.
    unsafe { h.alloc.enter() }
}

/// The backend name `name` points to.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string, readable until the call returns.
unsafe fn backend_name<'a>(name: *const c_char) -> Result<&'a str, String> {
    if name.is_null() {
        return Err("the backend name is NULL".into());
    }
    // SAFETY: `name` is a NUL-terminated string (caller), not NULL (checked).
    let name = unsafe { CStr::from_ptr(name) };
    name.to_str().map_err(|_| {
        format!(
            "the backend name is not UTF-8: {:?} (compiled in: {})",
            name,
            lmem::backends::names().join(", ")
        )
    })
}

/// Writes the pair Lua must hold now to `*f` and `*ud`.
///
/// # Safety
///
/// `f` and `ud` are valid for writes.
unsafe fn write_pair(h: &lmem_allocator, f: *mut lmem_alloc_fn, ud: *mut *mut c_void) {
    // SAFETY: both are valid for writes (caller).
    unsafe {
        f.write(Some(h.alloc.function()));
        ud.write(h.alloc.ud());
    }
}

/// Checks the out-pointers of the functions that change the pair, and writes the current pair
/// to them, so that they hold what Lua must hold even when the call fails later.
///
/// # Safety
///
/// `f` and `ud` are each NULL or valid for writes.
unsafe fn out_pair(
    h: &lmem_allocator,
    f: *mut lmem_alloc_fn,
    ud: *mut *mut c_void,
) -> Result<(), String> {
    if f.is_null() || ud.is_null() {
        return Err("f and ud must point to where the new pair goes (one is NULL)".into());
    }
    // SAFETY: both are valid for writes (caller), and not NULL (checked).
    unsafe { write_pair(h, f, ud) };
    Ok(())
}

/// The compiled-in backend names, as C strings that live as long as the process.
struct Names {
    _strings: Vec<CString>,
    /// Pointers into `_strings`, then NULL.
    ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into `_strings`, which is never changed or dropped after the value
// is built (it lives in a `OnceLock` static); reading them from any thread is sound.
unsafe impl Sync for Names {}
// SAFETY: as above; moving the value moves the `CString`s' heap buffers' owners, not the buffers.
unsafe impl Send for Names {}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let strings: Vec<CString> = lmem::backends::names()
            .into_iter()
            .map(|n| c_message(n.to_owned()))
            .collect();
        let ptrs = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain([ptr::null()])
            .collect();
        Names {
            _strings: strings,
            ptrs,
        }
    })
}

fn new_handle(name: &str, detailed: bool) -> Result<*mut lmem_allocator, String> {
    let alloc = Allocator::new(name).map_err(|e| e.to_string())?;
    if detailed {
        // SAFETY: no state uses the allocator yet, so no allocation runs; the pair it returns
        // is the one `lmem_function`/`lmem_ud` read from now on.
        let _ = unsafe { alloc.enter() }.count_details();
    }
    Ok(Box::into_raw(Box::new(lmem_allocator {
        alloc,
        thread: thread_id(),
        name: RefCell::new(None),
    })))
}

// ---------------------------------------------------------------------------------------------
// The API.

/// Makes an allocator on a fresh backend called `backend` (one of `lmem_backends()`: `system`,
/// `jemalloc`, `mimalloc`, `bump`, `slab` when compiled in), unlimited, counting live bytes
/// only (the lean path: see `lmem_new_detailed`). Give Lua `lmem_function(a)` and `lmem_ud(a)`
/// (`lua_newstate`).
///
/// Returns NULL when `backend` is NULL, not UTF-8 or not compiled in; `lmem_last_error()` says
/// which, and lists the backends compiled in.
///
/// # Safety
///
/// `backend` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_new(backend: *const c_char) -> *mut lmem_allocator {
    call("lmem_new", ptr::null_mut(), || {
        // SAFETY: `backend` is NULL or a NUL-terminated string (caller).
        new_handle(unsafe { backend_name(backend) }?, false)
    })
}

/// As `lmem_new`, counting the detailed figures of `lmem_statistics` from the start: `peak`, the
/// counts per Lua type, frees, resizes and the size histogram. Each allocation costs a few more
/// instructions than on the lean path.
///
/// # Safety
///
/// As `lmem_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_new_detailed(backend: *const c_char) -> *mut lmem_allocator {
    call("lmem_new_detailed", ptr::null_mut(), || {
        // SAFETY: `backend` is NULL or a NUL-terminated string (caller).
        new_handle(unsafe { backend_name(backend) }?, true)
    })
}

/// The allocation function Lua must hold now, with `lmem_ud(a)`. It changes only when a
/// function that returns a new pair (`lmem_swap`, `lmem_settle`, `lmem_count_details`) says
/// so. NULL when `a` is NULL.
///
/// # Safety
///
/// `a` is NULL or an allocator not yet freed, used on the thread that made it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_function(a: *const lmem_allocator) -> lmem_alloc_fn {
    call("lmem_function", None, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        Ok(Some(unsafe { handle(a) }?.alloc.function()))
    })
}

/// The `ud` Lua must hold now, with `lmem_function(a)`. NULL when `a` is NULL.
///
/// # Safety
///
/// As `lmem_function`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_ud(a: *mut lmem_allocator) -> *mut c_void {
    call("lmem_ud", ptr::null_mut(), || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        Ok(unsafe { handle(a) }?.alloc.ud())
    })
}

/// Sets the limit on live bytes (`bytes`), or lifts it (`bytes` 0). A request that would pass
/// it fails: Lua runs an emergency collection, retries, and raises `not enough memory` (which
/// `pcall` catches) if that did not free enough. Frees and shrinks always succeed. A limit
/// below the live bytes is allowed: the state can then only shrink until it is back under.
/// Returns 0, or -1 when `a` is NULL.
///
/// # Safety
///
/// `a` is NULL or an allocator not yet freed, used as the calling rules say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_set_limit(a: *mut lmem_allocator, bytes: usize) -> c_int {
    call("lmem_set_limit", -1, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: called between allocation calls (the calling rules).
        unsafe { session(h) }.set_limit((bytes != 0).then_some(bytes));
        Ok(0)
    })
}

/// Bytes in live blocks (what Lua counts as its memory), exact on every path; 0 after
/// `lua_close` unless a block leaked. `SIZE_MAX` when `a` is NULL.
///
/// # Safety
///
/// As `lmem_set_limit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_live(a: *const lmem_allocator) -> usize {
    call("lmem_live", usize::MAX, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: called between allocation calls (the calling rules).
        Ok(unsafe { session(h) }.live())
    })
}

/// Fills `*out` with the allocator's figures (see `lmem_statistics`). Returns 0, or -1 when `a` or
/// `out` is NULL (`*out` is then untouched).
///
/// # Safety
///
/// As `lmem_set_limit`; `out` is NULL or valid for writing an `lmem_statistics`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_stats(a: *const lmem_allocator, out: *mut lmem_statistics) -> c_int {
    call("lmem_stats", -1, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        if out.is_null() {
            return Err("out is NULL".into());
        }
        // SAFETY: called between allocation calls (the calling rules).
        let mut s = unsafe { session(h) };
        let stats = s.stats();
        let backend = s.backend_stats();
        let mut by_type = [lmem_type_stats::default(); LMEM_TYPES];
        for (c, t) in by_type.iter_mut().zip(stats.by_tag.iter()) {
            *c = lmem_type_stats {
                count: t.count,
                bytes: t.bytes,
            };
        }
        let known = |v: Option<usize>| v.unwrap_or(LMEM_UNKNOWN);
        let value = lmem_statistics {
            live: stats.live,
            limit: s.limit().unwrap_or(0),
            failures: stats.failures,
            swaps: s.swaps(),
            routing: s.is_routing(),
            detailed: stats.detailed,
            uncounted: stats.uncounted,
            peak: stats.peak,
            allocations: stats.allocations(),
            frees: stats.frees,
            resizes: stats.resizes,
            grown: stats.grown,
            by_type,
            sizes: stats.histogram.buckets,
            backend_allocated: known(backend.allocated),
            backend_reserved: known(backend.reserved),
            backend_wasted: known(backend.wasted),
            backend_blocks: known(backend.blocks),
        };
        // SAFETY: `out` is valid for writing an `lmem_statistics` (caller) and not NULL (checked).
        unsafe { out.write(value) };
        Ok(0)
    })
}

/// Starts counting the detailed figures of `lmem_statistics` now (`uncounted` says what was live
/// then), and writes to `*f` and `*ud` the pair Lua must hold from now on: call
/// `lua_setallocf(L, *f, *ud)` before Lua allocates again. A no-op (the current pair) when
/// details are counted already. Returns 0, or -1 when an argument is NULL; `*f` and `*ud`
/// then hold the current pair if they could be written.
///
/// # Safety
///
/// As `lmem_set_limit`; `f` and `ud` are each NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_count_details(
    a: *mut lmem_allocator,
    f: *mut lmem_alloc_fn,
    ud: *mut *mut c_void,
) -> c_int {
    call("lmem_count_details", -1, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: `f` and `ud` are NULL or valid for writes (caller).
        unsafe { out_pair(h, f, ud) }?;
        // SAFETY: called between allocation calls (the calling rules).
        let _ = unsafe { session(h) }.count_details();
        // SAFETY: as `out_pair` above, which checked both.
        unsafe { write_pair(h, f, ud) };
        Ok(0)
    })
}

/// Makes a fresh backend called `backend` the one new blocks come from; the blocks of the
/// backends before it go on being freed and resized by their own backend, with their data
/// intact. Writes to `*f` and `*ud` the pair Lua must hold from now on: call
/// `lua_setallocf(L, *f, *ud)` before Lua allocates again (it may be the current pair). Swapping
/// to the backend in use is allowed: new blocks then come from a fresh one.
///
/// While an older backend holds blocks, every call is routed to the backend that made its
/// block (`lmem_statistics.routing`); `lmem_settle` ends that once they are all freed. Details and
/// the limit carry over.
///
/// Returns 0, or -1 when an argument is NULL or `backend` is not UTF-8 or not compiled in
/// (nothing changes; `*f` and `*ud` hold the current pair if they could be written).
///
/// # Safety
///
/// As `lmem_set_limit`; `backend` is NULL or a NUL-terminated string; `f` and `ud` are each
/// NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_swap(
    a: *mut lmem_allocator,
    backend: *const c_char,
    f: *mut lmem_alloc_fn,
    ud: *mut *mut c_void,
) -> c_int {
    call("lmem_swap", -1, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: `f` and `ud` are NULL or valid for writes (caller).
        unsafe { out_pair(h, f, ud) }?;
        // SAFETY: `backend` is NULL or a NUL-terminated string (caller).
        let name = unsafe { backend_name(backend) }?;
        // SAFETY: called between allocation calls (the calling rules).
        let _ = unsafe { session(h) }
            .swap_to_name(name)
            .map_err(|e| e.to_string())?;
        // SAFETY: as `out_pair` above, which checked both.
        unsafe { write_pair(h, f, ud) };
        Ok(0)
    })
}

/// Once no older backend holds a block any more (after swaps, when `lmem_statistics.routing` is
/// true), goes back to the direct function of the backend in use, and writes to `*f` and `*ud`
/// the pair Lua must hold: call `lua_setallocf(L, *f, *ud)` before Lua allocates again. While
/// old blocks remain (a Lua state keeps some of its first blocks until `lua_close`), or when
/// nothing was swapped, it changes nothing and writes the current pair. Returns 0, or -1 when
/// an argument is NULL.
///
/// # Safety
///
/// As `lmem_count_details`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_settle(
    a: *mut lmem_allocator,
    f: *mut lmem_alloc_fn,
    ud: *mut *mut c_void,
) -> c_int {
    call("lmem_settle", -1, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: `f` and `ud` are NULL or valid for writes (caller).
        unsafe { out_pair(h, f, ud) }?;
        // SAFETY: called between allocation calls (the calling rules).
        let _ = unsafe { session(h) }.settle();
        // SAFETY: as `out_pair` above, which checked both.
        unsafe { write_pair(h, f, ud) };
        Ok(0)
    })
}

/// Gives memory the backend holds but does not use (empty chunks, cached blocks) back to its
/// pool or the system, as far as the backend can; live blocks are untouched. Call it after a
/// full collection (`lua_gc(L, LUA_GCCOLLECT)`). Returns 0, or -1 when `a` is NULL.
///
/// # Safety
///
/// As `lmem_set_limit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_trim(a: *mut lmem_allocator) -> c_int {
    call("lmem_trim", -1, || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: called between allocation calls (the calling rules).
        unsafe { session(h) }.trim();
        Ok(0)
    })
}

/// The name of the backend new blocks come from (the last one swapped to). The string lives
/// as long as the process for the names of `lmem_backends()`. NULL when `a` is NULL.
///
/// # Safety
///
/// As `lmem_set_limit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_backend_name(a: *const lmem_allocator) -> *const c_char {
    call("lmem_backend_name", ptr::null(), || {
        // SAFETY: `a` is NULL or a live allocator (caller).
        let h = unsafe { handle(a) }?;
        // SAFETY: called between allocation calls (the calling rules).
        let name = unsafe { session(h) }.backend();
        let known = names().ptrs.iter().copied().take_while(|p| !p.is_null());
        for p in known {
            // SAFETY: `p` points to one of the static NUL-terminated names.
            if unsafe { CStr::from_ptr(p) }.to_bytes() == name.as_bytes() {
                return Ok(p);
            }
        }
        // Another name (none today): kept in the allocator until the next call.
        let mut cached = h.name.borrow_mut();
        Ok(cached.insert(c_message(name)).as_ptr())
    })
}

/// The names of the backends compiled into this library, in a NULL-terminated array that lives
/// as long as the process (`system` first, always there).
#[unsafe(no_mangle)]
pub extern "C" fn lmem_backends() -> *const *const c_char {
    call("lmem_backends", ptr::null(), || Ok(names().ptrs.as_ptr()))
}

/// The name of Lua type index `type` (an `lmem_type`): `string`, `table`, `function`,
/// `userdata`, `thread`, `upvalue`, `proto` or `other`, as a static string. NULL when `type` is
/// not an `lmem_type`.
#[unsafe(no_mangle)]
pub extern "C" fn lmem_type_name(r#type: c_int) -> *const c_char {
    call("lmem_type_name", ptr::null(), || {
        usize::try_from(r#type)
            .ok()
            .and_then(|i| TYPE_NAMES.get(i))
            .map(|n| n.as_ptr())
            .ok_or_else(|| format!("{type} is not a Lua type index (0 to {})", LMEM_TYPES - 1))
    })
}

/// Destroys the allocator and its backend. Call it after `lua_close` (and after every other
/// state using it is closed): the memory of blocks still live may be released with the
/// backend. NULL is allowed and does nothing. On a thread other than the one that made it,
/// nothing is destroyed (the allocator leaks) and `lmem_last_error()` says so.
///
/// # Safety
///
/// `a` is NULL or an allocator not yet freed, which no Lua state uses any more; it is not used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lmem_free(a: *mut lmem_allocator) {
    call("lmem_free", (), || {
        if a.is_null() {
            return Ok(());
        }
        // SAFETY: `a` is a live allocator (caller), not NULL.
        unsafe { handle(a) }?;
        // SAFETY: `a` came from `Box::into_raw` in `new_handle` and is given back once (the
        // caller does not use it again); no state uses it, so no allocation can run.
        drop(unsafe { Box::from_raw(a) });
        Ok(())
    })
}

/// What went wrong in the last lmem call on this thread that failed, or "" when the last call
/// succeeded. Never NULL. The string is valid until the next lmem call on this thread (this
/// function excepted).
#[unsafe(no_mangle)]
pub extern "C" fn lmem_last_error() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|e| match e.try_borrow() {
                Ok(e) => e.as_deref().map_or(c"".as_ptr(), CStr::as_ptr),
                Err(_) => c"".as_ptr(),
            })
            .unwrap_or(c"".as_ptr())
    })
    .unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_the_tags() {
        for tag in Tag::ALL {
            assert_eq!(TYPE_NAMES[tag.index()].to_str(), Ok(tag.name()));
        }
    }
}
