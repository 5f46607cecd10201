//! Fault sweep: the k-th allocation of a run fails, for every k; each run ends with success or
//! Lua's `not enough memory`, never a crash, and the checker finds no complaint and no leak.

mod common;
use common::*;
use std::path::PathBuf;

fn sweep_script() -> PathBuf {
    let p = lua_tests_dir().join("oom_sweep.lua");
    if p.exists() {
        p
    } else {
        host_lua_dir().join("tiny_sweep.lua")
    }
}

/// Allocations of a clean run (from the `--stats` report: "allocated … in N blocks").
fn total_allocations(backend: &str, script: &str) -> u64 {
    let out = run(&["--backend", backend, "--stats", script]);
    check(out.status.success(), "clean run of the sweep script", &out);
    let err = text(&out.stderr);
    err.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("lmem: allocated")?;
            rest.rsplit_once(" in ")?
                .1
                .trim_end_matches(" blocks")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no allocation count in:\n{err}"))
}

fn sweep(backend: &str, step: usize) -> (u64, u64) {
    let script = sweep_script();
    let script = script.to_str().unwrap();
    let total = total_allocations(backend, script);
    let (mut ok, mut oom) = (0, 0);
    for k in (1..=total + 2).step_by(step) {
        let ks = k.to_string();
        let out = run(&[
            "--backend",
            backend,
            "--check",
            "--stats",
            "--fail-at",
            &ks,
            script,
        ]);
        let stderr = text(&out.stderr);
        let what = format!("{backend} --fail-at {k}");
        // A signal (crash, abort) has no exit code.
        check(
            out.status.code().is_some(),
            &format!("{what}: killed by a signal"),
            &out,
        );
        match out.status.code() {
            Some(0) => ok += 1,
            Some(1) => {
                check(
                    stderr.contains("not enough memory"),
                    &format!("{what}: wrong error"),
                    &out,
                );
                oom += 1;
            }
            _ => check(
                false,
                &format!("{what}: unexpected status (3 = checker complaint)"),
                &out,
            ),
        }
        check(
            live_after_close(&stderr) == Some(0),
            &format!("{what}: live after close"),
            &out,
        );
    }
    (ok, oom)
}

#[test]
fn every_allocation_fails_in_turn_on_the_default_backend() {
    let (ok, oom) = sweep("system", 1);
    println!("system: {ok} runs succeeded, {oom} ended with 'not enough memory'");
    assert!(oom > 0, "no run saw a failure");
}

#[test]
fn fault_sweep_sampled_on_every_backend() {
    for b in backends() {
        let (ok, oom) = sweep(b, 13);
        println!("{b}: {ok} ok, {oom} not enough memory");
        assert!(oom > 0, "{b}: no run saw a failure");
    }
}

#[test]
fn fail_at_from_the_environment() {
    let out = clean(lmem_lua())
        .env("LMEM_FAIL_AT", "1")
        .args(["-e", "print(1)"])
        .output()
        .unwrap();
    // The very first allocation is the state itself: lua_newstate fails.
    check(out.status.code() == Some(1), "fail at 1", &out);
    check(
        text(&out.stderr).contains("cannot create state: not enough memory"),
        "message",
        &out,
    );
}
