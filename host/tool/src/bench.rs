//! `lmem bench`: every workload of `lua/bench` under every configuration (each compiled backend,
//! and the `system` backend under each installed `LD_PRELOAD` peer), each run in its own process,
//! runs interleaved round-robin so that a slow patch of a shared machine hits every configuration
//! alike; then a report (`report.json`, `report.html`, a markdown table on stdout).
//!
//! Why a process per run: a backend's memory (and a preloaded malloc) must start from nothing,
//! and peak RSS is a process figure: it comes from the child's `rusage` as `wait4` returns it
//! (`ru_maxrss`, KiB), not from a delta of `getrusage(RUSAGE_CHILDREN)`, which keeps the maximum
//! over all children ever reaped rather than this one's.

use super::cli::{BenchArgs, check_names, compiled_backends};
use super::peers;
use super::report::{self, Cell, ConfigInfo, Failure, MissingPeer, Report};
use super::{Interpreter, ToolError, workspace_root};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// Default number of runs per workload × configuration.
pub const DEFAULT_RUNS: usize = 5;

/// One configuration: a backend, possibly under a preloaded malloc.
#[derive(Clone, Debug)]
pub struct Config {
    /// Name in reports (`slab`, `preload:mimalloc`).
    pub name: String,
    /// The `--backend` given to `lmem-lua`.
    pub backend: String,
    /// The library in `LD_PRELOAD`, for a peer.
    pub preload: Option<PathBuf>,
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
}

/// Resolves the command line's defaults.
fn options(a: BenchArgs) -> BenchOptions {
    let root = workspace_root();
    BenchOptions {
        backends: a.backends.unwrap_or_else(compiled_backends),
        workloads: a.workloads,
        runs: a.runs,
        scale: a.scale,
        peers: !a.no_peers,
        json: a.json,
        out: a.out.unwrap_or_else(|| root.join("target/lmem-report")),
        bench_dir: a.bench_dir.unwrap_or_else(|| root.join("lua/bench")),
        lua: a.lua,
    }
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
    stats: Option<ChildStats>,
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
}

/// Step 1: the workloads asked for (all by default), one configuration per backend, then one per
/// installed peer, and the interpreter the children run.
fn plan(o: &BenchOptions) -> Result<Plan, ToolError> {
    let all = find_workloads(&o.bench_dir)?;
    let workloads = match &o.workloads {
        Some(w) => {
            check_names("workload", w, &all)?;
            w.clone()
        }
        None => all,
    };
    let interp = match &o.lua {
        Some(p) => Interpreter::at(p)?,
        None => Interpreter::this_exe()?,
    };
    let mut configs: Vec<Config> = o
        .backends
        .iter()
        .map(|b| Config {
            name: b.clone(),
            backend: b.clone(),
            preload: None,
        })
        .collect();
    let mut missing = Vec::new();
    if o.peers {
        for p in peers::find() {
            match p.path {
                Some(path) => configs.push(Config {
                    name: p.name.to_owned(),
                    backend: "system".to_owned(),
                    preload: Some(path),
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
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One child run: the interpreter on `script scale` under a configuration. `Ok` with the sample
/// when it exits with 0; `Err((status, end of stderr))` when it does not.
fn run_one(
    plan: &Plan,
    c: &Config,
    script: &Path,
    scale: &str,
    scratch: &Scratch,
    tag: &str,
) -> Result<Result<Sample, (String, String)>, ToolError> {
    let stats_path = scratch.file(tag, "stats.json");
    let out_path = scratch.file(tag, "stdout");
    let err_path = scratch.file(tag, "stderr");
    let _ = std::fs::remove_file(&stats_path);
    let mut cmd = plan.interp.command();
    cmd.arg("--backend")
        .arg(&c.backend)
        .arg("--stats-json")
        .arg(&stats_path)
        .arg(script)
        .arg(scale);
    if let Some(lib) = &c.preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let fo = std::fs::File::create(&out_path).map_err(ToolError::write(&out_path))?;
    let fe = std::fs::File::create(&err_path).map_err(ToolError::write(&err_path))?;
    cmd.stdout(Stdio::from(fo)).stderr(Stdio::from(fe));
    let status = match run_child(cmd) {
        Err(e) => format!("could not run {}: {e}", plan.interp.describe()),
        Ok((Ended::Exited(0), wall_s, max_rss_kib)) => {
            let stats = std::fs::read_to_string(&stats_path)
                .ok()
                .and_then(|t| serde_json::from_str::<ChildStats>(&t).ok());
            return Ok(Ok(Sample {
                wall_s,
                max_rss_kib,
                stats,
            }));
        }
        Ok((Ended::Exited(code), ..)) => format!("exit status {code}"),
        Ok((Ended::Signalled(sig), ..)) => format!("killed by signal {sig}"),
    };
    Ok(Err((status, tail(&err_path, 12))))
}

/// What the runs gave.
struct Measured {
    /// `samples[w][c]`: the runs of workload `w` on configuration `c` that succeeded.
    samples: Vec<Vec<Vec<Sample>>>,
    /// `failed[w][c]`: a run failed (and the cell was not run again).
    failed: Vec<Vec<bool>>,
    failures: Vec<Failure>,
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

/// Step 2: every run, interleaved round-robin (run 1 of every workload × configuration, then
/// run 2, …), so that a slow patch of a shared machine hits every configuration alike. A cell
/// that failed once is not run again; its failure is printed at once and kept.
fn run_interleaved(
    plan: &Plan,
    o: &BenchOptions,
    scratch: &Scratch,
) -> Result<Measured, ToolError> {
    let (nw, nc) = (plan.workloads.len(), plan.configs.len());
    let bar = progress_bar((o.runs * nw * nc) as u64);
    let mut m = Measured {
        samples: vec![vec![Vec::new(); nc]; nw],
        failed: vec![vec![false; nc]; nw],
        failures: Vec::new(),
    };
    let scale = scale_arg(o.scale);
    for run in 0..o.runs {
        for (wi, w) in plan.workloads.iter().enumerate() {
            let script = o.bench_dir.join(format!("{w}.lua"));
            for (ci, c) in plan.configs.iter().enumerate() {
                bar.set_message(format!("run {}/{} {w} on {}", run + 1, o.runs, c.name));
                bar.inc(1);
                if m.failed[wi][ci] {
                    continue;
                }
                let tag = format!("{w}.{}", c.name.replace(':', "_"));
                match run_one(plan, c, &script, &scale, scratch, &tag)? {
                    Ok(sample) => m.samples[wi][ci].push(sample),
                    Err((status, stderr)) => {
                        m.failed[wi][ci] = true;
                        // `suspend`, not `println`: a hidden bar (stderr not a terminal) prints
                        // nothing through `println`, and a failure must always be seen.
                        bar.suspend(|| {
                            eprintln!(
                                "FAILED: {w} on {} (run {}): {status}\n{}",
                                c.name,
                                run + 1,
                                indent(&stderr)
                            )
                        });
                        m.failures.push(Failure {
                            workload: w.clone(),
                            config: c.name.clone(),
                            run: run + 1,
                            status,
                            stderr,
                        });
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(m)
}

/// The report's cell of one workload × configuration: medians of the runs that succeeded.
fn cell(workload: &str, config: &str, s: &[Sample], failed: bool) -> Cell {
    let ok = !failed && !s.is_empty();
    let peaks: Vec<f64> = s
        .iter()
        .filter_map(|x| x.stats.as_ref().map(|t| t.peak as f64))
        .collect();
    let allocs: Vec<f64> = s
        .iter()
        .filter_map(|x| x.stats.as_ref().map(|t| t.allocations as f64))
        .collect();
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
        peak_bytes: (ok && !peaks.is_empty()).then(|| report::median(peaks.into_iter()) as u64),
        allocations: (ok && !allocs.is_empty()).then(|| report::median(allocs.into_iter()) as u64),
    }
}

/// How the machine was while the bench ran.
struct Conditions {
    load_before: Option<f64>,
    started: Instant,
}

/// Step 3: the report: a cell per workload × configuration, ratios to the baseline (`system`
/// when it ran), geomeans.
fn collect(plan: Plan, o: &BenchOptions, m: Measured, when: Conditions) -> Report {
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
    let mut rep = Report {
        schema: 1,
        tool: format!("lmem {}", env!("CARGO_PKG_VERSION")),
        lua_version: lmem_lua::version::LUA_VERSION_NUM,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        interpreter: plan.interp.describe(),
        rss_source: "ru_maxrss of each child, from wait4 (KiB)".to_owned(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_before: when.load_before,
        loadavg_after: loadavg(),
        elapsed_s: when.started.elapsed().as_secs_f64(),
        runs: o.runs,
        scale: o.scale,
        baseline,
        configurations: plan
            .configs
            .iter()
            .map(|c| ConfigInfo {
                name: c.name.clone(),
                backend: c.backend.clone(),
                preload: c.preload.as_ref().map(|p| p.display().to_string()),
            })
            .collect(),
        missing_peers: plan.missing,
        workloads: plan.workloads,
        results: cells,
        geomean: Vec::new(),
        failures: m.failures,
    };
    rep.compute_ratios();
    rep
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
    let o = options(args);
    let plan = plan(&o)?;
    let scratch = Scratch::new(&o.out)?;
    let when = Conditions {
        load_before: loadavg(),
        started: Instant::now(),
    };
    let measured = run_interleaved(&plan, &o, &scratch)?;
    drop(scratch);
    let rep = collect(plan, &o, measured, when);
    output(&rep, &o)
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
