//! The `lmem` tool: bench and its report, trace record/replay/info, backends; and the two
//! `lmem-lua` options it relies on (`--stats-json`, `--trace`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lmem() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lmem"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LMEM_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run lmem")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn backends() -> Vec<&'static str> {
    lmem::backends::names()
}

#[test]
fn bench_writes_report_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(lmem().args([
        "bench",
        "--scale",
        "0.02",
        "--runs",
        "1",
        "--no-peers",
        "--workloads",
        "binary_trees,strings",
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // The markdown table, one column per backend, and stock.
    assert!(stdout.contains("| workload |"), "{stdout}");
    for b in backends().into_iter().chain(["stock"]) {
        assert!(stdout.contains(&format!("`{b}`")), "{stdout}");
    }
    assert!(stdout.contains("| **geomean** |"), "{stdout}");
    assert!(stdout.contains("| `system` / `stock` |"), "{stdout}");
    assert!(stdout.contains("Start-up RSS"), "{stdout}");
    assert!(stdout.contains("report.html"), "{stdout}");

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], 2);
    assert_eq!(json["runs"], 1);
    assert_eq!(json["baseline"], "system");
    assert_eq!(
        json["workloads"],
        serde_json::json!(["binary_trees", "strings"])
    );
    let configs = json["configurations"].as_array().unwrap();
    let n = backends().len() + 1;
    assert_eq!(configs.len(), n, "every backend and stock");
    assert_eq!(configs[0]["name"], "stock");
    assert!(configs.iter().all(|c| c["preload"].is_null()));
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 2 * n);
    for c in results {
        assert_eq!(c["ok"], true, "{c}");
        assert!(c["median_wall_s"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["ratio"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["median_max_rss_kib"].as_u64().unwrap() > 0, "{c}");
        if c["config"] == "system" {
            assert_eq!(c["ratio"].as_f64().unwrap(), 1.0);
        }
    }
    // Lua's accounting: one untimed run per workload, on system.
    let accounting = json["accounting"].as_array().unwrap();
    assert_eq!(accounting.len(), 2);
    for a in accounting {
        assert_eq!(a["backend"], "system");
        assert!(a["peak_bytes"].as_u64().unwrap() > 0, "{a}");
        assert!(a["allocations"].as_u64().unwrap() > 1000, "{a}");
    }
    // The start-up RSS of every configuration, against stock's.
    let startup = json["startup"].as_array().unwrap();
    assert_eq!(startup.len(), n);
    assert_eq!(startup[0]["over_stock_mib"].as_f64(), Some(0.0));
    assert!(
        startup
            .iter()
            .all(|s| s["median_max_rss_kib"].as_u64() > Some(0))
    );
    let pairs = json["comparisons"].as_array().unwrap();
    assert_eq!(pairs[0]["config"], "system");
    assert_eq!(pairs[0]["against"], "stock");
    assert!(pairs[0]["time_ratio"].as_f64().unwrap() > 0.0);
    let targets = json["targets"].as_array().unwrap();
    assert!(targets.iter().any(|t| {
        t["target"]
            .as_str()
            .unwrap()
            .contains("start-up RSS of `slab`")
    }));
    let geo = json["geomean"].as_array().unwrap();
    assert_eq!(geo.len(), n);
    assert!(
        geo.iter()
            .all(|g| g["workloads"] == 2 && g["time_ratio"].is_f64())
    );
    assert!(json["failures"].as_array().unwrap().is_empty());

    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Time, memory, system against stock, start-up, the states (2) and trim.
    assert_eq!(html.matches("<svg").count(), 7, "seven charts");
    assert!(!html.contains("chart not drawn"));
    for w in ["binary_trees", "strings"] {
        assert!(html.contains(w));
    }
    // Self-contained: no external scripts, styles or images.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

#[test]
fn bench_json_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(lmem().args([
        "bench",
        "--scale=0.02",
        "--runs=1",
        "--no-peers",
        "--backends=system,slab",
        "--workloads=strings",
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(json["results"].as_array().unwrap().len(), 2);
    assert!(text(&out.stderr).contains("| workload |"));
}

/// A script `dir/name` that runs `log` (shell lines that append a line to `$log`), then
/// `lmem lua` with its arguments; returns the script and the log.
fn logging_lua(dir: &Path, name: &str, log: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log_file = dir.join(format!("{name}.log"));
    let exe = dir.join(name);
    std::fs::write(
        &exe,
        format!(
            "#!/bin/sh\nlog='{}'\n{log}\nexec '{}' lua \"$@\"\n",
            log_file.display(),
            env!("CARGO_BIN_EXE_lmem")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (exe, log_file)
}

/// An interpreter that logs its command line (and LD_PRELOAD) before it runs `lmem lua`.
fn logging_interpreter(dir: &Path) -> (PathBuf, PathBuf) {
    logging_lua(
        dir,
        "logging-lua",
        r#"printf '%s\n' "$LD_PRELOAD|$*" >> "$log""#,
    )
}

#[test]
fn bench_times_the_lean_path_and_runs_peers_on_stock() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, log) = logging_interpreter(dir.path());
    let out = run(lmem().args([
        "bench",
        "--scale=0.02",
        "--runs=2",
        "--backends=stock,slab",
        "--workloads=strings",
        "--lua",
        exe.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let workload: Vec<&str> = calls
        .lines()
        .filter(|l| l.contains("strings.lua"))
        .collect();
    let (accounting, timed): (Vec<&str>, Vec<&str>) =
        workload.iter().partition(|l| l.contains("--stats-json"));
    assert_eq!(accounting.len(), 1, "one accounting run: {calls}");
    assert!(
        accounting[0].starts_with("|--backend system --stats-json "),
        "{calls}"
    );
    assert!(!timed.is_empty());
    for l in &timed {
        let (preload, args) = l.split_once('|').unwrap();
        // Every peer is stock Lua under its malloc.
        if !preload.is_empty() || args.starts_with("--stock") {
            assert!(args.starts_with("--stock "), "{l}");
        } else {
            assert!(args.starts_with("--backend slab "), "{l}");
        }
    }
    // Start-up runs: an empty program, each round, every configuration.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let configs = json["configurations"].as_array().unwrap().len();
    assert_eq!(timed.len(), 2 * configs, "{calls}");
    assert_eq!(
        calls
            .lines()
            .filter(|l| l.contains(" -e local f = io.open('/proc/self/status')"))
            .count(),
        2 * configs
    );
    for c in json["configurations"].as_array().unwrap() {
        if !c["preload"].is_null() {
            assert_eq!(c["backend"], "stock", "{c}");
        }
    }
}

/// A stand-in for a stock `lua5.4` that logs its environment and command line, then runs
/// `lmem lua` (a drop-in `lua`, which also reads `LMEM_BACKEND` and preloads `lmem`).
fn logging_host(dir: &Path) -> (PathBuf, PathBuf) {
    logging_lua(
        dir,
        "stock-lua",
        r#"so=$(readlink -f "$(dirname "$LUA_CPATH")/lmem.so")
printf '%s\n' "$LMEM_BACKEND|$LUA_CPATH|$LD_PRELOAD|$*|$so" >> "$log""#,
    )
}

#[test]
fn bench_on_a_stock_interpreter_loads_the_module_for_each_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (exe, log) = logging_host(dir.path());
    let module = dir.path().join("liblmem.so");
    std::fs::write(&module, b"").unwrap();
    let out = run(lmem().args([
        "bench",
        "--scale=0.02",
        "--runs=1",
        "--backends=stock,slab,bump",
        "--workloads=strings",
        "--no-peers",
        "--host",
        exe.to_str().unwrap(),
        "--module",
        module.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    // One line asks the interpreter its version, for the report.
    assert!(
        calls.lines().any(|l| l.contains("-e io.write(_VERSION)")),
        "{calls}"
    );
    let runs: Vec<Vec<&str>> = calls
        .lines()
        .filter(|l| !l.contains("_VERSION"))
        .map(|l| l.split('|').collect())
        .collect();
    // Start-up and the workload, per configuration; no --stats-json run (a stock interpreter
    // has no such option), and no lmem-lua options at all.
    assert_eq!(runs.len(), 2 * 3, "{calls}");
    for r in &runs {
        let (backend, cpath, args) = (r[0], r[1], r[3]);
        assert!(!args.contains("--"), "{calls}");
        assert!(cpath.ends_with("/?.so"), "{calls}");
        // `-l lmem` finds the module given, as `lmem.so` on LUA_CPATH.
        assert_eq!(
            Path::new(r[4]),
            std::fs::canonicalize(&module).unwrap(),
            "{calls}"
        );
        if backend.is_empty() {
            assert!(!args.contains("-l lmem"), "stock runs as it is: {calls}");
        } else {
            assert!(["slab", "bump"].contains(&backend), "{calls}");
            assert!(args.starts_with("-l lmem "), "{calls}");
        }
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    assert!(json["accounting"].as_array().unwrap().is_empty());
    assert!(json["interpreter"].as_str().unwrap().contains("-l lmem"));
    // The peaks are the interpreter's own (VmHWM, reported by the child), not the tool's.
    assert!(json["rss_source"].as_str().unwrap().contains("VmHWM"));
    assert!(json["states"].is_null() && json["trim"].is_null());
}

#[test]
fn bench_on_a_stock_interpreter_refuses_what_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("liblmem.so");
    std::fs::write(&module, b"").unwrap();
    let m = module.to_str().unwrap();
    for (args, says) in [
        (
            &["--host", "sh", "--module", m, "--backends", "system"][..],
            "exact ownership",
        ),
        (
            &["--host", "sh", "--module", m, "--scenarios", "states"],
            "workloads scenario only",
        ),
        (
            &["--host", "no-such-lua-anywhere", "--module", m],
            "not found",
        ),
        (
            &["--host", "sh", "--module", "/no/such/liblmem.so"],
            "--manifest-path host/module",
        ),
        (&["--module", m], "--host"),
        (&["--host", "sh", "--lua", "sh"], "cannot be used with"),
    ] {
        let out = run(lmem().arg("bench").args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("lmem: ") || err.starts_with("error: "),
            "{args:?}: {err}"
        );
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn bench_states_scenario_measures_every_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(lmem().args([
        "bench",
        "--scenarios=states",
        "--states=30,60",
        "--requests=40",
        "--runs=2",
        "--backends=stock,system,slab",
        "--no-peers",
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["workloads"].as_array().unwrap().is_empty());
    assert!(json["results"].as_array().unwrap().is_empty());
    assert!(
        json["comparisons"].as_array().unwrap().is_empty(),
        "no workload ran"
    );
    let states = &json["states"];
    assert_eq!(states["counts"], serde_json::json!([30, 60]));
    let footprint = states["footprint"].as_array().unwrap();
    assert_eq!(footprint.len(), 3 * 2);
    let live = |f: &Value| f["live_per_state"].as_f64().unwrap();
    for f in footprint {
        assert_eq!(f["runs"].as_array().unwrap().len(), 2, "{f}");
        // The standard libraries and the program: more than 10 KiB of Lua data per state,
        // the same on every configuration (Lua's requests do not depend on the allocator).
        assert!(live(f) > 10_240.0, "{f}");
        assert!((live(f) / live(&footprint[0]) - 1.0).abs() < 0.01, "{f}");
        assert!(f["rss_per_state"].is_f64(), "{f}");
        let reserved = &f["reserved_per_state"];
        match f["config"].as_str().unwrap() {
            "slab" => assert!(reserved.as_f64().unwrap() >= live(f), "{f}"),
            "stock" => assert!(reserved.is_null(), "{f}"),
            _ => {}
        }
    }
    let rates = states["per_request"].as_array().unwrap();
    assert_eq!(rates.len(), 3);
    for r in rates {
        assert!(r["per_second"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["runs"][0]["states"], 40);
    }
    let tables = text(&out.stderr);
    assert!(tables.contains("RSS per state, N=60"), "{tables}");
    assert!(tables.contains("| `slab` |"), "{tables}");
}

#[test]
fn bench_trim_scenario_measures_rss_around_a_spike() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(lmem().args([
        "bench",
        "--scenarios=trim",
        "--spike-mib=8",
        "--backends=stock,system,slab",
        "--no-peers",
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let trim = &json["trim"];
    assert_eq!(trim["spike_mib"], 8);
    let rows = trim["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mib = |v: &Value| v.as_u64().unwrap() as f64 / 1048576.0;
    for r in rows {
        assert!(r["lua_kib"].as_u64().unwrap() >= 8 * 1024, "{r}");
        assert!(mib(&r["spike"]) >= mib(&r["before"]) + 6.0, "{r}");
        assert!(mib(&r["collected"]) <= mib(&r["spike"]) + 0.25, "{r}");
        if r["config"] == "stock" {
            assert!(r["trimmed"].is_null(), "no lmem module on stock: {r}");
        } else {
            assert!(mib(&r["trimmed"]) <= mib(&r["collected"]) + 0.25, "{r}");
        }
    }
    // slab's trim gives its empty pages back.
    let slab = rows.iter().find(|r| r["config"] == "slab").unwrap();
    assert!(
        mib(&slab["trimmed"]) + 1.0 < mib(&slab["collected"]),
        "{slab}"
    );
    let targets = json["targets"].as_array().unwrap();
    assert!(targets.iter().any(|t| {
        t["target"]
            .as_str()
            .unwrap()
            .starts_with("`slab` RSS after `lmem.trim()` <= 1.3x")
    }));
    assert!(text(&out.stderr).contains("| `slab` |"));
}

#[test]
fn bench_reports_a_workload_that_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    std::fs::create_dir(&bench).unwrap();
    std::fs::write(
        bench.join("good.lua"),
        "local t = {} for i = 1, 100 do t[i] = {i} end print('ok')\n",
    )
    .unwrap();
    std::fs::write(
        bench.join("bad.lua"),
        "error('checksum mismatch: 41 ~= 42')\n",
    )
    .unwrap();
    let out = run(lmem().args([
        "bench",
        "--runs",
        "2",
        "--no-peers",
        "--backends",
        "system",
        "--scenarios=workloads",
        "--bench-dir",
        bench.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("FAILED"), "{all}");
    assert!(all.contains("checksum mismatch"), "{all}");
    assert!(all.contains("bad on system"), "{all}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let failures = json["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "one failure, no second run of it");
    assert_eq!(failures[0]["status"], "exit status 1");
    let good = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["workload"] == "good")
        .unwrap();
    assert_eq!(good["ok"], true);
    assert_eq!(good["wall_s"].as_array().unwrap().len(), 2);
}

#[test]
fn bench_rejects_bad_options() {
    for args in [
        &["bench", "--backends", "nope"][..],
        &["bench", "--workloads", "nope", "--no-peers"],
        &["bench", "--runs", "0"],
        &["bench", "--scale", "-1"],
        &["bench", "--frobnicate"],
    ] {
        let out = run(lmem().args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).starts_with("lmem: "), "{args:?}");
    }
}

#[test]
fn trace_record_info_replay_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strings.lmemtrace");
    let script = root().join("lua/bench/strings.lua");
    let out = run(lmem().args([
        "trace",
        "record",
        "-o",
        file.to_str().unwrap(),
        "--backend",
        "slab",
        script.to_str().unwrap(),
        "0.02",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("strings"),
        "the script's own output"
    );
    assert!(
        text(&out.stderr).contains("recorded"),
        "{}",
        text(&out.stderr)
    );

    let trace = lmem::trace::Trace::read(std::fs::File::open(&file).unwrap()).unwrap();
    let s = trace.summary();
    assert!(s.allocations > 1000);
    assert_eq!(s.live_blocks_at_end, 0, "lua_close frees everything");
    assert!(trace.header().label.contains("backend slab"));

    let out = run(lmem().args(["trace", "info", file.to_str().unwrap()]));
    assert!(out.status.success());
    let info = text(&out.stdout);
    assert!(
        info.contains(&format!("events      {}", trace.len())),
        "{info}"
    );
    assert!(info.contains("lua         5."), "{info}");

    let out = run(lmem().args([
        "trace",
        "replay",
        file.to_str().unwrap(),
        "--backend",
        "system",
        "--backend",
        "slab",
        "--runs",
        "2",
        "--json",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["backends"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["ops"].as_u64().unwrap(), trace.len() as u64);
        assert_eq!(r["peak_bytes"].as_u64().unwrap(), s.peak_live_bytes);
        assert_eq!(r["failures"], 0);
        assert_eq!(r["ns_per_op"].as_array().unwrap().len(), 2);
    }

    // The table form names every backend and the mix.
    let out = run(lmem().args(["trace", "replay", file.to_str().unwrap(), "--runs", "1"]));
    assert!(out.status.success());
    let table = text(&out.stdout);
    for b in backends() {
        assert!(table.contains(b), "{table}");
    }
    assert!(
        table.contains("mix:") && table.contains("string"),
        "{table}"
    );
}

#[test]
fn bad_or_truncated_trace_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.lmemtrace");
    std::fs::write(&junk, b"not a trace at all").unwrap();
    let fixture = std::fs::read(root().join("tests/fixtures/objects.lmemtrace")).unwrap();
    let cut = dir.path().join("cut.lmemtrace");
    std::fs::write(&cut, &fixture[..fixture.len() / 2]).unwrap();
    let missing = dir.path().join("missing.lmemtrace");
    for (file, what) in [
        (&junk, "bad trace file"),
        (&cut, "truncated"),
        (&missing, "cannot open trace file"),
    ] {
        for cmd in ["info", "replay"] {
            let out = run(lmem().args(["trace", cmd, file.to_str().unwrap()]));
            let err = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} {}: {err}",
                file.display()
            );
            assert!(err.contains(what), "{err}");
            assert!(
                err.contains(file.to_str().unwrap()),
                "names the file: {err}"
            );
            assert!(out.stdout.is_empty());
        }
    }
    let out = run(lmem().args(["trace", "replay"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(lmem().args(["trace", "record", "x.lua"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--output <FILE>"));
}

#[test]
fn backends_lists_compiled_backends_and_peers() {
    let out = run(lmem().arg("backends"));
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.starts_with("compiled backends:"), "{s}");
    for b in backends() {
        assert!(s.lines().any(|l| l.trim() == b), "{s}");
    }
    for p in ["preload:mimalloc", "preload:jemalloc", "preload:tcmalloc"] {
        assert!(s.contains(p), "{s}");
    }
}

#[test]
fn report_renders_a_report_json_again() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = root().join("host/tool/tests/fixtures/report.json");
    let out = run(lmem()
        .arg("report")
        .arg(&fixture)
        .arg("--out")
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    for part in [
        "| **geomean** |",
        "| `system` / `stock` |",
        "RSS per state, N=100",
        "Trim:",
    ] {
        assert!(md.contains(part), "{part}: {md}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 7);
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let out = run(lmem().arg("report").arg(&junk));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not a report.json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_command_and_help() {
    let out = run(lmem().arg("frob"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unrecognized subcommand 'frob'"));
    let out = run(lmem().arg("--help"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("bench"));
    // No command: the help, on stderr, as a usage error.
    let out = run(&mut lmem());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage: lmem <COMMAND>"));
}

#[test]
fn every_subcommand_has_help() {
    for cmd in [
        &["bench"][..],
        &["trace"],
        &["trace", "record"],
        &["trace", "replay"],
        &["trace", "info"],
        &["stress"],
        &["backends"],
        &["report"],
        &["completions"],
    ] {
        let out = run(lmem().args(cmd).arg("--help"));
        let help = text(&out.stdout);
        assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
        assert!(
            help.contains(&format!("Usage: lmem {}", cmd.join(" "))),
            "{cmd:?}: {help}"
        );
    }
    // `lmem lua --help` is the interpreter's, not clap's.
    let out = run(lmem().args(["lua", "--help"]));
    assert!(!text(&out.stdout).contains("Usage: lmem"));
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "_lmem()"),
        ("zsh", "#compdef lmem"),
        ("fish", "complete -c lmem"),
    ] {
        let out = run(lmem().args(["completions", shell]));
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["bench", "trace", "stress", "no-peers"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let out = run(lmem().args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("'tcsh'"));
}

#[test]
fn lmem_lua_is_the_interpreter() {
    let out = run(lmem().args([
        "lua",
        "--backend",
        "slab",
        "-e",
        "print(1 + 1, arg[0] ~= nil)",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "2\ttrue\n");
    let out = run(lmem().args(["lua", "-e", "error('boom')"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("boom"));
}

#[test]
fn lmem_lua_stats_json_and_trace_options() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("s.json");
    let trace = dir.path().join("t.lmemtrace");
    let out = lmem()
        .args(["lua", "--backend", "bump", "--stats-json"])
        .arg(&stats)
        .arg("--trace")
        .arg(&trace)
        .args(["-e", "local t = {} for i = 1, 1000 do t[i] = {i} end"])
        .env_remove("LMEM_STATS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(json["backend"], "bump");
    assert_eq!(json["live"], 0);
    assert!(json["peak"].as_u64().unwrap() > 1000 * 16);
    assert!(json["by_tag"]["table"]["count"].as_u64().unwrap() >= 1000);
    let t = lmem::trace::Trace::read(std::fs::File::open(&trace).unwrap()).unwrap();
    let s = t.summary();
    assert_eq!(s.allocations, json["allocations"].as_u64().unwrap());
    assert_eq!(s.peak_live_bytes, json["peak"].as_u64().unwrap());

    // The environment does the same; an unwritable trace file is an option error (exit 2).
    let out = lmem()
        .env("LMEM_TRACE", dir.path().join("no/such/dir/t.lmemtrace"))
        .args(["lua", "-e", "x = 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot create trace file"));
}
