//! The memory under one `lmem-lua` state: the core's [`LuaAllocator`] over a chain of backends
//! built from the [`MemOptions`], and handles on the parts of the chain the host talks to later
//! (the hot-swap backend, the checker).
//!
//! Why a chain of boxed backends: the options add or leave out layers (fault injection, checker,
//! trace) at run time, but the `lua_Alloc` adapter needs one concrete type. Every layer is a
//! `Box<dyn Backend>`. The layers the host must reach after the state is made sit where the chain
//! can call them without a detour: the [`Swap`] (for `lmem.swap`) in its own box at the bottom,
//! reached by its address; the [`Checker`] (for the leak report) and the trace recorder in an
//! `Rc<RefCell<_>>` shared between the chain and this struct. The host touches them only while
//! Lua is not inside its allocation function, so the accesses never overlap a call.
//!
//! The chain, top to bottom: `Heap` (accounting, limit) → trace recorder (`--trace`) → checker
//! (`--check`) → fault injection (`--fail-at`) → `Swap` (with the `--swap` schedule) → the
//! backends. Without any of the three wrapping options (the common case) the heap holds the
//! `Swap` directly ([`Chain::Direct`]), and the swap holds its backends as
//! [`AnyBackend`]s, so an allocation reaches the backend with no indirect call. The recorder
//! sits right under the heap so that it records the calls Lua's allocation function makes,
//! with Lua's sizes (not the checker's guarded ones).

use crate::options::{MemOptions, OptionError};
use lmem::backends::AnyBackend;
use lmem::trace::{Header, Recorder};
use lmem::{Backend, BackendStats, Checker, FaultInjection, Heap, LuaAllocator, Ownership, Stats};
use lmem::{Swap, Tag};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::fs::File;
use std::ptr::NonNull;
use std::rc::Rc;

/// One layer of the chain: a boxed backend.
pub type Layer = Box<dyn Backend>;

/// The backend under the host's heap. With no wrapping option (`--fail-at`, `--check`,
/// `--trace`) the swap layer is the whole chain and the heap calls it directly, with no
/// indirect call; otherwise the heap calls a chain of boxed layers.
pub enum Chain {
    /// The swap layer alone, in its own box (the host keeps its address).
    Direct(Box<Swap>),
    /// Wrapping layers over the swap layer.
    Layered(Layer),
}

/// Forwards each call to the chain's variant.
macro_rules! on_chain {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Chain::Direct($b) => $e,
            Chain::Layered($b) => $e,
        }
    };
}

// SAFETY: the heap owns its chain and never replaces it, so the variant never changes and
// every block goes back to the layer that made it.
lmem::forward_backend_enum!(unsafe impl Backend for Chain => on_chain);

/// The host's `lua_Alloc` adapter.
pub type HostAllocator = LuaAllocator<Chain>;

/// Backend names compiled into this build.
pub fn backend_names() -> Vec<&'static str> {
    lmem::backends::names()
}

/// A backend shared between the chain and the host (see the module docs).
struct Shared<B>(Rc<RefCell<B>>);

// SAFETY: every method forwards to `B` (which upholds the contract) through the `RefCell`; the
// borrow only fails if the host borrowed the cell while Lua is inside its allocation function,
// which the host never does (see the module docs).
unsafe impl<B: Backend> Backend for Shared<B> {
    fn name(&self) -> &str {
        // The name is only used for reports; a static answer avoids holding a borrow.
        "shared"
    }
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        self.0.try_borrow_mut().ok()?.allocate(size, tag)
    }
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded; the caller's contract is the same.
        unsafe { self.0.borrow_mut().deallocate(ptr, size) }
    }
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        let mut inner = self.0.try_borrow_mut().ok()?;
        // SAFETY: forwarded; the caller's contract is the same.
        unsafe { inner.resize(ptr, old_size, new_size) }
    }
    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        self.0
            .try_borrow()
            .map_or(Ownership::Unknown, |inner| inner.owns(ptr))
    }
    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: forwarded; the caller's contract is the same.
        self.0
            .try_borrow()
            .map_or(size, |inner| unsafe { inner.usable_size(ptr, size) })
    }
    fn stats(&self) -> BackendStats {
        self.0
            .try_borrow()
            .map(|inner| inner.stats())
            .unwrap_or_default()
    }
}

/// `LUA_VERSION_NUM` of the Lua this build links, for trace headers.
pub const LUA_VERSION_NUM: u32 = if cfg!(feature = "lua51") {
    501
} else if cfg!(feature = "lua55") {
    505
} else {
    504
};

/// The trace layer's state: recording, or (after [`Memory::finish_outputs`]) passing through.
enum Tracing {
    Recording(Recorder<Layer, File>),
    Done(Layer),
    /// Only while [`Memory::finish_outputs`] swaps the two; never seen by a call.
    Empty,
}

/// The recorder in the chain, shared with the host so that it can be finished (its end marker
/// written) once the state is closed, while the backend under it stays in the chain.
struct TraceLayer(Rc<RefCell<Tracing>>);

impl TraceLayer {
    /// Runs `f` on the backend this layer forwards to (the recorder or, once finished, the chain
    /// under it). `None` if the layer is busy or empty, which the host never lets happen during a
    /// call (see the module docs).
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut dyn Backend) -> R) -> Option<R> {
        let mut t = self.0.try_borrow_mut().ok()?;
        match &mut *t {
            Tracing::Recording(r) => Some(f(r)),
            Tracing::Done(b) => Some(f(&mut **b)),
            Tracing::Empty => None,
        }
    }
}

// SAFETY: every method forwards to the recorder or the chain (both uphold the contract); a block
// made through one is freed through the other after `finish_outputs`, which is the same chain
// (the recorder only observes). A busy or empty layer fails allocations and resizes (allowed)
// and never happens on frees (see `with`).
unsafe impl Backend for TraceLayer {
    fn name(&self) -> &str {
        "trace"
    }
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        self.with(|b| b.allocate(size, tag)).flatten()
    }
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded; the caller's contract is the same.
        let done = self.with(|b| unsafe { b.deallocate(ptr, size) });
        debug_assert!(done.is_some(), "trace layer busy during a free");
    }
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded; the caller's contract is the same.
        self.with(|b| unsafe { b.resize(ptr, old_size, new_size) })
            .flatten()
    }
    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        match self.0.try_borrow().as_deref() {
            Ok(Tracing::Recording(r)) => r.owns(ptr),
            Ok(Tracing::Done(b)) => b.owns(ptr),
            _ => Ownership::Unknown,
        }
    }
    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        match self.0.try_borrow().as_deref() {
            // SAFETY: forwarded; the caller's contract is the same.
            Ok(Tracing::Recording(r)) => unsafe { r.usable_size(ptr, size) },
            // SAFETY: forwarded; the caller's contract is the same.
            Ok(Tracing::Done(b)) => unsafe { b.usable_size(ptr, size) },
            _ => size,
        }
    }
    fn stats(&self) -> BackendStats {
        match self.0.try_borrow().as_deref() {
            Ok(Tracing::Recording(r)) => r.stats(),
            Ok(Tracing::Done(b)) => b.stats(),
            _ => BackendStats::default(),
        }
    }
}

/// A backend to swap *to*, made to tell its own blocks (see [`lmem::with_exact_ownership`]).
fn swap_target(name: &str) -> Option<AnyBackend> {
    AnyBackend::by_name(name).map(lmem::with_exact_ownership)
}

/// The memory of one state: the allocator and handles on the swap and the checker.
pub struct Memory {
    alloc: Box<HostAllocator>,
    /// The [`Swap`] at the bottom of the chain, owned by the chain (see [`Memory::swap`]).
    swap: NonNull<Swap>,
    checker: Option<Rc<RefCell<Checker<Layer>>>>,
    log: Rc<RefCell<Vec<String>>>,
    limit: Cell<Option<usize>>,
    first_backend: String,
    trace: Option<(Rc<RefCell<Tracing>>, String)>,
    stats_json: Option<String>,
}

impl Memory {
    /// Builds the chain the options ask for. Fails on a backend name that is not compiled in.
    pub fn new(o: &MemOptions) -> Result<Memory, OptionError> {
        let name = o.backend.clone().unwrap_or_else(|| "system".to_owned());
        let base = AnyBackend::by_name(&name)
            .ok_or_else(|| OptionError(format!("unknown backend '{name}'")))?;
        let mut swap = Swap::new(base);
        let log = Rc::new(RefCell::new(Vec::new()));
        for step in &o.swaps {
            let next = swap_target(&step.backend)
                .ok_or_else(|| OptionError(format!("unknown backend '{}'", step.backend)))?;
            swap.schedule(step.after, next).map_err(|e| {
                OptionError(format!(
                    "bad value for --swap: {}@{}: {e}",
                    step.backend, step.after
                ))
            })?;
            log.borrow_mut().push(format!(
                "scheduled swap to {} after {} allocations",
                step.backend, step.after
            ));
        }
        // The swap sits in the chain directly (no shared cell on the hot path); the host keeps
        // its address, which the box keeps stable, and uses it only while Lua is outside the
        // allocation function.
        let mut swap = Box::new(swap);
        let swap_ptr = NonNull::from(&mut *swap);
        let mut checker = None;
        let mut trace = None;
        let chain = if o.fail_at.is_none() && !o.check && o.trace.is_none() {
            Chain::Direct(swap)
        } else {
            let mut chain: Layer = swap;
            if let Some(n) = o.fail_at {
                chain = Box::new(FaultInjection::fail_at(chain, n));
            }
            if o.check {
                let c = Rc::new(RefCell::new(Checker::new(chain)));
                checker = Some(c.clone());
                chain = Box::new(Shared(c));
            }
            if let Some(path) = &o.trace {
                let file = File::create(path)
                    .map_err(|e| OptionError(format!("cannot create trace file '{path}': {e}")))?;
                // The command line, the program by its file name only (not where it was built).
                let mut args: Vec<String> = std::env::args().collect();
                if let Some(first) = args.first_mut() {
                    let base = std::path::Path::new(first.as_str()).file_name();
                    *first = base.map_or(String::new(), |b| b.to_string_lossy().into_owned());
                }
                let label = format!("{} (backend {name})", args.join(" "));
                let header = Header::new(LUA_VERSION_NUM, &label);
                let t = Rc::new(RefCell::new(Tracing::Recording(Recorder::new(
                    chain, file, &header,
                ))));
                trace = Some((t.clone(), path.clone()));
                chain = Box::new(TraceLayer(t));
            }
            Chain::Layered(chain)
        };
        let mut heap = Heap::new(chain);
        heap.set_limit(o.limit);
        Ok(Memory {
            alloc: LuaAllocator::new(heap),
            swap: swap_ptr,
            checker,
            log,
            limit: Cell::new(o.limit),
            first_backend: name,
            trace,
            stats_json: o.stats_json.clone(),
        })
    }

    /// The `lua_Alloc` function to give `lua_newstate`/`lua_setallocf`.
    pub fn function(&self) -> lmem::LuaAlloc {
        self.alloc.function()
    }

    /// The `ud` to give along with [`Memory::function`].
    pub fn ud(&self) -> *mut c_void {
        self.alloc.ud()
    }

    /// A copy of the accounting.
    ///
    /// # Safety
    ///
    /// Lua is not inside the allocation function (call from a C function, or with no state).
    pub unsafe fn stats(&self) -> Stats {
        // SAFETY: the caller guarantees no allocation is in progress.
        unsafe { self.alloc.heap() }.stats().clone()
    }

    /// Name of the backend new blocks come from.
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn backend_name(&self) -> String {
        // SAFETY: as ours.
        unsafe { self.swap() }.current_name().to_owned()
    }

    /// The swap layer.
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`], and the reference is dropped before Lua allocates again.
    #[allow(clippy::mut_from_ref)]
    unsafe fn swap(&self) -> &mut Swap {
        // SAFETY: the swap lives in its own box inside the chain, which `self.alloc` owns for as
        // long as `self` lives; Lua is not inside the allocation function (caller), so nothing
        // else reaches the swap while this reference lives.
        unsafe { &mut *self.swap.as_ptr() }
    }

    /// Switches new allocations to backend `name` now.
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn swap_to(&self, name: &str) -> Result<(), String> {
        let b = swap_target(name).ok_or_else(|| {
            format!(
                "unknown backend '{name}' (compiled in: {})",
                backend_names().join(", ")
            )
        })?;
        // SAFETY: as ours.
        let swap = unsafe { self.swap() };
        let from = swap.current_name().to_owned();
        let r = swap.swap_to(b).map_err(|e| e.to_string());
        let line = match &r {
            Ok(()) => format!("swapped {from} -> {name} (lmem.swap)"),
            Err(e) => format!("swap {from} -> {name} (lmem.swap) refused: {e}"),
        };
        self.log.borrow_mut().push(line);
        r
    }

    /// Backend switches done so far (scheduled and by `lmem.swap`).
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn swaps(&self) -> u64 {
        // SAFETY: as ours.
        unsafe { self.swap() }.swaps()
    }

    /// The byte limit in force.
    pub fn limit(&self) -> Option<usize> {
        self.limit.get()
    }

    /// Sets (or with `None` lifts) the byte limit; returns the previous one.
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn set_limit(&self, limit: Option<usize>) -> Option<usize> {
        // SAFETY: the caller guarantees no allocation is in progress.
        unsafe { self.alloc.heap_mut() }.set_limit(limit);
        self.limit.replace(limit)
    }

    /// What the swap schedule and `lmem.swap` did, one line per switch.
    pub fn swap_log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// The checker's complaints, if `--check` is on and it has any (leaks count once the state
    /// is closed).
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn checker_complaints(&self) -> Option<String> {
        let c = self.checker.as_ref()?.borrow();
        (!c.is_clean()).then(|| c.report())
    }

    /// Writes what `--trace` and `--stats-json` asked for: the trace's end marker (recording
    /// stops; later calls pass straight through) and the accounting as JSON. Call once the state
    /// is closed. The error names the file that could not be written.
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn finish_outputs(&self) -> Result<(), String> {
        let mut result = Ok(());
        if let Some((cell, path)) = &self.trace {
            let mut t = cell.borrow_mut();
            if let Tracing::Recording(r) = std::mem::replace(&mut *t, Tracing::Empty) {
                let (chain, written) = r.finish_into_parts();
                *t = Tracing::Done(chain);
                if let Err(e) = written {
                    result = Err(format!("cannot write trace file '{path}': {e}"));
                }
            }
        }
        if let Some(path) = &self.stats_json {
            // SAFETY: as ours.
            let json = unsafe { self.stats_json() };
            if let Err(e) = std::fs::write(path, json + "\n") {
                result = result.and(Err(format!("cannot write stats file '{path}': {e}")));
            }
        }
        result
    }

    /// The accounting as one JSON object (what `--stats-json` writes).
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn stats_json(&self) -> String {
        // SAFETY: as ours.
        let (s, now, swaps) = unsafe { (self.stats(), self.backend_name(), self.swaps()) };
        let by_tag: serde_json::Map<String, serde_json::Value> = Tag::ALL
            .iter()
            .map(|t| {
                let ts = s.by_tag[t.index()];
                (
                    t.name().to_owned(),
                    serde_json::json!({ "count": ts.count, "bytes": ts.bytes }),
                )
            })
            .collect();
        serde_json::json!({
            "backend": self.first_backend,
            "backend_now": now,
            "swaps": swaps,
            "live": s.live,
            "peak": s.peak,
            "allocations": s.allocations(),
            "frees": s.frees,
            "resizes": s.resizes,
            "failures": s.failures,
            "emergencies": s.emergencies,
            "bytes_allocated": s.bytes_allocated(),
            "by_tag": by_tag,
        })
        .to_string()
    }

    /// The accounting report printed by `--stats`.
    ///
    /// # Safety
    ///
    /// As [`Memory::stats`].
    pub unsafe fn report(&self, closed: bool) -> String {
        // SAFETY: as ours.
        let (stats, now) = unsafe { (self.stats(), self.backend_name()) };
        let mut out = String::new();
        // SAFETY: as ours.
        let swaps = unsafe { self.swaps() };
        let _ = writeln!(
            out,
            "lmem: backend {now} (started on {}, {swaps} swaps)",
            self.first_backend
        );
        for line in self.log.borrow().iter() {
            let _ = writeln!(out, "lmem: {line}");
        }
        if let Some(l) = self.limit.get() {
            let _ = writeln!(out, "lmem: limit {l} bytes");
        }
        for line in stats.to_string().lines() {
            let _ = writeln!(out, "lmem: {line}");
        }
        if closed {
            let _ = writeln!(out, "lmem: live after lua_close: {} bytes", stats.live);
        }
        if let Some(c) = &self.checker {
            let c = c.borrow();
            let _ = writeln!(
                out,
                "lmem: checker: {} complaints, {} bytes live",
                c.complaints().len(),
                c.live_bytes()
            );
        }
        out
    }
}
