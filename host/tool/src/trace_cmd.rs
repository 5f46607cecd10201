//! `lmem trace record|replay|info`: allocation traces of real Lua programs, replayed on every
//! backend.
//!
//! Recording runs the interpreter with `--trace FILE`: the core's `Recorder` sits right under
//! the layer in the interpreter's allocator chain, so the trace holds every call Lua's allocation
//! function made, with Lua's sizes and types. Replay performs the trace through the allocation
//! function `lmem-lua` gives Lua for each backend (a fresh [`lmem::Allocator`], on the lean
//! path), called exactly as Lua calls it, and times only the loop of calls.

use super::cli::{RecordArgs, ReplayArgs, TraceCommand, compiled_backends};
use super::{Interpreter, ToolError};
use lmem::trace::{ReplayResult, Summary, Trace, replay_function};
use lmem::{Allocator, Tag};
use std::path::Path;

/// `lmem trace …`.
pub fn run(command: TraceCommand) -> Result<(), ToolError> {
    match command {
        TraceCommand::Record(a) => record(a),
        TraceCommand::Replay(a) => replay_cmd(a),
        TraceCommand::Info { file } => info(&file),
    }
}

/// Reads and validates a trace file; a missing, bad or truncated file is a usage error (exit 2)
/// that names the file and says what is wrong.
pub fn load(path: &Path) -> Result<Trace, ToolError> {
    let file = std::fs::File::open(path).map_err(|source| ToolError::OpenTrace {
        path: path.to_path_buf(),
        source,
    })?;
    Trace::read(std::io::BufReader::new(file)).map_err(|source| ToolError::BadTrace {
        path: path.to_path_buf(),
        source,
    })
}

/// Replays `trace` once through the lean allocation function of a fresh backend `name` (what
/// `lmem-lua --backend name` gives Lua); `None` when `name` is not compiled in.
pub fn replay_on(name: &str, trace: &Trace) -> Option<ReplayResult> {
    let alloc = Allocator::new(name).ok()?;
    // SAFETY: the pair comes from a fresh allocator that outlives the call and has no block.
    let mut r = unsafe { replay_function(trace, name, alloc.function(), alloc.ud()) };
    // SAFETY: the replay is over: no allocation runs. (These stats are taken after the blocks
    // left live were freed.)
    r.backend_stats = unsafe { alloc.enter() }.backend_stats();
    Some(r)
}

fn record(a: RecordArgs) -> Result<(), ToolError> {
    let RecordArgs {
        output: out,
        backend,
        lua,
        command,
    } = a;
    let interp = match &lua {
        Some(p) => Interpreter::at(p)?,
        None => Interpreter::this_exe()?,
    };
    let mut cmd = interp.command();
    cmd.arg("--backend")
        .arg(&backend)
        .arg("--trace")
        .arg(&out)
        .args(&command);
    let status = cmd.status().map_err(|source| ToolError::Spawn {
        program: interp.describe(),
        source,
    })?;
    if !status.success() {
        return Err(ToolError::ScriptFailed { status, trace: out });
    }
    let trace = load(&out)?;
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    eprintln!(
        "lmem: recorded {} events ({} bytes) into {}",
        trace.len(),
        size,
        out.display()
    );
    eprint!("{}", trace.summary());
    Ok(())
}

fn info(path: &Path) -> Result<(), ToolError> {
    let trace = load(path)?;
    let h = trace.header();
    println!("file        {}", path.display());
    println!(
        "size        {} bytes",
        std::fs::metadata(path).map_or(0, |m| m.len())
    );
    println!("lua         {}", lua_version(h.lua_version));
    println!("label       {}", h.label);
    print!("{}", trace.summary());
    Ok(())
}

fn lua_version(v: u32) -> String {
    if v == 0 {
        "unknown".to_owned()
    } else {
        format!("{}.{}", v / 100, v % 100)
    }
}

/// The per-type mix of a trace's new blocks, as one line per type.
fn mix(s: &Summary) -> String {
    let total = s.allocations.max(1) as f64;
    let mut out = String::new();
    for tag in Tag::ALL {
        let t = s.by_tag[tag.index()];
        if t.count > 0 {
            out.push_str(&format!(
                "  {:<9} {:>6.2}% of new blocks  {:>10} blocks  avg {:>7.1} B\n",
                tag.name(),
                100.0 * t.count as f64 / total,
                t.count,
                t.bytes as f64 / t.count as f64
            ));
        }
    }
    out
}

fn replay_cmd(a: ReplayArgs) -> Result<(), ToolError> {
    let ReplayArgs {
        file,
        mut backends,
        runs,
        json,
    } = a;
    if backends.is_empty() {
        backends = compiled_backends();
    }
    let trace = load(&file)?;
    let summary = trace.summary();

    // Round-robin: run 1 on every backend, then run 2, …
    let mut results: Vec<Vec<ReplayResult>> = vec![Vec::new(); backends.len()];
    for _ in 0..runs {
        for (i, b) in backends.iter().enumerate() {
            let r = replay_on(b, &trace).expect("backend checked above");
            results[i].push(r);
        }
    }
    let rows: Vec<serde_json::Value> = backends
        .iter()
        .zip(&results)
        .map(|(b, rs)| {
            let ns: Vec<f64> = rs.iter().map(ReplayResult::ns_per_op).collect();
            let first = &rs[0];
            serde_json::json!({
                "backend": b,
                "ns_per_op_median": super::report::median(ns.iter().copied()),
                "ns_per_op_min": ns.iter().copied().fold(f64::INFINITY, f64::min),
                "ns_per_op": ns,
                "ops": first.ops,
                "peak_bytes": first.peak_bytes,
                "failures": first.failures,
                "orphaned": first.orphaned,
                "skipped_failed": first.skipped_failed,
            })
        })
        .collect();
    if json {
        let by_tag: serde_json::Map<String, serde_json::Value> = Tag::ALL
            .iter()
            .map(|t| {
                let s = summary.by_tag[t.index()];
                (
                    t.name().to_owned(),
                    serde_json::json!({"count": s.count, "bytes": s.bytes}),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "file": file.display().to_string(),
            "events": trace.len(),
            "runs": runs,
            "allocations": summary.allocations,
            "resizes": summary.resizes,
            "frees": summary.frees,
            "peak_live_bytes": summary.peak_live_bytes,
            "by_tag": by_tag,
            "backends": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!(
        "trace {}: {} events (Lua {}), {} run(s) per backend, median ns per operation",
        file.display(),
        trace.len(),
        lua_version(trace.header().lua_version),
        runs
    );
    let base = rows
        .first()
        .and_then(|r| r["ns_per_op_median"].as_f64())
        .unwrap_or(0.0);
    println!(
        "{:<10} {:>10} {:>10} {:>8} {:>14} {:>12}",
        "backend", "ns/op", "min", "ratio", "peak bytes", "ops"
    );
    for (b, r) in backends.iter().zip(&rows) {
        let med = r["ns_per_op_median"].as_f64().unwrap_or(0.0);
        println!(
            "{:<10} {:>10.2} {:>10.2} {:>7.2}× {:>14} {:>12}",
            b,
            med,
            r["ns_per_op_min"].as_f64().unwrap_or(0.0),
            if base > 0.0 { med / base } else { 0.0 },
            r["peak_bytes"].as_u64().unwrap_or(0),
            r["ops"].as_u64().unwrap_or(0)
        );
        let f = r["failures"].as_u64().unwrap_or(0) + r["orphaned"].as_u64().unwrap_or(0);
        if f > 0 {
            println!("  {b}: {f} calls failed or were orphaned on replay");
        }
    }
    let total = summary.events.max(1) as f64;
    println!(
        "mix: {:.1}% allocs, {:.1}% resizes, {:.1}% frees; peak live {} B in {} blocks",
        100.0 * summary.allocations as f64 / total,
        100.0 * summary.resizes as f64 / total,
        100.0 * summary.frees as f64 / total,
        summary.peak_live_bytes,
        summary.peak_live_blocks
    );
    print!("{}", mix(&summary));
    Ok(())
}
