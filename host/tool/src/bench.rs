//! `lmem bench`: every workload of `lua/bench` under every configuration — `stock` (Lua's own
//! `l_alloc`, no lmem layer), each compiled backend, and `stock` under each installed
//! `LD_PRELOAD` peer — each run in its own process, runs interleaved round-robin so that a slow
//! patch of a shared machine hits every configuration alike; then a report (`report.json`,
//! `report.html`, markdown tables on stdout).
//!
//! The timed runs take the lean path: no `--stats-json`, which would switch on the detailed
//! accounting. Lua's peak accounted bytes and allocation count come from one extra untimed
//! `--stats-json` run per workload on `system` (Lua's requests do not depend on the backend).
//! Each round also runs an empty program (`-e ''`) under every configuration: its peak RSS is
//! the start-up footprint.
//!
//! Why a process per run: a backend's memory (and a preloaded malloc) must start from nothing,
//! and peak RSS is a process figure. It is the interpreter's `VmHWM` (the peak resident set of
//! the address space it was exec'd into), which the child writes to its stderr as its last act:
//! the workloads run through [`RUNNER`], the start-up runs are [`STARTUP`]. Not `ru_maxrss`: the
//! kernel carries the peak of the address space a process leaves at `exec` into it, so every
//! child of this tool would read at least the tool's own RSS at the spawn (about 5 MiB: more
//! than a stock interpreter's start-up). `ru_maxrss` from `wait4` is the fallback when a child
//! cannot report (no `/proc`).
//!
//! With `--host lua5.4` the workloads run on a stock interpreter instead: `stock` and the peers
//! as it is, each lmem backend through the `lmem` C module (`LMEM_BACKEND=B lua5.4 -l lmem`),
//! which swaps the state to the backend as it loads. Only backends with exact ownership can be
//! swapped to there, and Lua's accounting (which needs `--stats-json`) is left out.

use super::cli::{BenchArgs, Scenario, check_names, compiled_backends};
use super::peers;
use super::report::{self, Accounting, Cell, ConfigInfo, Failure, MissingPeer, Report, Startup};
use super::states::{self, StatesOptions, StatesReport};
use super::trim::{self, TrimReport};
use super::{Interpreter, ToolError, workspace_root};
use indicatif::{ProgressBar, ProgressStyle};
use lmem::backends;
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// Default number of runs per workload × configuration.
pub const DEFAULT_RUNS: usize = 5;

/// One configuration: an lmem backend, or stock Lua, possibly under a preloaded malloc.
#[derive(Clone, Debug)]
pub struct Config {
    /// Name in reports (`stock`, `slab`, `preload:mimalloc`).
    pub name: String,
    /// The `--backend` given to `lmem-lua`; `None` for `--stock`.
    pub backend: Option<String>,
    /// The library in `LD_PRELOAD`, for a peer.
    pub preload: Option<PathBuf>,
    /// For a peer, the lmem backend on the same allocator.
    pub same_as: Option<String>,
}

impl Config {
    /// An lmem backend (or `stock`) by name, without a preload.
    pub fn named(name: &str) -> Config {
        Config {
            name: name.to_owned(),
            backend: (name != "stock").then(|| name.to_owned()),
            preload: None,
            same_as: None,
        }
    }

    /// The lmem options that select it.
    pub fn lmem_args(&self) -> Vec<String> {
        match &self.backend {
            Some(b) => vec!["--backend".to_owned(), b.clone()],
            None => vec!["--stock".to_owned()],
        }
    }

    /// Its entry in the report.
    pub fn info(&self) -> ConfigInfo {
        ConfigInfo {
            name: self.name.clone(),
            backend: self.backend.clone().unwrap_or_else(|| "stock".to_owned()),
            preload: self.preload.as_ref().map(|p| p.display().to_string()),
            same_as: self.same_as.clone(),
        }
    }
}

/// What `lmem bench` was asked to do.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    backends: Vec<String>,
    workloads: Option<Vec<String>>,
    runs: usize,
    scale: f64,
    peers: bool,
    json: bool,
    out: PathBuf,
    bench_dir: PathBuf,
    lua: Option<PathBuf>,
    host: Option<StockHost>,
    scenarios: Vec<Scenario>,
    states: StatesOptions,
    spike_mib: usize,
}

/// `--host`: a stock interpreter, and the `lmem` C module it loads for the backends.
#[derive(Clone, Debug)]
struct StockHost {
    program: PathBuf,
    module: PathBuf,
}

/// `program` as given when it names a file, else the first match on `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 || program.is_file() {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A scenario's default size times the scale factor, at least `min`.
fn scaled(default: usize, scale: f64, min: usize) -> usize {
    ((default as f64 * scale).round() as usize).max(min)
}

/// Resolves the command line's defaults, and refuses what `--host` cannot run.
fn options(a: BenchArgs) -> Result<BenchOptions, ToolError> {
    let root = workspace_root();
    let host = match &a.host {
        None => None,
        Some(program) => Some(StockHost {
            program: find_program(program).ok_or_else(|| ToolError::NoHost {
                program: program.clone(),
            })?,
            module: a
                .module
                .clone()
                .unwrap_or_else(|| root.join("host/module/target/release/liblmem.so")),
        }),
    };
    let swappable = |b: &str| b == "stock" || backends::declares_exact_ownership(b) == Some(true);
    let backends = match a.backends {
        Some(b) => b,
        None => std::iter::once("stock".to_owned())
            .chain(compiled_backends())
            .filter(|b| host.is_none() || swappable(b))
            .collect(),
    };
    let scenarios = a.scenarios.unwrap_or_else(|| match host {
        Some(_) => vec![Scenario::Workloads],
        None => vec![Scenario::Workloads, Scenario::States, Scenario::Trim],
    });
    if host.is_some() {
        if let Some(b) = backends.iter().find(|b| !swappable(b)) {
            return Err(ToolError::Usage(format!(
                "--host: backend '{b}' cannot be swapped to in a stock interpreter (its blocks \
                 cannot be told from the interpreter's malloc blocks); choose from stock and \
                 the backends with exact ownership"
            )));
        }
        if let Some(x) = scenarios.iter().find(|x| **x != Scenario::Workloads) {
            return Err(ToolError::Usage(format!(
                "--host runs the workloads scenario only, not {x:?}"
            )));
        }
        if let Some(h) = &host
            && !h.module.is_file()
        {
            return Err(ToolError::NoModule {
                path: h.module.clone(),
            });
        }
    }
    Ok(BenchOptions {
        backends,
        workloads: a.workloads,
        runs: a.runs,
        scale: a.scale,
        peers: !a.no_peers,
        json: a.json,
        out: a.out.unwrap_or_else(|| root.join("target/lmem-report")),
        bench_dir: a.bench_dir.unwrap_or_else(|| root.join("lua/bench")),
        lua: a.lua,
        host,
        scenarios,
        states: StatesOptions {
            counts: a
                .states
                .unwrap_or_else(|| vec![scaled(states::DEFAULT_STATES, a.scale, 10)]),
            requests: a
                .requests
                .unwrap_or_else(|| scaled(states::DEFAULT_REQUESTS, a.scale, 20)),
            runs: a.runs.min(states::MAX_RUNS),
        },
        spike_mib: a
            .spike_mib
            .unwrap_or_else(|| scaled(trim::DEFAULT_SPIKE_MIB, a.scale, 4)),
    })
}

/// The workloads in `dir`: every `*.lua`, by name without the extension, sorted.
pub fn find_workloads(dir: &Path) -> Result<Vec<String>, ToolError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ToolError::BenchDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "lua").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(ToolError::NoWorkloads {
            dir: dir.to_path_buf(),
        });
    }
    Ok(names)
}

/// What `--stats-json` wrote (the fields the report uses).
#[derive(Clone, Debug, Deserialize)]
struct ChildStats {
    peak: u64,
    allocations: u64,
}

/// One finished run.
#[derive(Clone, Debug)]
struct Sample {
    wall_s: f64,
    max_rss_kib: u64,
}

/// How a child ended.
enum Ended {
    Exited(i32),
    Signalled(i32),
}

/// Runs `cmd` to its end and returns how it ended, its wall time and its own peak RSS.
fn run_child(mut cmd: std::process::Command) -> std::io::Result<(Ended, f64, u64)> {
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain integers and `timeval`s, for which all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not reaped yet (the `Child` is never waited on, and its
        // drop does not wait); `status` and `ru` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    drop(child);
    let ended = if libc::WIFEXITED(status) {
        Ended::Exited(libc::WEXITSTATUS(status))
    } else {
        Ended::Signalled(libc::WTERMSIG(status))
    };
    Ok((ended, wall, u64::try_from(ru.ru_maxrss).unwrap_or(0)))
}

/// The last `n` lines of a file, for failure reports.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Lua that writes the process's peak resident set to stderr (Lua 5.1 to 5.5, LuaJIT).
const REPORT_HWM: &str = "local f = io.open('/proc/self/status') \
     if f then \
       local kib = f:read('*a'):match('VmHWM:%s*(%d+)') f:close() \
       if kib then io.stderr:write('\\nlmem-bench VmHWM ', kib, ' kB\\n') end \
     end";

/// The start-up run: an empty program that reports its peak (`-e` then this).
const STARTUP: &str = REPORT_HWM;

/// The workloads' runner (`runner.lua SCRIPT ARGS…`): runs the script with `arg` and `...` as
/// if it had been run itself, then reports the peak.
const RUNNER: &str = "local script = arg[1] \
local args = {} for i = 2, #arg do args[#args + 1] = arg[i] end \
arg = { [0] = script } for i, v in ipairs(args) do arg[i] = v end \
local chunk = assert(loadfile(script)) \
chunk((unpack or table.unpack)(args)) \
";

/// The peak the child reported on its stderr, KiB.
fn reported_hwm(stderr: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stderr).ok()?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("lmem-bench VmHWM "))?;
    line.strip_prefix("lmem-bench VmHWM ")?
        .strip_suffix(" kB")?
        .parse()
        .ok()
}

/// Formats a scale factor as Lua reads it back (`1`, `0.05`).
fn scale_arg(scale: f64) -> String {
    format!("{scale}")
}

/// What will run: the workloads, the configurations, the interpreter.
struct Plan {
    workloads: Vec<String>,
    configs: Vec<Config>,
    missing: Vec<MissingPeer>,
    interp: Interpreter,
    /// With `--host`: where the module is found as `lmem.so` (set once the scratch exists).
    cpath: Option<PathBuf>,
}

/// Step 1: the workloads asked for (all by default), one configuration per backend (and
/// `stock`), then one per installed peer (on stock), and the interpreter the children run.
fn plan(o: &BenchOptions) -> Result<Plan, ToolError> {
    let workloads = if o.scenarios.contains(&Scenario::Workloads) {
        let all = find_workloads(&o.bench_dir)?;
        match &o.workloads {
            Some(w) => {
                check_names("workload", w, &all)?;
                w.clone()
            }
            None => all,
        }
    } else {
        Vec::new()
    };
    let interp = match (&o.host, &o.lua) {
        (Some(h), _) => Interpreter::at(&h.program)?,
        (None, Some(p)) => Interpreter::at(p)?,
        (None, None) => Interpreter::this_exe()?,
    };
    let mut configs: Vec<Config> = o.backends.iter().map(|b| Config::named(b)).collect();
    let mut missing = Vec::new();
    if o.peers {
        for p in peers::find() {
            match p.path {
                Some(path) => configs.push(Config {
                    name: p.name.to_owned(),
                    backend: None,
                    preload: Some(path),
                    same_as: p.same_as.map(str::to_owned),
                }),
                None => missing.push(MissingPeer {
                    name: p.name.to_owned(),
                    package: p.package.to_owned(),
                }),
            }
        }
    }
    Ok(Plan {
        workloads,
        configs,
        missing,
        interp,
        cpath: None,
    })
}

/// Where the children's output goes while the bench runs (removed at the end).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(out: &Path) -> Result<Scratch, ToolError> {
        std::fs::create_dir_all(out).map_err(ToolError::write(out))?;
        let dir = out.join(".runs");
        std::fs::create_dir_all(&dir).map_err(ToolError::write(&dir))?;
        Ok(Scratch { dir })
    }

    fn file(&self, tag: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{tag}.{ext}"))
    }

    /// A directory where `module` is `lmem.so`, for `LUA_CPATH` (`-l lmem` looks for that
    /// name; the build makes `liblmem.so`).
    fn module_dir(&self, module: &Path) -> Result<PathBuf, ToolError> {
        let dir = self.dir.join("cpath");
        std::fs::create_dir_all(&dir).map_err(ToolError::write(&dir))?;
        let link = dir.join("lmem.so");
        let target = std::fs::canonicalize(module).map_err(ToolError::write(module))?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).map_err(ToolError::write(&link))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How one child run ended: its sample, or its status and the end of its stderr.
type Outcome = Result<Sample, (String, String)>;

/// One child run: the interpreter under configuration `c` with `lmem_extra` after its lmem
/// options, then `lua_args`. Its stdout and stderr go to scratch files named by `tag`.
fn run_one(
    plan: &Plan,
    c: &Config,
    lmem_extra: &[OsString],
    lua_args: &[OsString],
    scratch: &Scratch,
    tag: &str,
) -> Result<Outcome, ToolError> {
    let out_path = scratch.file(tag, "stdout");
    let err_path = scratch.file(tag, "stderr");
    let mut cmd = plan.interp.command();
    match &plan.cpath {
        // A stock interpreter: the backend through the module, swapped to as it loads.
        Some(cpath) => {
            if let Some(b) = &c.backend {
                cmd.env("LMEM_BACKEND", b).args(["-l", "lmem"]);
            }
            cmd.env("LUA_CPATH", cpath.join("?.so"));
        }
        None => {
            cmd.args(c.lmem_args());
        }
    }
    cmd.args(lmem_extra).args(lua_args);
    if let Some(lib) = &c.preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let fo = std::fs::File::create(&out_path).map_err(ToolError::write(&out_path))?;
    let fe = std::fs::File::create(&err_path).map_err(ToolError::write(&err_path))?;
    cmd.stdout(Stdio::from(fo)).stderr(Stdio::from(fe));
    let status = match run_child(cmd) {
        Err(e) => format!("could not run {}: {e}", plan.interp.describe()),
        Ok((Ended::Exited(0), wall_s, ru_maxrss_kib)) => {
            return Ok(Ok(Sample {
                wall_s,
                max_rss_kib: reported_hwm(&err_path).unwrap_or(ru_maxrss_kib),
            }));
        }
        Ok((Ended::Exited(code), ..)) => format!("exit status {code}"),
        Ok((Ended::Signalled(sig), ..)) => format!("killed by signal {sig}"),
    };
    Ok(Err((status, tail(&err_path, 12))))
}

/// The untimed run of `script` on `system` with `--stats-json`: Lua's accounting.
fn accounting_run(
    plan: &Plan,
    script: &Path,
    scale: &str,
    scratch: &Scratch,
    tag: &str,
) -> Result<Result<ChildStats, (String, String)>, ToolError> {
    let stats_path = scratch.file(tag, "stats.json");
    let extra = [OsString::from("--stats-json"), stats_path.clone().into()];
    let args = [script.as_os_str().to_owned(), OsString::from(scale)];
    let outcome = run_one(plan, &Config::named("system"), &extra, &args, scratch, tag)?;
    Ok(outcome.and_then(|_| {
        std::fs::read_to_string(&stats_path)
            .ok()
            .and_then(|t| serde_json::from_str::<ChildStats>(&t).ok())
            .ok_or_else(|| {
                let p = stats_path.display();
                (
                    format!("no readable --stats-json output in '{p}'"),
                    String::new(),
                )
            })
    }))
}

/// What the runs gave.
struct Measured {
    /// `samples[w][c]`: the runs of workload `w` on configuration `c` that succeeded.
    samples: Vec<Vec<Vec<Sample>>>,
    /// `failed[w][c]`: a run failed (and the cell was not run again).
    failed: Vec<Vec<bool>>,
    /// `startup[c]`: peak RSS (KiB) of the empty runs of configuration `c`; `None` once one
    /// failed.
    startup: Vec<Option<Vec<u64>>>,
    /// Lua's accounting per workload, where its run succeeded.
    accounting: Vec<Option<ChildStats>>,
    failures: Vec<Failure>,
}

impl Measured {
    /// No run (the workloads scenario was not asked for).
    fn nothing() -> Measured {
        Measured {
            samples: Vec::new(),
            failed: Vec::new(),
            startup: Vec::new(),
            accounting: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Keeps a failure, and prints it at once: `suspend`, not `println`, since a hidden bar
    /// (stderr not a terminal) prints nothing through `println`, and a failure must be seen.
    fn fail(&mut self, bar: &ProgressBar, what: &str, c: &str, run: usize, why: (String, String)) {
        let (status, stderr) = why;
        bar.suspend(|| {
            eprintln!(
                "FAILED: {what} on {c} (run {run}): {status}\n{}",
                indent(&stderr)
            )
        });
        self.failures.push(Failure {
            workload: what.to_owned(),
            config: c.to_owned(),
            run,
            status,
            stderr,
        });
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Step 2: every run, interleaved round-robin (in each round the empty run of every
/// configuration, then every workload × configuration), so that a slow patch of a shared machine
/// hits every configuration alike; then the untimed accounting run of each workload. A cell that
/// failed once is not run again; its failure is printed at once and kept.
fn run_interleaved(
    plan: &Plan,
    o: &BenchOptions,
    scratch: &Scratch,
) -> Result<Measured, ToolError> {
    let (nw, nc) = (plan.workloads.len(), plan.configs.len());
    // Lua's accounting needs lmem-lua's `--stats-json`: not on a stock interpreter.
    let accounted = if plan.cpath.is_some() {
        &[][..]
    } else {
        &plan.workloads[..]
    };
    let bar = progress_bar((o.runs * (nw + 1) * nc + accounted.len()) as u64);
    let mut m = Measured {
        samples: vec![vec![Vec::new(); nc]; nw],
        failed: vec![vec![false; nc]; nw],
        startup: vec![Some(Vec::new()); nc],
        accounting: vec![None; nw],
        failures: Vec::new(),
    };
    let scale = scale_arg(o.scale);
    let script = |w: &str| o.bench_dir.join(format!("{w}.lua"));
    let runner = scratch.dir.join("runner.lua");
    std::fs::write(&runner, format!("{RUNNER}{REPORT_HWM}\n"))
        .map_err(ToolError::write(&runner))?;
    let empty = [OsString::from("-e"), OsString::from(STARTUP)];
    for run in 1..=o.runs {
        for (ci, c) in plan.configs.iter().enumerate() {
            bar.set_message(format!("run {run}/{} start-up on {}", o.runs, c.name));
            bar.inc(1);
            if m.startup[ci].is_none() {
                continue;
            }
            let tag = format!("startup.{}", c.name.replace(':', "_"));
            match run_one(plan, c, &[], &empty, scratch, &tag)? {
                Ok(sample) => m.startup[ci]
                    .iter_mut()
                    .for_each(|v| v.push(sample.max_rss_kib)),
                Err(why) => {
                    m.startup[ci] = None;
                    m.fail(&bar, "start-up (-e '')", &c.name, run, why);
                }
            }
        }
        for (wi, w) in plan.workloads.iter().enumerate() {
            let args = [
                runner.clone().into_os_string(),
                script(w).into_os_string(),
                OsString::from(&scale),
            ];
            for (ci, c) in plan.configs.iter().enumerate() {
                bar.set_message(format!("run {run}/{} {w} on {}", o.runs, c.name));
                bar.inc(1);
                if m.failed[wi][ci] {
                    continue;
                }
                let tag = format!("{w}.{}", c.name.replace(':', "_"));
                match run_one(plan, c, &[], &args, scratch, &tag)? {
                    Ok(sample) => m.samples[wi][ci].push(sample),
                    Err(why) => {
                        m.failed[wi][ci] = true;
                        m.fail(&bar, w, &c.name, run, why);
                    }
                }
            }
        }
    }
    let system = plan.configs.iter().position(|c| c.name == "system");
    for (wi, w) in accounted.iter().enumerate() {
        bar.set_message(format!("Lua's accounting of {w} (untimed)"));
        bar.inc(1);
        if system.is_some_and(|ci| m.failed[wi][ci]) {
            continue; // that failure is reported already
        }
        match accounting_run(
            plan,
            &script(w),
            &scale,
            scratch,
            &format!("{w}.accounting"),
        )? {
            Ok(stats) => m.accounting[wi] = Some(stats),
            Err(why) => m.fail(&bar, w, "system --stats-json", 0, why),
        }
    }
    bar.finish_and_clear();
    Ok(m)
}

/// The report's cell of one workload × configuration: medians of the runs that succeeded.
fn cell(workload: &str, config: &str, s: &[Sample], failed: bool) -> Cell {
    let ok = !failed && !s.is_empty();
    Cell {
        workload: workload.to_owned(),
        config: config.to_owned(),
        ok,
        wall_s: s.iter().map(|x| x.wall_s).collect(),
        median_wall_s: ok.then(|| report::median(s.iter().map(|x| x.wall_s))),
        ratio: None,
        max_rss_kib: s.iter().map(|x| x.max_rss_kib).collect(),
        median_max_rss_kib: ok
            .then(|| report::median(s.iter().map(|x| x.max_rss_kib as f64)) as u64),
        rss_ratio: None,
    }
}

/// How the machine was while the bench ran.
struct Conditions {
    load_before: Option<f64>,
    started: Instant,
}

/// Step 3: the report: a cell per workload × configuration, ratios to the baseline (`system`
/// when it ran), geomeans.
fn collect(
    plan: Plan,
    o: &BenchOptions,
    m: Measured,
    states: Option<StatesReport>,
    trim: Option<TrimReport>,
    when: Conditions,
) -> Report {
    let baseline = if plan.configs.iter().any(|c| c.name == "system") {
        "system".to_owned()
    } else {
        plan.configs[0].name.clone()
    };
    let mut cells = Vec::new();
    for (wi, w) in plan.workloads.iter().enumerate() {
        for (ci, c) in plan.configs.iter().enumerate() {
            cells.push(cell(w, &c.name, &m.samples[wi][ci], m.failed[wi][ci]));
        }
    }
    let startup = plan
        .configs
        .iter()
        .zip(&m.startup)
        .map(|(c, runs)| Startup {
            config: c.name.clone(),
            max_rss_kib: runs.clone().unwrap_or_default(),
            median_max_rss_kib: runs
                .as_ref()
                .filter(|r| !r.is_empty())
                .map(|r| report::median(r.iter().map(|&k| k as f64)) as u64),
            over_stock_mib: None,
        })
        .collect();
    let accounting = plan
        .workloads
        .iter()
        .zip(&m.accounting)
        .filter_map(|(w, a)| {
            let a = a.as_ref()?;
            Some(Accounting {
                workload: w.clone(),
                backend: "system".to_owned(),
                peak_bytes: a.peak,
                allocations: a.allocations,
            })
        })
        .collect();
    let mut rep = Report {
        schema: report::SCHEMA,
        tool: format!("lmem {}", env!("CARGO_PKG_VERSION")),
        lua_version: match &o.host {
            Some(h) => host_version(&h.program).unwrap_or(0),
            None => lmem_lua::version::LUA_VERSION_NUM,
        },
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        interpreter: match &o.host {
            Some(h) => format!(
                "{} (backends: LMEM_BACKEND=B {0} -l lmem, module {})",
                h.program.display(),
                h.module.display()
            ),
            None => plan.interp.describe(),
        },
        rss_source: "VmHWM of each child's interpreter, which it reports as it ends (KiB)"
            .to_owned(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_before: when.load_before,
        loadavg_after: loadavg(),
        elapsed_s: when.started.elapsed().as_secs_f64(),
        runs: o.runs,
        scale: o.scale,
        baseline,
        configurations: plan.configs.iter().map(Config::info).collect(),
        missing_peers: plan.missing,
        workloads: plan.workloads,
        results: cells,
        geomean: Vec::new(),
        accounting,
        startup,
        comparisons: Vec::new(),
        states,
        trim,
        targets: Vec::new(),
        failures: m.failures,
    };
    rep.compute();
    rep
}

/// `LUA_VERSION_NUM` of a stock interpreter, from its `_VERSION` (`Lua 5.4` is 504).
fn host_version(program: &Path) -> Option<u32> {
    let out = std::process::Command::new(program)
        .args(["-e", "io.write(_VERSION)"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.strip_prefix("Lua ")?.trim().split_once('.')?;
    Some(major.parse::<u32>().ok()? * 100 + minor.parse::<u32>().ok()?)
}

/// Step 4: `report.json` and `report.html` into the out directory; the markdown tables (or the
/// JSON, with `--json`) on stdout; then an error if any run failed.
fn output(rep: &Report, o: &BenchOptions) -> Result<(), ToolError> {
    let paths = report::write(rep, &o.out)?;
    let md = rep.markdown();
    if o.json {
        println!("{}", serde_json::to_string_pretty(rep)?);
        eprint!("{md}");
    } else {
        print!("{md}");
    }
    let note = |s: String| {
        if o.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    if !rep.missing_peers.is_empty() {
        let names: Vec<&str> = rep.missing_peers.iter().map(|m| m.name.as_str()).collect();
        note(format!(
            "\npeers not installed: {} — install them with:\n{}",
            names.join(", "),
            peers::INSTALL_LINE
        ));
    }
    note(format!(
        "\nreport: {}\n        {}",
        paths.html.display(),
        paths.json.display()
    ));
    if rep.failures.is_empty() {
        return Ok(());
    }
    Err(ToolError::RunsFailed(
        rep.failures
            .iter()
            .map(|f| {
                format!(
                    "{} on {} (run {}): {}",
                    f.workload, f.config, f.run, f.status
                )
            })
            .collect(),
    ))
}

/// `lmem bench`: plan, run interleaved, collect, report.
pub fn run(args: BenchArgs) -> Result<(), ToolError> {
    let o = options(args)?;
    let mut plan = plan(&o)?;
    let scratch = Scratch::new(&o.out)?;
    if let Some(h) = &o.host {
        plan.cpath = Some(scratch.module_dir(&h.module)?);
    }
    let when = Conditions {
        load_before: loadavg(),
        started: Instant::now(),
    };
    let mut measured = if o.scenarios.contains(&Scenario::Workloads) {
        run_interleaved(&plan, &o, &scratch)?
    } else {
        Measured::nothing()
    };
    let states = if o.scenarios.contains(&Scenario::States) {
        let steps = o.runs * plan.configs.len() * (o.states.counts.len() + 1);
        let (report, failures) =
            with_bar(steps, |step| states::run(&plan.configs, &o.states, step))?;
        report_failures(&failures);
        measured.failures.extend(failures);
        Some(report)
    } else {
        None
    };
    let trim = if o.scenarios.contains(&Scenario::Trim) {
        let (report, failures) = with_bar(plan.configs.len(), |step| {
            trim::run(&plan.interp, &plan.configs, o.spike_mib, &scratch.dir, step)
        })?;
        report_failures(&failures);
        measured.failures.extend(failures);
        Some(report)
    } else {
        None
    };
    drop(scratch);
    let rep = collect(plan, &o, measured, states, trim, when);
    output(&rep, &o)
}

/// Runs `f` with a progress bar of `steps` steps, which `f` advances with a message per step.
fn with_bar<T>(steps: usize, f: impl FnOnce(&mut dyn FnMut(String)) -> T) -> T {
    let bar = progress_bar(steps as u64);
    let out = f(&mut |msg| {
        bar.set_message(msg);
        bar.inc(1);
    });
    bar.finish_and_clear();
    out
}

/// Prints a scenario's failures as the workloads' are printed.
fn report_failures(failures: &[Failure]) {
    for f in failures {
        eprintln!(
            "FAILED: {} on {} (run {}): {}\n{}",
            f.workload,
            f.config,
            f.run,
            f.status,
            indent(&f.stderr)
        );
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The 1-minute load average, when the system says (a noisy machine shows here).
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
