//! `lmem stress`: many Lua states on many threads, each on its own heap, with injected faults
//! and hot swaps, checking that nothing is lost.
//!
//! Every state runs one bundled workload (at a small scale) on a backend drawn at random, under
//! a [`Checker`] (guards, `osize` checks, leaks) over [`FaultInjection`] (failures at a given
//! rate) over a [`Swap`] with swaps scheduled at random allocation counts. After `lua_close` the
//! heap must hold 0 live bytes and the checker must be clean; at the end the shared pools must
//! be back within their bounds. Any violation makes the command exit non-zero.
//!
//! One finding is the host's and is reported apart: LuaJIT 2.1 creates a Lua closure with its
//! upvalue count at 0 until every upvalue is in place, so when an upvalue's allocation fails
//! the half-built closure is freed as if it had none, with an `osize` short by 8 bytes per
//! upvalue (`func_newL` in LuaJIT's `lj_func.c`). The checker catches each such free and gives
//! the backend the block's whole size; the state's count is then short by exactly those bytes.
//! Only frees that match this pattern exactly, on a LuaJIT build, are counted as the host's.

use lmem::backends::{self, AnyBackend};
use lmem::{Allocator, Checker, Detailed, ExactBackend, FaultInjection, FaultPlan, Layer};
use lmem::{Complaint, LuaAlloc, LuaAllocator, Rng, Swap};
use lmem_lua::ffi;
use std::ffi::c_void;
use std::ffi::{CStr, CString, c_int};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct StressOptions {
    /// Worker threads.
    pub threads: usize,
    /// Stop after this long…
    pub duration: Option<Duration>,
    /// …or after this many states in all (whichever comes first; one of the two is set).
    pub states: Option<u64>,
    /// Probability that an allocation or grow fails.
    pub fault_rate: f64,
    /// Hot swaps scheduled per state, at most.
    pub max_swaps: u32,
    /// Workload scale factor (`arg[1]` of the scripts).
    pub scale: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Backends to draw from.
    pub backends: Vec<String>,
    /// Workload scripts.
    pub workloads: Vec<PathBuf>,
    /// Also measure the scaling figure: the same states on 1 thread, then on `threads`
    /// threads, on the plain layer (no checker, faults or swaps).
    pub scaling: bool,
    /// Run each state under the checker, fault injection and swaps (the stress proper); off for
    /// the scaling runs, which measure the layer a host would run.
    pub checked: bool,
}

impl StressOptions {
    /// Defaults: one thread per core, 30 seconds, faults at 1/2000, up to 2 swaps per state,
    /// every compiled backend, every bundled workload at scale 0.02.
    pub fn new() -> Self {
        StressOptions {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            duration: Some(Duration::from_secs(30)),
            states: None,
            fault_rate: 1.0 / 2000.0,
            max_swaps: 2,
            scale: 0.02,
            seed: 0x5eed,
            backends: backends::names().into_iter().map(String::from).collect(),
            workloads: bundled_workloads(),
            scaling: false,
            checked: true,
        }
    }
}

impl Default for StressOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The workloads in `lua/bench/` of this repository.
pub fn bundled_workloads() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lua/bench");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "lua"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Why a stress run could not be made or finished (not a violation: those are in the report).
#[derive(Debug)]
pub enum StressError {
    /// No backend to draw from.
    NoBackends,
    /// A backend that is not compiled in.
    UnknownBackend(lmem::UnknownBackend),
    /// A fault rate outside 0 to 1.
    BadFaultRate(f64),
    /// No workload to draw from.
    NoWorkloads,
    /// A workload file cannot be read.
    ReadWorkload {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A worker thread panicked.
    ThreadPanicked,
}

impl StressError {
    /// Whether the run was asked for something it cannot do (a usage error, exit status 2).
    pub fn is_usage(&self) -> bool {
        !matches!(self, StressError::ThreadPanicked)
    }
}

impl fmt::Display for StressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StressError::NoBackends => f.write_str("no backends"),
            StressError::UnknownBackend(e) => e.fmt(f),
            StressError::BadFaultRate(p) => write!(f, "fault rate {p} is not a probability"),
            StressError::NoWorkloads => f.write_str("no workloads (lua/bench/*.lua not found)"),
            StressError::ReadWorkload { path, source } => {
                write!(f, "cannot read workload '{}': {source}", path.display())
            }
            StressError::ThreadPanicked => f.write_str("a stress thread panicked"),
        }
    }
}

impl std::error::Error for StressError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StressError::UnknownBackend(e) => Some(e),
            StressError::ReadWorkload { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Totals over all threads.
#[derive(Debug, Default)]
pub struct StressReport {
    /// States run to completion (whatever their result).
    pub states: u64,
    /// States whose workload succeeded.
    pub succeeded: u64,
    /// States that ended with `not enough memory` (or could not be opened).
    pub out_of_memory: u64,
    /// States whose workload failed otherwise (only legal when faults were injected).
    pub other_errors: u64,
    /// Allocations served.
    pub allocations: u64,
    /// Failures injected.
    pub injected: u64,
    /// Hot swaps done.
    pub swaps: u64,
    /// Violations: leaks, checker complaints, errors without faults, pools out of bounds.
    pub violations: Vec<String>,
    /// Closures LuaJIT freed short after a failed upvalue allocation (a host defect, see the
    /// module docs), and the bytes they were short by.
    pub short_closure_frees: (u64, u64),
    /// Wall time.
    pub elapsed: Duration,
    /// States per second with 1 thread and with `threads` threads (the scaling figure).
    pub scaling: Option<(f64, f64, usize)>,
}

impl fmt::Display for StressReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "states        {} in {secs:.1} s ({:.0}/s)",
            self.states,
            self.states as f64 / secs
        )?;
        writeln!(
            f,
            "  ok {}   not enough memory {}   other errors {}",
            self.succeeded, self.out_of_memory, self.other_errors
        )?;
        writeln!(f, "allocations   {}", self.allocations)?;
        writeln!(f, "injected      {} failures", self.injected)?;
        writeln!(f, "swaps         {}", self.swaps)?;
        if let Some((one, many, n)) = self.scaling {
            writeln!(
                f,
                "scaling       1 thread {one:.1} states/s, {n} threads {many:.1} states/s: {:.2}x",
                many / one
            )?;
        }
        let (frees, bytes) = self.short_closure_frees;
        if frees > 0 {
            writeln!(
                f,
                "checked       after every lua_close the count off by the host's short frees \
                 below and nothing else, checker clean otherwise, pools bounded"
            )?;
        } else {
            writeln!(
                f,
                "checked       0 live bytes after every lua_close, checker clean, pools bounded"
            )?;
        }
        if frees > 0 {
            writeln!(
                f,
                "host defects  {frees} LuaJIT closures freed {bytes} B short after a failed \
                 upvalue allocation (freed whole by the checker)"
            )?;
        }
        if self.violations.is_empty() {
            writeln!(f, "violations    0")
        } else {
            writeln!(f, "violations    {}", self.violations.len())?;
            for v in self.violations.iter().take(20) {
                writeln!(f, "  {v}")?;
            }
            Ok(())
        }
    }
}

/// How one state ended.
enum Outcome {
    Ok,
    OutOfMemory,
    Error(String),
}

/// What one state did.
struct StateResult {
    outcome: Outcome,
    allocations: u64,
    injected: u64,
    swaps: u64,
    short_closure_frees: (u64, u64),
    violation: Option<String>,
}

/// `sizeLfunc(0)` on 64-bit LuaJIT: the size a Lua closure with no upvalues is freed with.
const LUAJIT_BARE_CLOSURE: usize = 40;

/// Whether a complaint is LuaJIT freeing a half-built closure (see the module docs): only on a
/// LuaJIT build, only a free, only with a bare closure's size for a block longer by whole
/// upvalue references.
fn is_short_closure_free(c: &Complaint) -> bool {
    cfg!(feature = "luajit")
        && matches!(
            *c,
            Complaint::WrongSize { op: "free", given: LUAJIT_BARE_CLOSURE, recorded, .. }
                if recorded > LUAJIT_BARE_CLOSURE
                    && (recorded - LUAJIT_BARE_CLOSURE).is_multiple_of(size_of::<usize>())
        )
}

type StressLayer = Layer<Checker<FaultInjection<Swap>>, Detailed>;

/// The script run in protected mode: open the libraries, silence `print`, set `arg`, run.
unsafe extern "C-unwind" fn pmain(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `lua_pcall` on a live state with the script's chunk (a light userdata
    // pointing to a `Chunk` that outlives the call) as the only argument; every API call below
    // stays within the stack space Lua guarantees (LUA_MINSTACK); errors longjmp out of this
    // frame, which owns nothing that needs dropping.
    unsafe {
        let chunk = &*(ffi::lua_touserdata(l, 1) as *const Chunk);
        ffi::luaL_openlibs(l);
        ffi::lua_pushcfunction(l, quiet_print);
        ffi::lua_setglobal(l, c"print".as_ptr());
        ffi::lua_createtable(l, 1, 1);
        ffi::lua_pushnumber(l, chunk.scale);
        ffi::lua_rawseti(l, -2, 1);
        ffi::lua_pushstring(l, chunk.name.as_ptr());
        ffi::lua_rawseti(l, -2, 0);
        ffi::lua_setglobal(l, c"arg".as_ptr());
        let status = ffi::luaL_loadbuffer(
            l,
            chunk.code.as_ptr().cast(),
            chunk.code.len(),
            chunk.name.as_ptr(),
        );
        if status != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        ffi::lua_pushnumber(l, chunk.scale);
        ffi::lua_call(l, 1, 0);
    }
    0
}

/// `print` that prints nothing (thousands of states would flood the terminal).
unsafe extern "C-unwind" fn quiet_print(_: *mut ffi::lua_State) -> c_int {
    0
}

/// A workload, loaded once.
struct Chunk {
    name: CString,
    code: Vec<u8>,
    scale: f64,
}

/// Runs one state to its end and checks what is left.
fn run_state(chunk: &Chunk, backend: &str, o: &StressOptions, rng: &mut Rng) -> StateResult {
    let mut swap =
        Swap::new(AnyBackend::by_name(backend).expect("backend names come from the list"));
    for _ in 0..rng.below(o.max_swaps as usize + 1) {
        let to = &o.backends[rng.below(o.backends.len())];
        let at = rng.below(20_000) as u64;
        if let Some(b) = ExactBackend::by_name(to) {
            swap.schedule(at, b);
        }
    }
    let plan = if o.fault_rate > 0.0 {
        FaultPlan::Random {
            p: o.fault_rate,
            seed: rng.next_u64(),
        }
    } else {
        FaultPlan::Never
    };
    let layer: StressLayer = Layer::with_accounting(Checker::new(FaultInjection::new(swap, plan)));
    let alloc = LuaAllocator::new(layer);
    let outcome = run_chunk(alloc.raw(), chunk);
    // SAFETY: the state is closed: no allocation runs any more.
    let layer = unsafe { alloc.enter() };
    let stats = layer.stats();
    let checker = layer.backend();
    let faults = checker.inner();
    let (short, others): (Vec<_>, Vec<_>) = checker
        .complaints()
        .iter()
        .partition(|c| faults.injected() > 0 && is_short_closure_free(c));
    let short_bytes: usize = short
        .iter()
        .map(|c| match c {
            Complaint::WrongSize {
                recorded, given, ..
            } => recorded - given,
            _ => 0,
        })
        .sum();
    let mut problems = Vec::new();
    // The host's short frees leave the count short by exactly their bytes, and by nothing else.
    if stats.live != short_bytes {
        problems.push(format!("{} bytes live after lua_close", stats.live));
    }
    for c in others {
        problems.push(format!("checker: {c}"));
    }
    for (addr, r) in checker.leaks() {
        problems.push(format!(
            "checker: leak #{} of {} B ({}) at {addr:#x}",
            r.seq, r.size, r.tag
        ));
    }
    if let (Outcome::Error(msg), FaultPlan::Never) = (&outcome, plan) {
        problems.push(format!("failed without injected faults: {msg}"));
    }
    let name = chunk.name.to_string_lossy();
    StateResult {
        allocations: stats.allocations(),
        injected: faults.injected(),
        swaps: faults.inner().swaps(),
        short_closure_frees: (short.len() as u64, short_bytes as u64),
        violation: (!problems.is_empty())
            .then(|| format!("{name} on {backend}: {}", problems.join("; "))),
        outcome,
    }
}

/// Opens a state over the allocation function and `ud` of a live allocator, runs `chunk` in it
/// in protected mode, and closes it.
fn run_chunk((f, ud): (LuaAlloc, *mut c_void), chunk: &Chunk) -> Outcome {
    // SAFETY: the allocator outlives the state (closed below, before the caller drops it).
    let l = unsafe { lmem_lua::version::new_state(f, ud) };
    if l.is_null() {
        Outcome::OutOfMemory
    } else {
        // SAFETY: `l` is a live state; `pmain` gets a pointer to `chunk`, which outlives the
        // call; the state is closed exactly once.
        unsafe {
            let ud = (chunk as *const Chunk).cast_mut().cast();
            let (status, _) = lmem_lua::interp::call_protected(l, pmain, ud);
            let outcome = match status {
                ffi::LUA_OK => Outcome::Ok,
                ffi::LUA_ERRMEM => Outcome::OutOfMemory,
                _ => {
                    let mut len = 0;
                    let p = ffi::lua_tolstring(l, -1, &mut len);
                    let msg = if p.is_null() {
                        "(error object is not a string)".to_string()
                    } else {
                        String::from_utf8_lossy(CStr::from_ptr(p).to_bytes()).into_owned()
                    };
                    if msg.contains("not enough memory") {
                        Outcome::OutOfMemory
                    } else {
                        Outcome::Error(msg)
                    }
                }
            };
            ffi::lua_close(l);
            outcome
        }
    }
}

/// A state for the scaling figure: exactly what `lmem-lua` runs without options (an
/// [`Allocator`] on the lean path: no checker, no faults, no swaps); it must succeed and leave 0
/// bytes live.
fn run_state_plain(chunk: &Chunk, backend: &str) -> StateResult {
    let alloc = Allocator::new(backend).expect("backend names come from the list");
    let outcome = run_chunk((alloc.function(), alloc.ud()), chunk);
    // SAFETY: the state is closed: no allocation runs any more.
    let stats = unsafe { alloc.enter() }.stats();
    let mut problems = Vec::new();
    if stats.live != 0 {
        problems.push(format!("{} bytes live after lua_close", stats.live));
    }
    if let Outcome::Error(msg) = &outcome {
        problems.push(format!("failed: {msg}"));
    }
    let name = chunk.name.to_string_lossy();
    StateResult {
        allocations: stats.allocations(),
        injected: 0,
        swaps: 0,
        short_closure_frees: (0, 0),
        violation: (!problems.is_empty())
            .then(|| format!("{name} on {backend}: {}", problems.join("; "))),
        outcome,
    }
}

/// Loads the workloads once.
fn load_chunks(o: &StressOptions) -> Result<Vec<Chunk>, StressError> {
    if o.workloads.is_empty() {
        return Err(StressError::NoWorkloads);
    }
    o.workloads
        .iter()
        .map(|p| {
            let code = std::fs::read(p).map_err(|source| StressError::ReadWorkload {
                path: p.clone(),
                source,
            })?;
            let stem = p
                .file_stem()
                .map_or("?".into(), |s| s.to_string_lossy().into_owned());
            // A path has no NUL byte.
            let name = CString::new(format!("@{stem}.lua")).unwrap_or_default();
            Ok(Chunk {
                name,
                code,
                scale: o.scale,
            })
        })
        .collect()
}

/// Runs the stress: `threads` workers until the time or state budget is spent.
pub fn run(o: &StressOptions) -> Result<StressReport, StressError> {
    if o.backends.is_empty() {
        return Err(StressError::NoBackends);
    }
    for b in &o.backends {
        if !backends::is_compiled(b) {
            return Err(StressError::UnknownBackend(lmem::UnknownBackend {
                name: b.clone(),
            }));
        }
    }
    if !(0.0..=1.0).contains(&o.fault_rate) {
        return Err(StressError::BadFaultRate(o.fault_rate));
    }
    let chunks = Arc::new(load_chunks(o)?);
    let mut report = run_threads(o, &chunks, o.threads)?;
    if o.scaling {
        report.scaling = Some(scaling(o, &chunks)?);
    }
    check_pools(&mut report.violations);
    Ok(report)
}

fn run_threads(
    o: &StressOptions,
    chunks: &Arc<Vec<Chunk>>,
    threads: usize,
) -> Result<StressReport, StressError> {
    let start = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (o, chunks, issued, stop) =
                (o.clone(), chunks.clone(), issued.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut r = StressReport::default();
                loop {
                    if stop.load(Ordering::Relaxed)
                        || o.duration.is_some_and(|d| start.elapsed() >= d)
                    {
                        break;
                    }
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if o.states.is_some_and(|max| n >= max) {
                        break;
                    }
                    // Each state's draws come from its own index, so the same states (workload,
                    // backend, faults, swaps) run whatever the number of threads.
                    let mut rng = Rng::new(o.seed ^ (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let chunk = &chunks[rng.below(chunks.len())];
                    let backend = &o.backends[rng.below(o.backends.len())];
                    let s = if o.checked {
                        run_state(chunk, backend, &o, &mut rng)
                    } else {
                        run_state_plain(chunk, backend)
                    };
                    r.states += 1;
                    match s.outcome {
                        Outcome::Ok => r.succeeded += 1,
                        Outcome::OutOfMemory => r.out_of_memory += 1,
                        Outcome::Error(_) => r.other_errors += 1,
                    }
                    r.allocations += s.allocations;
                    r.injected += s.injected;
                    r.swaps += s.swaps;
                    r.short_closure_frees.0 += s.short_closure_frees.0;
                    r.short_closure_frees.1 += s.short_closure_frees.1;
                    if let Some(v) = s.violation {
                        r.violations.push(v);
                        if r.violations.len() > 50 {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
                r
            })
        })
        .collect();
    let mut total = StressReport::default();
    for w in workers {
        let r = w.join().map_err(|_| StressError::ThreadPanicked)?;
        total.states += r.states;
        total.succeeded += r.succeeded;
        total.out_of_memory += r.out_of_memory;
        total.other_errors += r.other_errors;
        total.allocations += r.allocations;
        total.injected += r.injected;
        total.swaps += r.swaps;
        total.short_closure_frees.0 += r.short_closure_frees.0;
        total.short_closure_frees.1 += r.short_closure_frees.1;
        total.violations.extend(r.violations);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// States per second on 1 thread and on `threads` threads: the very same states (each draws
/// from its own index) on the plain layer a host runs, each state on its own heap.
fn scaling(o: &StressOptions, chunks: &Arc<Vec<Chunk>>) -> Result<(f64, f64, usize), StressError> {
    let n = o.threads.max(2);
    let plain = StressOptions {
        checked: false,
        duration: None,
        states: Some(128 * n as u64),
        ..o.clone()
    };
    let one = run_threads(&plain, chunks, 1)?;
    let many = run_threads(&plain, chunks, n)?;
    let rate = |r: &StressReport| r.states as f64 / r.elapsed.as_secs_f64();
    Ok((rate(&one), rate(&many), n))
}

/// The shared pools must be back within their bounds once every state is closed.
fn check_pools(violations: &mut Vec<String>) {
    #[cfg(feature = "bump")]
    {
        let (stats, limits) = (
            lmem::backends::bump::pool_stats(),
            lmem::backends::bump::pool_limits(),
        );
        if stats.arenas > limits.arenas {
            violations.push(format!(
                "bump pool holds {} arenas, bound {}",
                stats.arenas, limits.arenas
            ));
        }
    }
    #[cfg(feature = "slab")]
    {
        let (pages, bound) = (
            lmem::backends::slab::pool_pages(),
            lmem::backends::slab::POOL_RETAIN / lmem::backends::slab::PAGE_SIZE,
        );
        if pages > bound {
            violations.push(format!("slab pool holds {pages} pages, bound {bound}"));
        }
    }
    let _ = violations;
}
