//! Every script of `lua/tests` (and of `host/tests/lua`) under every backend, with the contract
//! checker on and the accounting report checked for 0 bytes live after `lua_close`.

mod common;
use common::*;
use std::path::PathBuf;

fn scripts() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(lua_tests_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "lua"));
    v.sort();
    v
}

fn run_script(backend: &str, extra: &[&str], script: &std::path::Path) {
    let path = script.to_str().unwrap();
    let mut args = vec!["--backend", backend, "--check", "--stats"];
    args.extend_from_slice(extra);
    args.push(path);
    let out = clean(lmem_lua())
        .args(&args)
        .current_dir(script.parent().unwrap())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    check(
        out.status.success(),
        &format!("{path} under {backend} failed"),
        &out,
    );
    check(
        text(&out.stdout).contains("ok "),
        &format!("{path}: no 'ok' line"),
        &out,
    );
    check(
        live_after_close(&stderr) == Some(0),
        &format!("{path} under {backend}: bytes live after lua_close"),
        &out,
    );
}

#[test]
fn lua_tests_under_every_backend() {
    let scripts = scripts();
    if scripts.is_empty() {
        println!("note: no scripts in {}", lua_tests_dir().display());
    }
    for backend in backends() {
        for s in &scripts {
            // limit.lua is meant for a limit (see `limit_script_hits_the_limit_and_recovers`).
            if s.file_name().is_some_and(|n| n == "limit.lua") {
                continue;
            }
            run_script(backend, &[], s);
        }
    }
}

#[test]
fn limit_script_hits_the_limit_and_recovers() {
    let script = lua_tests_dir().join("limit.lua");
    if !script.exists() {
        println!("note: {} missing", script.display());
        return;
    }
    for backend in backends() {
        let out = clean(lmem_lua())
            .args(["--backend", backend, "--check", "--stats", "--limit", "8M"])
            .arg(&script)
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        check(
            out.status.success(),
            &format!("limit.lua under {backend}"),
            &out,
        );
        check(
            stdout.contains("ok limit") && !stdout.contains("no limit hit"),
            "limit.lua did not hit the limit",
            &out,
        );
        check(
            live_after_close(&text(&out.stderr)) == Some(0),
            "live after close",
            &out,
        );
    }
}

#[test]
fn limit_from_the_environment() {
    let out = clean(lmem_lua())
        .env("LMEM_LIMIT", "2M")
        .env("LMEM_STATS", "1")
        .args([
            "-e",
            "local ok, e = pcall(string.rep, 'x', 4 * 1024 * 1024) \
             assert(not ok and e:find('not enough memory'), e) \
             local t = {} for i = 1, 100 do t[i] = i end print('ok env-limit')",
        ])
        .output()
        .unwrap();
    check(out.status.success(), "LMEM_LIMIT run", &out);
    check(
        text(&out.stderr).contains("lmem: limit 2097152 bytes"),
        "limit in report",
        &out,
    );
}

#[test]
fn module_lmem_under_every_backend() {
    for backend in backends() {
        run_script(backend, &[], &host_lua_dir().join("module.lua"));
    }
}

#[test]
fn unlimited_run_of_the_limit_script_is_not_needed_but_a_bad_limit_is_an_error() {
    for bad in [
        &["--limit", "12X"][..],
        &["--backend", "nope"],
        &["--fail-at", "-1"],
        &["--swap", "slab"],
    ] {
        let out = run(&[bad, &["-e", "print(1)"][..]].concat());
        check(
            out.status.code() == Some(2),
            "bad lmem option must exit 2",
            &out,
        );
        check(
            text(&out.stderr).starts_with("lmem-lua: bad value for"),
            "message",
            &out,
        );
    }
    let out = clean(lmem_lua())
        .env("LMEM_BACKEND", "nope")
        .arg("-v")
        .output()
        .unwrap();
    check(
        out.status.code() == Some(2),
        "bad LMEM_BACKEND must exit 2",
        &out,
    );
}
