//! The states scenario of `lmem bench`: what many small Lua states cost.
//!
//! - **Footprint**: N states alive at once (default 2000), each made, given the standard
//!   libraries, running a small program (`lua/state.lua` of this crate: a few functions and
//!   tables, a few KiB of data) and fully collected, then kept alive. Per state: the RSS it adds
//!   ((RSS with N states − RSS before) / N, from `/proc/self/statm`), Lua's live bytes (lmem's
//!   `live`, or `lua_gc(LUA_GCCOUNT)` on stock), and the bytes the backend reserves
//!   (`backend_stats().reserved`, when the backend says).
//! - **State per request**: states made, run (the same program) and closed one after another,
//!   per second, over a fixed count (default 5000).
//!
//! Each measurement runs in its own child process, so that `LD_PRELOAD` applies to a peer and
//! every configuration starts from nothing: the child is this executable (the hidden
//! subcommand `lmem __states`). States are made the way `lmem-lua` makes them:
//! [`lmem::Allocator::new`] and [`lmem_lua::version::new_state`] (on the lean path), or
//! [`lmem_lua::version::new_stock_state`] for stock. Runs are interleaved across
//! configurations, as the workloads are; the report gives medians.

use crate::bench::Config;
use crate::cli::{StatesChildArgs, StatesMode};
use crate::report::tables::{Table, times};
use crate::report::{Failure, median};
use crate::{Interpreter, ToolError};
use lmem::Allocator;
use lmem_lua::ffi;
use serde::{Deserialize, Serialize};
use std::ffi::{CStr, c_int};
use std::fmt;
use std::time::Instant;

/// The program every state runs.
pub const SCRIPT: &str = include_str!("../lua/state.lua");

/// States alive at once, by default.
pub const DEFAULT_STATES: usize = 2000;
/// States made, run and closed per measurement of the request rate, by default.
pub const DEFAULT_REQUESTS: usize = 5000;
/// Runs of each measurement at most (`--runs` when fewer): its figures move little between
/// runs, and three keep the scenario under a minute with the defaults.
pub const MAX_RUNS: usize = 3;
/// States made and closed before the timed ones (untimed warm-up).
const WARM_UP: usize = 200;

/// One footprint measurement (one child).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FootprintRun {
    /// States alive.
    pub states: usize,
    /// RSS of the child before the first state (bytes).
    pub rss_before: u64,
    /// RSS with every state alive (bytes).
    pub rss_after: u64,
    /// Lua's live bytes, summed over the states.
    pub live: u64,
    /// The bytes the backends reserve, summed, when every backend says.
    pub reserved: Option<u64>,
}

/// One request-rate measurement (one child).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestsRun {
    /// States made, run and closed.
    pub states: usize,
    /// Wall seconds for all of them.
    pub seconds: f64,
}

/// The footprint of one configuration at one count: medians of its runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Footprint {
    /// Configuration.
    pub config: String,
    /// States alive.
    pub states: usize,
    /// Each run.
    pub runs: Vec<FootprintRun>,
    /// RSS per state, bytes (median).
    pub rss_per_state: Option<f64>,
    /// Lua's live bytes per state (median).
    pub live_per_state: Option<f64>,
    /// The backend's reserved bytes per state (median), when it says.
    pub reserved_per_state: Option<f64>,
}

/// The request rate of one configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PerRequest {
    /// Configuration.
    pub config: String,
    /// Each run.
    pub runs: Vec<RequestsRun>,
    /// States per second (median of the runs' rates).
    pub per_second: Option<f64>,
}

/// What the states scenario measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatesReport {
    /// The counts of states alive at once.
    pub counts: Vec<usize>,
    /// States per request-rate run.
    pub requests: usize,
    /// Runs per measurement.
    pub runs: usize,
    /// Bytes of the program each state runs.
    pub script_bytes: usize,
    /// Configurations, in order.
    pub configurations: Vec<String>,
    /// One per configuration × count.
    pub footprint: Vec<Footprint>,
    /// One per configuration.
    pub per_request: Vec<PerRequest>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct StatesOptions {
    /// States alive at once, one measurement per count.
    pub counts: Vec<usize>,
    /// States per request-rate run.
    pub requests: usize,
    /// Runs of each.
    pub runs: usize,
}

/// Why a child of the scenario failed.
#[derive(Debug)]
pub enum ChildError {
    /// The backend is not compiled in.
    UnknownBackend(lmem::UnknownBackend),
    /// `lua_newstate` returned NULL.
    NoState,
    /// The program failed in a state.
    Script(String),
    /// `/proc/self/statm` cannot be read.
    Statm(std::io::Error),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::UnknownBackend(e) => e.fmt(f),
            ChildError::NoState => f.write_str("cannot create a state: not enough memory"),
            ChildError::Script(m) => write!(f, "the state's program failed: {m}"),
            ChildError::Statm(e) => write!(f, "cannot read /proc/self/statm: {e}"),
        }
    }
}

impl std::error::Error for ChildError {}

/// This process's resident set, bytes (`/proc/self/statm`, second field, in pages).
pub fn rss_bytes() -> Result<u64, std::io::Error> {
    let text = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| std::io::Error::other("no resident field"))?;
    Ok(pages * page_size())
}

/// The size of a page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096)
}

/// One live state: its memory (none for stock) and the state.
struct Live {
    alloc: Option<Box<Allocator>>,
    l: *mut ffi::lua_State,
}

impl Live {
    /// Makes a state as `lmem-lua` does (on `backend`, or stock), opens the libraries, runs
    /// [`SCRIPT`] and collects fully.
    fn new(backend: Option<&str>) -> Result<Live, ChildError> {
        let (alloc, l) = match backend {
            Some(name) => {
                // Boxed: the `ud` Lua holds stays where it is.
                let alloc = Box::new(Allocator::new(name).map_err(ChildError::UnknownBackend)?);
                // SAFETY: the allocator outlives the state: `Live` closes the state before
                // dropping it (field order and `Drop` below).
                let l = unsafe { lmem_lua::version::new_state(alloc.function(), alloc.ud()) };
                (Some(alloc), l)
            }
            // SAFETY: no precondition; the state is closed by `Drop`.
            None => (None, unsafe { lmem_lua::version::new_stock_state() }),
        };
        if l.is_null() {
            return Err(ChildError::NoState);
        }
        let live = Live { alloc, l };
        // SAFETY: `l` is a fresh live state with room on its stack; `setup` ignores its
        // argument.
        let (status, _) =
            unsafe { lmem_lua::interp::call_protected(live.l, setup, std::ptr::null_mut()) };
        if status != ffi::LUA_OK {
            // SAFETY: on an error the message is on top of the live state's stack.
            let msg = unsafe { error_message(live.l) };
            return Err(ChildError::Script(msg));
        }
        // SAFETY: a live state, outside any call into it.
        unsafe { ffi::lua_settop(live.l, 0) };
        Ok(live)
    }

    /// Lua's live bytes: lmem's count, or Lua's own for stock.
    fn live(&self) -> u64 {
        match &self.alloc {
            // SAFETY: no allocation runs: the state is idle between calls.
            Some(a) => unsafe { a.enter() }.live() as u64,
            // SAFETY: a live, idle state.
            None => unsafe { gc_count_bytes(self.l) },
        }
    }

    /// The bytes the backend reserves, when it says (never for stock).
    fn reserved(&self) -> Option<u64> {
        let a = self.alloc.as_ref()?;
        // SAFETY: no allocation runs: the state is idle between calls.
        unsafe { a.enter() }
            .backend_stats()
            .reserved
            .map(|r| r as u64)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // SAFETY: `l` is live and closed exactly once, before the allocator is dropped.
        unsafe { ffi::lua_close(self.l) };
    }
}

/// Opens the libraries, runs [`SCRIPT`], collects fully.
unsafe extern "C-unwind" fn setup(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called through `call_protected` on a live state; the script is static; errors
    // longjmp out of this frame, which owns nothing to drop.
    unsafe {
        ffi::luaL_openlibs(l);
        let status = ffi::luaL_loadbuffer(
            l,
            SCRIPT.as_ptr().cast(),
            SCRIPT.len(),
            c"=state.lua".as_ptr(),
        );
        if status != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        ffi::lua_call(l, 0, 0);
        gc_collect(l);
    }
    0
}

/// A full collection.
///
/// # Safety
///
/// `l` is a live state.
unsafe fn gc_collect(l: *mut ffi::lua_State) {
    // SAFETY: a live state (caller).
    unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0);
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        ffi::lua_gc(l, ffi::LUA_GCCOLLECT);
    }
}

/// Lua's own count of its bytes (`LUA_GCCOUNT` KiB and `LUA_GCCOUNTB` bytes).
///
/// # Safety
///
/// `l` is a live state.
unsafe fn gc_count_bytes(l: *mut ffi::lua_State) -> u64 {
    // SAFETY: a live state (caller).
    let (kib, b) = unsafe {
        #[cfg(any(feature = "lua51", feature = "luajit"))]
        let v = (
            ffi::lua_gc(l, ffi::LUA_GCCOUNT, 0),
            ffi::lua_gc(l, ffi::LUA_GCCOUNTB, 0),
        );
        #[cfg(not(any(feature = "lua51", feature = "luajit")))]
        let v = (
            ffi::lua_gc(l, ffi::LUA_GCCOUNT),
            ffi::lua_gc(l, ffi::LUA_GCCOUNTB),
        );
        v
    };
    u64::try_from(kib).unwrap_or(0) * 1024 + u64::try_from(b).unwrap_or(0)
}

/// The error message on top of the stack.
///
/// # Safety
///
/// `l` is a live state with a value on top of its stack.
unsafe fn error_message(l: *mut ffi::lua_State) -> String {
    // SAFETY: a live state with a value on top (caller); the string is copied at once.
    unsafe {
        let p = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
        if p.is_null() {
            "(error object is not a string)".to_owned()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// N states alive at once.
fn footprint(backend: Option<&str>, n: usize) -> Result<FootprintRun, ChildError> {
    let mut states: Vec<Live> = Vec::with_capacity(n);
    let rss_before = rss_bytes().map_err(ChildError::Statm)?;
    for _ in 0..n {
        states.push(Live::new(backend)?);
    }
    let rss_after = rss_bytes().map_err(ChildError::Statm)?;
    let live = states.iter().map(Live::live).sum();
    let reserved = states.iter().map(Live::reserved).sum::<Option<u64>>();
    Ok(FootprintRun {
        states: n,
        rss_before,
        rss_after,
        live,
        reserved,
    })
}

/// `n` states made, run and closed, one after another, after an untimed warm-up.
fn requests(backend: Option<&str>, n: usize) -> Result<RequestsRun, ChildError> {
    for _ in 0..WARM_UP.min(n) {
        drop(Live::new(backend)?);
    }
    let start = Instant::now();
    for _ in 0..n {
        drop(Live::new(backend)?);
    }
    Ok(RequestsRun {
        states: n,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `lmem __states`: one measurement, printed as one line of JSON.
pub fn child(a: StatesChildArgs) -> Result<(), ToolError> {
    let backend = if a.stock {
        None
    } else {
        Some(a.backend.as_str())
    };
    let line = match a.mode {
        StatesMode::Footprint => footprint(backend, a.count).map(|r| serde_json::to_string(&r)),
        StatesMode::Requests => requests(backend, a.count).map(|r| serde_json::to_string(&r)),
    }
    .map_err(ToolError::StatesChild)??;
    println!("{line}");
    Ok(())
}

/// Runs one child of the scenario and reads its line; `Err((status, stderr))` when it fails.
fn run_child<T: for<'de> Deserialize<'de>>(
    c: &Config,
    mode: &str,
    count: usize,
) -> Result<Result<T, (String, String)>, ToolError> {
    let me = Interpreter::subcommand("__states")?;
    let mut cmd = me.command();
    match &c.backend {
        Some(b) => cmd.args(["--backend", b]),
        None => cmd.arg("--stock"),
    };
    cmd.args([mode, &count.to_string()]);
    if let Some(lib) = &c.preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = cmd.output().map_err(|source| ToolError::Spawn {
        program: me.describe(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    if !out.status.success() {
        return Ok(Err((out.status.to_string(), stderr)));
    }
    Ok(
        serde_json::from_slice(&out.stdout)
            .map_err(|e| (format!("unreadable result: {e}"), stderr)),
    )
}

/// Runs the scenario: for each round, every configuration's footprint at every count, then its
/// request rate; each in its own child. `progress` is called before each child.
pub fn run(
    configs: &[Config],
    o: &StatesOptions,
    mut progress: impl FnMut(String),
) -> Result<(StatesReport, Vec<Failure>), ToolError> {
    let nc = configs.len();
    let mut foot: Vec<Vec<Vec<FootprintRun>>> = vec![vec![Vec::new(); o.counts.len()]; nc];
    let mut req: Vec<Vec<RequestsRun>> = vec![Vec::new(); nc];
    let mut failed = vec![false; nc];
    let mut failures = Vec::new();
    for run in 1..=o.runs {
        for (ci, c) in configs.iter().enumerate() {
            if failed[ci] {
                continue;
            }
            let mut fail = |what: String, (status, stderr): (String, String)| {
                failures.push(Failure {
                    workload: what,
                    config: c.name.clone(),
                    run,
                    status,
                    stderr,
                })
            };
            for (ni, &n) in o.counts.iter().enumerate() {
                progress(format!("states: {n} alive on {} (run {run})", c.name));
                match run_child::<FootprintRun>(c, "footprint", n)? {
                    Ok(r) => foot[ci][ni].push(r),
                    Err(why) => {
                        fail(format!("states: {n} alive"), why);
                        failed[ci] = true;
                    }
                }
            }
            if failed[ci] {
                continue;
            }
            progress(format!(
                "states: {} per request on {} (run {run})",
                o.requests, c.name
            ));
            match run_child::<RequestsRun>(c, "requests", o.requests)? {
                Ok(r) => req[ci].push(r),
                Err(why) => {
                    fail("states: per request".to_owned(), why);
                    failed[ci] = true;
                }
            }
        }
    }
    let per = |runs: &[FootprintRun], f: &dyn Fn(&FootprintRun) -> Option<f64>| {
        let v: Vec<f64> = runs.iter().filter_map(f).collect();
        (!v.is_empty() && v.len() == runs.len()).then(|| median(v.into_iter()))
    };
    let mut footprint = Vec::new();
    let mut per_request = Vec::new();
    for (ci, c) in configs.iter().enumerate() {
        for (ni, &n) in o.counts.iter().enumerate() {
            let runs = if failed[ci] {
                Vec::new()
            } else {
                foot[ci][ni].clone()
            };
            footprint.push(Footprint {
                config: c.name.clone(),
                states: n,
                rss_per_state: per(&runs, &|r| {
                    Some((r.rss_after as f64 - r.rss_before as f64) / r.states as f64)
                }),
                live_per_state: per(&runs, &|r| Some(r.live as f64 / r.states as f64)),
                reserved_per_state: per(&runs, &|r| r.reserved.map(|x| x as f64 / r.states as f64)),
                runs,
            });
        }
        let runs = if failed[ci] {
            Vec::new()
        } else {
            req[ci].clone()
        };
        per_request.push(PerRequest {
            config: c.name.clone(),
            per_second: (!runs.is_empty())
                .then(|| median(runs.iter().map(|r| r.states as f64 / r.seconds))),
            runs,
        });
    }
    let report = StatesReport {
        counts: o.counts.clone(),
        requests: o.requests,
        runs: o.runs,
        script_bytes: SCRIPT.len(),
        configurations: configs.iter().map(|c| c.name.clone()).collect(),
        footprint,
        per_request,
    };
    Ok((report, failures))
}

/// KiB with one decimal, or `–`.
fn kib(b: Option<f64>) -> String {
    b.map_or("–".to_owned(), |b| format!("{:.1}", b / 1024.0))
}

impl StatesReport {
    /// The footprint of `config` at `states`.
    pub fn footprint_of(&self, config: &str, states: usize) -> Option<&Footprint> {
        self.footprint
            .iter()
            .find(|f| f.config == config && f.states == states)
    }

    /// The request rate of `config`.
    pub fn rate_of(&self, config: &str) -> Option<f64> {
        self.per_request
            .iter()
            .find(|p| p.config == config)
            .and_then(|p| p.per_second)
    }

    /// The footprint table and the request-rate table.
    pub fn tables(&self) -> Vec<Table> {
        let mut header = vec!["configuration".to_owned()];
        for n in &self.counts {
            header.push(format!("RSS per state, N={n}"));
            header.push("Lua live".to_owned());
            header.push("backend reserved".to_owned());
        }
        let stock_rss = |n: usize| self.footprint_of("stock", n).and_then(|f| f.rss_per_state);
        let rows = self
            .configurations
            .iter()
            .map(|c| {
                let mut row = vec![format!("`{c}`")];
                for &n in &self.counts {
                    let f = self.footprint_of(c, n);
                    let rss = f.and_then(|f| f.rss_per_state);
                    row.push(match (rss, stock_rss(n)) {
                        (Some(r), Some(s)) if s > 0.0 => {
                            format!("{} ({})", kib(Some(r)), times(Some(r / s)))
                        }
                        (Some(_), _) => kib(rss),
                        (None, _) => "FAILED".to_owned(),
                    });
                    row.push(kib(f.and_then(|f| f.live_per_state)));
                    row.push(kib(f.and_then(|f| f.reserved_per_state)));
                }
                row
            })
            .collect();
        let footprint = Table {
            caption: format!(
                "States alive at once: N states, each with the standard libraries and a {}-byte \
                 program run and fully collected, all kept alive; per state, KiB, median of {} \
                 runs (RSS: (RSS with N states − RSS before) / N, from /proc/self/statm; × \
                 `stock`):",
                self.script_bytes, self.runs
            ),
            header,
            rows,
        };
        let stock_rate = self.rate_of("stock");
        let rows = self
            .configurations
            .iter()
            .map(|c| {
                let rate = self.rate_of(c);
                vec![
                    format!("`{c}`"),
                    rate.map_or("FAILED".to_owned(), |r| format!("{r:.0}")),
                    match (rate, stock_rate) {
                        (Some(r), Some(s)) if s > 0.0 => times(Some(r / s)),
                        _ => "–".to_owned(),
                    },
                ]
            })
            .collect();
        let rate = Table {
            caption: format!(
                "State per request: {} states made, run (the same program) and closed one after \
                 another; states per second, median of {} runs (higher is better):",
                self.requests, self.runs
            ),
            header: vec![
                "configuration".to_owned(),
                "states/s".to_owned(),
                "× `stock`".to_owned(),
            ],
            rows,
        };
        vec![footprint, rate]
    }
}
