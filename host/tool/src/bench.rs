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

/// `lmem bench`.
pub fn run(args: BenchArgs) -> Result<(), ToolError> {
    let o = options(args);
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

    std::fs::create_dir_all(&o.out).map_err(ToolError::write(&o.out))?;
    let scratch = o.out.join(".runs");
    std::fs::create_dir_all(&scratch).map_err(ToolError::write(&scratch))?;

    let total = (o.runs * workloads.len() * configs.len()) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let load_before = loadavg();
    let started = Instant::now();

    // samples[w][c]: the runs that succeeded; failed[w][c]: set once a run failed (no more runs).
    let mut samples: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); configs.len()]; workloads.len()];
    let mut failed: Vec<Vec<bool>> = vec![vec![false; configs.len()]; workloads.len()];
    let mut failures: Vec<Failure> = Vec::new();
    let scale = scale_arg(o.scale);
    for run in 0..o.runs {
        for (wi, w) in workloads.iter().enumerate() {
            let script = o.bench_dir.join(format!("{w}.lua"));
            for (ci, c) in configs.iter().enumerate() {
                bar.set_message(format!("run {}/{} {w} on {}", run + 1, o.runs, c.name));
                if failed[wi][ci] {
                    bar.inc(1);
                    continue;
                }
                let tag = format!("{w}.{}", c.name.replace(':', "_"));
                let stats_path = scratch.join(format!("{tag}.stats.json"));
                let out_path = scratch.join(format!("{tag}.stdout"));
                let err_path = scratch.join(format!("{tag}.stderr"));
                let _ = std::fs::remove_file(&stats_path);
                let mut cmd = interp.command();
                cmd.arg("--backend")
                    .arg(&c.backend)
                    .arg("--stats-json")
                    .arg(&stats_path)
                    .arg(&script)
                    .arg(&scale);
                if let Some(lib) = &c.preload {
                    cmd.env("LD_PRELOAD", lib);
                }
                let files = std::fs::File::create(&out_path)
                    .and_then(|o| Ok((o, std::fs::File::create(&err_path)?)));
                let (fo, fe) = files.map_err(ToolError::write(&scratch))?;
                cmd.stdout(Stdio::from(fo)).stderr(Stdio::from(fe));
                let outcome = run_child(cmd);
                let failure = match outcome {
                    Err(e) => Some(format!("could not run {}: {e}", interp.describe())),
                    Ok((Ended::Exited(0), wall_s, max_rss_kib)) => {
                        let stats = std::fs::read_to_string(&stats_path)
                            .ok()
                            .and_then(|t| serde_json::from_str::<ChildStats>(&t).ok());
                        samples[wi][ci].push(Sample {
                            wall_s,
                            max_rss_kib,
                            stats,
                        });
                        None
                    }
                    Ok((Ended::Exited(code), ..)) => Some(format!("exit status {code}")),
                    Ok((Ended::Signalled(sig), ..)) => Some(format!("killed by signal {sig}")),
                };
                if let Some(status) = failure {
                    failed[wi][ci] = true;
                    let stderr = tail(&err_path, 12);
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
                    failures.push(Failure {
                        workload: w.clone(),
                        config: c.name.clone(),
                        run: run + 1,
                        status,
                        stderr,
                    });
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&scratch);

    let baseline = if configs.iter().any(|c| c.name == "system") {
        "system".to_owned()
    } else {
        configs[0].name.clone()
    };
    let mut cells = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        for (ci, c) in configs.iter().enumerate() {
            let s = &samples[wi][ci];
            let ok = !failed[wi][ci] && !s.is_empty();
            let peaks: Vec<f64> = s
                .iter()
                .filter_map(|x| x.stats.as_ref().map(|t| t.peak as f64))
                .collect();
            let allocs: Vec<f64> = s
                .iter()
                .filter_map(|x| x.stats.as_ref().map(|t| t.allocations as f64))
                .collect();
            cells.push(Cell {
                workload: w.clone(),
                config: c.name.clone(),
                ok,
                wall_s: s.iter().map(|x| x.wall_s).collect(),
                median_wall_s: ok.then(|| report::median(s.iter().map(|x| x.wall_s))),
                ratio: None,
                max_rss_kib: s.iter().map(|x| x.max_rss_kib).collect(),
                median_max_rss_kib: ok
                    .then(|| report::median(s.iter().map(|x| x.max_rss_kib as f64)) as u64),
                rss_ratio: None,
                peak_bytes: (ok && !peaks.is_empty())
                    .then(|| report::median(peaks.into_iter()) as u64),
                allocations: (ok && !allocs.is_empty())
                    .then(|| report::median(allocs.into_iter()) as u64),
            });
        }
    }
    let mut rep = Report {
        schema: 1,
        tool: format!("lmem {}", env!("CARGO_PKG_VERSION")),
        lua_version: lmem_lua::version::LUA_VERSION_NUM,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        interpreter: interp.describe(),
        rss_source: "ru_maxrss of each child, from wait4 (KiB)".to_owned(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_before: load_before,
        loadavg_after: loadavg(),
        elapsed_s: started.elapsed().as_secs_f64(),
        runs: o.runs,
        scale: o.scale,
        baseline,
        configurations: configs
            .iter()
            .map(|c| ConfigInfo {
                name: c.name.clone(),
                backend: c.backend.clone(),
                preload: c.preload.as_ref().map(|p| p.display().to_string()),
            })
            .collect(),
        missing_peers: missing,
        workloads,
        results: cells,
        geomean: Vec::new(),
        failures,
    };
    rep.compute_ratios();

    let paths = report::write(&rep, &o.out)?;
    let md = rep.markdown();
    if o.json {
        let json = serde_json::to_string_pretty(&rep)?;
        println!("{json}");
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
    if !rep.failures.is_empty() {
        let list: Vec<String> = rep
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{} on {} (run {}): {}",
                    f.workload, f.config, f.run, f.status
                )
            })
            .collect();
        return Err(ToolError::RunsFailed(list));
    }
    Ok(())
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
