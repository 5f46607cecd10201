//! The memory under one `lmem-lua` state, and the one way the host reaches it between
//! allocation calls ([`Memory::enter`]).
//!
//! Three forms, chosen by the options:
//!
//! - **Plain** (no `--check`, `--trace` or `--fail-at`; the common case): an
//!   [`lmem::Allocator`]. Lua holds the lean allocation function of the chosen backend; it moves
//!   to the detailed function when statistics are asked for (`--stats`, `--stats-json`, or
//!   loading the `lmem` module), and to a routing function for as long as a swap needs one
//!   (`lmem.swap`, `--swap`). Every such change hands Lua the new pair with `lua_setallocf`,
//!   from a C function, never from inside an allocation. Once the retired backends hold no
//!   block, a `__gc` sentinel (see [`Guard::settle`]) hands Lua the lean function again.
//! - **Wrapped** (`--check`, `--trace`, `--fail-at`): a fixed chain of wrappers over a [`Swap`],
//!   by value inside one [`LuaAllocator`], with detailed accounting. Top to bottom: the trace
//!   recorder (it records what Lua's allocation function is asked, with Lua's sizes), the
//!   checker, fault injection, the swap. A layer not asked for is not in the chain (each is an
//!   [`Either`] of the wrapper and what it wraps), and swaps happen inside the chain.
//! - **Stock** (`--stock`): no lmem at all: the state comes from `luaL_newstate`, with Lua's own
//!   `l_alloc`. The baseline `lmem bench` measures the layer against.

mod chain;
mod report;

pub use chain::{Checked, Either, Faulty, Traced};

use crate::options::{MemOptions, OptionError};
use lmem::trace::{Header, Recorder};
use lmem::{
    Allocator, BackendStats, Checker, Detailed, ExactBackend, FaultInjection, Install, Layer,
    LuaAlloc, LuaAllocator, Stats, Swap,
};
use std::cell::RefCell;
use std::ffi::c_void;
use std::fs::File;

/// The wrapped form's allocator and what it needs at the end.
struct Wrapped {
    alloc: LuaAllocator<Traced, Detailed>,
    trace_path: Option<String>,
}

enum Form {
    Plain(Allocator),
    Wrapped(Wrapped),
    Stock,
}

/// The memory of one state (see the module docs).
pub struct Memory {
    form: Form,
    log: RefCell<Vec<String>>,
    first_backend: String,
    stats_json: Option<String>,
}

/// A backend to swap *to*, made to tell its own blocks.
fn swap_target(name: &str) -> Result<ExactBackend, String> {
    ExactBackend::by_name(name).ok_or_else(|| {
        format!(
            "unknown backend '{name}' (compiled in: {})",
            lmem::backends::names().join(", ")
        )
    })
}

impl Memory {
    /// Builds the memory the options ask for. Fails on a backend name that is not compiled in,
    /// or a trace file that cannot be created.
    pub fn new(o: &MemOptions) -> Result<Memory, OptionError> {
        let name = o.backend.clone().unwrap_or_else(|| "system".to_owned());
        let log = RefCell::new(Vec::new());
        let mut schedule = Vec::new();
        for step in &o.swaps {
            let next = swap_target(&step.backend).map_err(OptionError)?;
            schedule.push((step.after, next));
            log.borrow_mut().push(format!(
                "scheduled swap to {} after {} allocations",
                step.backend, step.after
            ));
        }
        let form = if o.stock {
            Form::Stock
        } else if o.fail_at.is_none() && !o.check && o.trace.is_none() {
            let alloc = Allocator::new(&name).map_err(|e| OptionError(e.to_string()))?;
            // SAFETY: no state uses the allocator yet, so no allocation runs; the pairs these
            // calls return are read back through `function`/`ud` when the state is made.
            let mut s = unsafe { alloc.enter() };
            s.set_limit(o.limit);
            if o.stats || o.stats_json.is_some() {
                let _ = s.count_details();
            }
            for (after, next) in schedule {
                let _ = s.schedule(after, next);
            }
            drop(s);
            Form::Plain(alloc)
        } else {
            let base = lmem::AnyBackend::by_name(&name)
                .ok_or_else(|| OptionError(format!("unknown backend '{name}'")))?;
            let mut swap = Swap::new(base);
            for (after, next) in schedule {
                swap.schedule(after, next);
            }
            let faulty = match o.fail_at {
                Some(n) => Either::Left(FaultInjection::fail_at(swap, n)),
                None => Either::Right(swap),
            };
            let checked = if o.check {
                Either::Left(Checker::new(faulty))
            } else {
                Either::Right(faulty)
            };
            let traced = match &o.trace {
                Some(path) => {
                    let file = File::create(path).map_err(|e| {
                        OptionError(format!("cannot create trace file '{path}': {e}"))
                    })?;
                    // The command line, the program by its file name only.
                    let mut args: Vec<String> = std::env::args().collect();
                    if let Some(first) = args.first_mut() {
                        let base = std::path::Path::new(first.as_str()).file_name();
                        *first = base.map_or(String::new(), |b| b.to_string_lossy().into_owned());
                    }
                    let label = format!("{} (backend {name})", args.join(" "));
                    let header = Header::new(crate::version::LUA_VERSION_NUM, &label);
                    Either::Left(Recorder::new(checked, file, &header))
                }
                None => Either::Right(checked),
            };
            let mut layer = Layer::with_accounting(traced);
            layer.set_limit(o.limit);
            Form::Wrapped(Wrapped {
                alloc: LuaAllocator::new(layer),
                trace_path: o.trace.clone(),
            })
        };
        Ok(Memory {
            form,
            log,
            first_backend: if o.stock { "stock".into() } else { name },
            stats_json: o.stats_json.clone(),
        })
    }

    /// The allocation function and `ud` to give `lua_newstate`; `None` for the stock form, whose
    /// state comes from `luaL_newstate`.
    pub fn pair(&self) -> Option<(LuaAlloc, *mut c_void)> {
        match &self.form {
            Form::Plain(a) => Some((a.function(), a.ud())),
            Form::Wrapped(w) => Some(w.alloc.raw()),
            Form::Stock => None,
        }
    }

    /// Whether this is the stock form (no lmem).
    pub fn is_stock(&self) -> bool {
        matches!(self.form, Form::Stock)
    }

    /// Reaches the memory between allocation calls.
    ///
    /// # Panics
    ///
    /// If a guard of this memory is alive already.
    ///
    /// # Safety
    ///
    /// Lua is not inside the allocation function, and does not enter it while the guard lives
    /// (call from a Lua C function, before the state is made, or after it is closed).
    pub unsafe fn enter(&self) -> Guard<'_> {
        let inner = match &self.form {
            // SAFETY: the caller's promise is the one `enter` asks for.
            Form::Plain(a) => Inner::Plain(unsafe { a.enter() }),
            // SAFETY: as above.
            Form::Wrapped(w) => Inner::Wrapped(unsafe { w.alloc.enter() }, w),
            Form::Stock => Inner::Stock,
        };
        Guard {
            memory: self,
            inner,
        }
    }
}

enum Inner<'a> {
    Plain(lmem::Session<'a>),
    Wrapped(lmem::Guard<'a, Traced, Detailed>, &'a Wrapped),
    Stock,
}

/// The memory while no allocation runs: what the `lmem` module and the interpreter read and
/// change. Methods that change what Lua holds take the state, and give it the new pair.
pub struct Guard<'a> {
    memory: &'a Memory,
    inner: Inner<'a>,
}

/// Hands `l` the pair, if there is one.
///
/// # Safety
///
/// `l` is the state this memory serves (or null before there is one), not inside an
/// allocation.
unsafe fn install(l: *mut crate::ffi::lua_State, install: Option<Install>) {
    if let Some(i) = install
        && !l.is_null()
    {
        // SAFETY: `l` is valid (caller); the pair is the one Lua must hold from now on.
        unsafe { crate::ffi::lua_setallocf(l, i.function, i.ud) };
    }
}

impl Guard<'_> {
    /// A copy of the accounting (all zeros in the stock form).
    pub fn stats(&self) -> Stats {
        match &self.inner {
            Inner::Plain(s) => s.stats(),
            Inner::Wrapped(g, _) => g.stats(),
            Inner::Stock => Stats::default(),
        }
    }

    /// What the backends say about the memory they hold.
    pub fn backend_stats(&self) -> BackendStats {
        match &self.inner {
            Inner::Plain(s) => s.backend_stats(),
            Inner::Wrapped(g, _) => g.backend_stats(),
            Inner::Stock => BackendStats::default(),
        }
    }

    /// Name of the backend new blocks come from.
    pub fn backend_name(&self) -> String {
        match &self.inner {
            Inner::Plain(s) => s.backend(),
            Inner::Wrapped(g, _) => g.backend().swap().current_name().to_owned(),
            Inner::Stock => "stock".to_owned(),
        }
    }

    /// Backend switches done so far (scheduled and by `lmem.swap`).
    pub fn swaps(&mut self) -> u64 {
        match &mut self.inner {
            Inner::Plain(s) => s.swaps(),
            Inner::Wrapped(g, _) => g.backend().swap().swaps(),
            Inner::Stock => 0,
        }
    }

    /// The byte limit in force.
    pub fn limit(&self) -> Option<usize> {
        match &self.inner {
            Inner::Plain(s) => s.limit(),
            Inner::Wrapped(g, _) => g.limit(),
            Inner::Stock => None,
        }
    }

    /// Sets (or with `None` lifts) the byte limit; returns the previous one.
    pub fn set_limit(&mut self, limit: Option<usize>) -> Option<usize> {
        match &mut self.inner {
            Inner::Plain(s) => s.set_limit(limit),
            Inner::Wrapped(g, _) => {
                let previous = g.limit();
                g.set_limit(limit);
                previous
            }
            Inner::Stock => None,
        }
    }

    /// Gives the backends' unused memory back to their pools and the OS.
    pub fn trim(&mut self) {
        match &mut self.inner {
            Inner::Plain(s) => s.trim(),
            Inner::Wrapped(g, _) => g.trim(),
            Inner::Stock => {}
        }
    }

    /// Starts the detailed figures, if they are not counted yet (loading the `lmem` module asks
    /// for them).
    ///
    /// # Safety
    ///
    /// `l` is the state this memory serves, or null before it is made.
    pub unsafe fn count_details(&mut self, l: *mut crate::ffi::lua_State) {
        if let Inner::Plain(s) = &mut self.inner {
            let i = s.count_details();
            // SAFETY: as ours.
            unsafe { install(l, i) };
        }
    }

    /// Switches new allocations to backend `name` now; blocks made before go back to their own
    /// backend. The error says why not (an unknown name).
    ///
    /// # Safety
    ///
    /// As [`Guard::count_details`].
    pub unsafe fn swap_to(
        &mut self,
        l: *mut crate::ffi::lua_State,
        name: &str,
    ) -> Result<(), String> {
        let next = match swap_target(name) {
            Ok(next) => next,
            Err(e) => {
                self.log(format!("swap to {name} (lmem.swap) refused: {e}"));
                return Err(e);
            }
        };
        let from = self.backend_name();
        match &mut self.inner {
            Inner::Plain(s) => {
                let i = s.swap_to(next);
                // SAFETY: as ours.
                unsafe { install(l, i) };
            }
            Inner::Wrapped(g, _) => g.backend_mut().swap_mut().swap_to(next),
            Inner::Stock => return Err("no lmem allocator in the stock form".into()),
        }
        self.log(format!("swapped {from} -> {name} (lmem.swap)"));
        Ok(())
    }

    /// Whether calls are routed through a swap chain (old blocks remain, or swaps are
    /// scheduled), which a `__gc` sentinel should watch.
    pub fn is_routing(&mut self) -> bool {
        match &mut self.inner {
            Inner::Plain(s) => s.is_routing(),
            Inner::Wrapped(..) | Inner::Stock => false,
        }
    }

    /// Hands Lua the lean (or detailed) function of the backend in use again, if the swap chain
    /// has settled: no retired backend holds a block, no swap is scheduled. Returns whether the
    /// state is still routing.
    ///
    /// # Safety
    ///
    /// As [`Guard::count_details`].
    pub unsafe fn settle(&mut self, l: *mut crate::ffi::lua_State) -> bool {
        match &mut self.inner {
            Inner::Plain(s) => {
                let i = s.settle();
                if i.is_some() {
                    self.memory
                        .log
                        .borrow_mut()
                        .push("swap chain settled: back on the lean path".to_owned());
                }
                // SAFETY: as ours.
                unsafe { install(l, i) };
                self.is_routing()
            }
            Inner::Wrapped(..) | Inner::Stock => false,
        }
    }

    fn log(&self, line: String) {
        self.memory.log.borrow_mut().push(line);
    }

    /// The checker's complaints, if `--check` is on and it has any (leaks count once the state
    /// is closed).
    pub fn checker_complaints(&self) -> Option<String> {
        let Inner::Wrapped(g, _) = &self.inner else {
            return None;
        };
        let c = g.backend().checker()?;
        (!c.is_clean()).then(|| c.report())
    }
}

/// What the swap schedule and `lmem.swap` did, one line per switch.
impl Memory {
    /// The log lines so far.
    pub fn swap_log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }
}
