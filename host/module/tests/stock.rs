//! The module under Debian's real interpreter (`lua5.4`, or `lua5.1` in a `lua51` build): the
//! project's behaviour scripts and `lmem-lua`'s module scripts under `-l lmem` on the
//! interpreter's own allocator and on every backend that tells its own blocks; Lua's count and
//! the allocator's agree to the byte; every block goes back by `lua_close`; refused swaps and
//! `LMEM_BACKEND` at load.

mod common;
use common::*;
use std::path::Path;

/// The backends to run on: the interpreter's own allocator (no `LMEM_BACKEND`), then each one a
/// state can be swapped to.
fn every_backend() -> Vec<Option<&'static str>> {
    std::iter::once(None)
        .chain(exact_backends().into_iter().map(Some))
        .collect()
}

/// Runs `script` (with `pre` options before it) as `LUA -l lmem … script`, expecting success,
/// `ok` on stdout and a clean close.
fn run_script(backend: Option<&str>, pre: &[&str], script: &Path, args: &[&str]) -> String {
    let path = script.to_str().expect("a UTF-8 path");
    let mut all = vec!["-l", "lmem"];
    all.extend_from_slice(pre);
    all.push(path);
    all.extend_from_slice(args);
    let out = run(backend, &all);
    let what = format!(
        "{} on {}",
        path,
        backend.unwrap_or("the interpreter's allocator")
    );
    check_clean(&what, &out);
    let stdout = text(&out.stdout);
    check(
        stdout.lines().any(|l| l.starts_with("ok ")),
        &format!("{what}: prints ok"),
        &out,
    );
    stdout
}

#[test]
fn the_behaviour_scripts_pass_on_every_backend_that_tells_its_blocks() {
    let mut scripts: Vec<_> = std::fs::read_dir(lua_tests_dir())
        .expect("lua/tests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 9, "{scripts:?}");
    std::thread::scope(|s| {
        for backend in every_backend() {
            let scripts = &scripts;
            s.spawn(move || {
                for script in scripts {
                    // limit.lua is meant to run under a limit: set one through the module.
                    let limit = script.file_name().is_some_and(|n| n == "limit.lua");
                    let pre: &[&str] = if limit {
                        &["-e", "lmem.limit('8M')"]
                    } else {
                        &[]
                    };
                    let out = run_script(backend, pre, script, &[]);
                    if limit {
                        assert!(out.contains("phases hit the limit"), "{out}");
                    }
                }
            });
        }
    });
}

#[test]
fn lmem_luas_module_script_runs_unchanged() {
    let script = host_lua_dir().join("module.lua");
    for backend in every_backend() {
        let out = run_script(backend, &[], &script, &[]);
        assert_eq!(out.trim(), "ok module");
    }
}

#[test]
fn lmem_luas_swap_script_goes_through_every_backend_that_tells_its_blocks() {
    let backends = exact_backends();
    assert!(!backends.is_empty(), "no backend that tells its blocks");
    let script = host_lua_dir().join("swap_all.lua");
    let out = run_script(None, &[], &script, &backends);
    assert_eq!(out.trim(), format!("ok swap_all {}", backends.len()));
}

#[test]
fn live_bytes_are_luas_own_count_before_and_after_a_swap() {
    let script = own_lua_dir().join("stock.lua");
    let out = run_script(None, &[], &script, &[]);
    assert_eq!(out.trim(), "ok stock foreign");
    for b in exact_backends() {
        let out = run_script(None, &[], &script, &[b]);
        assert_eq!(out.trim(), format!("ok stock {b}"));
    }
}

#[test]
fn a_swap_to_a_backend_that_cannot_tell_its_blocks_is_refused() {
    let code = "local ok, err = lmem.swap('system') \
        assert(ok == nil and type(err) == 'string', tostring(err)) \
        assert(lmem.backend() == 'foreign' and lmem.stats().swaps == 0) \
        io.write(err, '\\n') \
        local bad, msg = pcall(lmem.swap, 'no-such-backend') \
        assert(not bad and msg:find(\"unknown backend 'no-such-backend'\", 1, true), msg) \
        assert(not pcall(lmem.swap)) \
        print('ok refused')";
    let out = run(None, &["-l", "lmem", "-e", code]);
    check_clean("refused swap", &out);
    let stdout = text(&out.stdout);
    check(
        stdout.starts_with("cannot swap to 'system': its blocks cannot be told from the blocks")
            && stdout.contains(&exact_backends().join(", ")),
        "the message says why and what to swap to",
        &out,
    );
    check(stdout.ends_with("ok refused\n"), "ok", &out);
}

#[test]
fn lmem_backend_at_load_swaps_at_once() {
    for b in exact_backends() {
        let code = format!(
            "local s = lmem.stats() \
             assert(lmem.backend() == '{b}' and s.backend == '{b}', lmem.backend()) \
             assert(s.swaps == 1 and s.routing == true, 'one swap, routing') \
             local t = {{}} for i = 1, 10000 do t[i] = {{i}} end \
             print('ok', lmem.backend())"
        );
        let out = run(Some(b), &["-l", "lmem", "-e", &code]);
        check_clean(b, &out);
        check(text(&out.stdout) == format!("ok\t{b}\n"), "ok", &out);
    }
}

#[test]
fn lmem_backend_at_load_that_cannot_be_swapped_to_is_an_error() {
    for (name, says) in [
        (
            "system",
            "lmem: LMEM_BACKEND=system: cannot swap to 'system': its blocks cannot be told",
        ),
        ("no-such-backend", "unknown backend 'no-such-backend'"),
    ] {
        let out = run(Some(name), &["-l", "lmem", "-e", "print('loaded')"]);
        check(!out.status.success(), name, &out);
        check(text(&out.stderr).contains(says), says, &out);
        check(out.stdout.is_empty(), "nothing ran", &out);
        // The error leaves the state as it was: a script that catches it goes on.
        let code = "local ok, err = pcall(require, 'lmem') assert(not ok) \
            local t = {} for i = 1, 1000 do t[i] = {i} end print('went on')";
        let out = run(Some(name), &["-e", code]);
        check(out.status.success(), "caught", &out);
        check(text(&out.stdout) == "went on\n", "went on", &out);
        check(
            !text(&out.stderr).contains("lua_close"),
            "no take-over, no report",
            &out,
        );
    }
}

#[test]
fn requiring_again_finds_the_same_memory() {
    let b = exact_backends().first().copied().unwrap_or("system");
    let code = format!(
        "local a = require 'lmem' a.swap('{b}') \
        local before = a.stats().swaps \
        package.loaded.lmem = nil \
        local b = require 'lmem' \
        assert(b ~= a and b.stats().swaps == before and b.backend() == a.backend()) \
        local lua = collectgarbage('count') * 1024 \
        assert(b.stats().live == lua, 'one count') \
        print('ok again')"
    );
    let out = run(None, &["-e", &code]);
    check_clean("require twice", &out);
    check(text(&out.stdout) == "ok again\n", "ok", &out);
}

#[test]
fn loading_from_a_coroutine_and_closing_from_the_main_thread() {
    let b = exact_backends().first().copied().unwrap_or("system");
    let code = format!(
        "local co = coroutine.wrap(function() local m = require 'lmem' \
            coroutine.yield(m.swap('{b}')) end) \
         co() \
         local t = {{}} for i = 1, 10000 do t[i] = {{i, tostring(i)}} end \
         print('ok', package.loaded.lmem.backend())"
    );
    let out = run(None, &["-e", &code]);
    check_clean("coroutine", &out);
    check(text(&out.stdout).starts_with("ok\t"), "ok", &out);
}

#[test]
fn the_closer_survives_being_unanchored() {
    // Someone drops the closer from the registry: a collection finalizes it early; the memory
    // still goes at lua_close, and nothing breaks meanwhile.
    let code = "local lmem = require 'lmem' \
        local reg = debug.getregistry() \
        reg['lmem.module.closer'] = nil \
        collectgarbage() collectgarbage() \
        local t = {} for i = 1, 20000 do t[i] = {i} end t = nil \
        collectgarbage() \
        assert(lmem.stats().live > 0) \
        print('ok')";
    let out = run(None, &["-e", code]);
    check_clean("unanchored closer", &out);
}

#[cfg(not(feature = "lua51"))]
#[test]
fn loading_inside_a_finalizer_is_an_error() {
    // 5.4 stops the collector while a finalizer runs: Lua's count cannot be read then.
    let code = "setmetatable({}, {__gc = function() R = {pcall(require, 'lmem')} end}) \
        collectgarbage() collectgarbage() \
        assert(R and R[1] == false, 'refused') \
        io.write(R[2], '\\n') \
        local lmem = require 'lmem' print('ok', lmem.backend())";
    let out = run(None, &["-e", code]);
    check_clean("finalizer", &out);
    let stdout = text(&out.stdout);
    check(
        stdout.contains("lmem: cannot take over the state's memory while the collector is stopped"),
        "the message",
        &out,
    );
    check(stdout.ends_with("ok\tforeign\n"), "loads afterwards", &out);
}

#[test]
fn the_main_block_is_where_the_closer_looks_for_it() {
    // The closer frees the allocator at the free of the state's main block, which it finds from
    // the main thread by the layout of `lstate.c` for this version's default configuration:
    // the headers Debian builds the interpreter from say that configuration.
    let path = Path::new(INCLUDE_DIR).join("luaconf.h");
    let conf = std::fs::read_to_string(&path).unwrap_or_default();
    require_installed(&path.display().to_string(), !conf.is_empty());
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let conf = squeeze(&conf);
    #[cfg(not(feature = "lua51"))]
    assert!(
        conf.contains("#define LUA_EXTRASPACE (sizeof(void *))"),
        "LUA_EXTRASPACE is not one pointer"
    );
    #[cfg(feature = "lua51")]
    assert!(
        conf.contains("#define LUAI_EXTRASPACE 0"),
        "LUAI_EXTRASPACE is not 0"
    );
}

#[test]
fn closing_with_os_exit_frees_everything_and_skipping_the_close_is_harmless() {
    #[cfg(not(feature = "lua51"))]
    {
        let out = run(
            None,
            &["-l", "lmem", "-e", "lmem.swap('slab') os.exit(true, true)"],
        );
        check_clean("os.exit closing the state", &out);
    }
    // No lua_close: no report, and the process exits normally.
    let out = run(None, &["-l", "lmem", "-e", "os.exit(0)"]);
    check(out.status.success(), "os.exit", &out);
    check(
        !text(&out.stderr).contains("lua_close"),
        "no close, no report",
        &out,
    );
}
