//! Hot swap mid-script: scheduled (`--swap`, `LMEM_SWAP`) and from Lua (`lmem.swap`), chaining
//! across all backends compiled in.

mod common;
use common::*;

const WORK: &str = "local keep = {} for r = 1, 30 do local t = {} for i = 1, 500 do t[i] = {i, 'x' .. i} end \
    keep[r] = t end collectgarbage() for r = 1, 30 do assert(keep[r][500][2] == 'x500') end \
    print('ok', require('lmem').backend(), require('lmem').stats().swaps)";

/// The backends other than `system`, in the design's order.
fn others() -> Vec<&'static str> {
    backends().into_iter().filter(|b| *b != "system").collect()
}

#[test]
fn scheduled_chain_across_all_backends() {
    let others = others();
    let mut args: Vec<String> = vec!["--check".into(), "--stats".into()];
    for (i, b) in others.iter().enumerate() {
        args.push("--swap".into());
        args.push(format!("{b}@{}", 2000 * (i + 1)));
    }
    args.extend(["-e".into(), WORK.into()]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run(&args);
    check(out.status.success(), "scheduled chain", &out);
    let last = others.last().copied().unwrap_or("system");
    let expect = format!("ok\t{last}\t{}", others.len());
    check(
        text(&out.stdout).trim() == expect,
        &format!("expected '{expect}'"),
        &out,
    );
    check(
        live_after_close(&text(&out.stderr)) == Some(0),
        "live after close",
        &out,
    );
}

#[test]
fn scheduled_chain_from_the_environment_starting_elsewhere() {
    let others = others();
    if others.len() < 2 {
        println!("note: fewer than two non-system backends compiled in");
        return;
    }
    // Start on the last one, go through the rest, end on system.
    let start = others[others.len() - 1];
    let mut plan: Vec<String> = others[..others.len() - 1]
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{b}@{}", 1500 * (i + 1)))
        .collect();
    plan.push(format!("system@{}", 1500 * others.len()));
    let out = clean(lmem_lua())
        .env("LMEM_BACKEND", start)
        .env("LMEM_SWAP", plan.join(","))
        .env("LMEM_STATS", "1")
        .env("LMEM_CHECK", "1")
        .args(["-e", WORK])
        .output()
        .unwrap();
    check(out.status.success(), "env chain", &out);
    let expect = format!("ok\tsystem\t{}", others.len());
    check(
        text(&out.stdout).trim() == expect,
        &format!("expected '{expect}'"),
        &out,
    );
    check(
        live_after_close(&text(&out.stderr)) == Some(0),
        "live after close",
        &out,
    );
}

#[test]
fn lmem_swap_from_lua_through_every_backend() {
    run_swap_script("swap_all", &["--check", "--stats"], &others());
}

/// Runs `host/lua/tests/<name>.lua` after the options `flags`, with backend `names` as its
/// arguments: it must succeed, print `ok <name> <number of names>` and leave 0 bytes live.
fn run_swap_script(name: &str, flags: &[&str], names: &[&str]) {
    let script = host_lua_dir().join(format!("{name}.lua"));
    let mut args = flags.to_vec();
    args.push(script.to_str().unwrap());
    args.extend(names.iter().copied());
    let out = run(&args);
    check(out.status.success(), &format!("{name}.lua"), &out);
    check(
        text(&out.stdout).trim() == format!("ok {name} {}", names.len()),
        "swap count",
        &out,
    );
    check(
        live_after_close(&text(&out.stderr)) == Some(0),
        "live after close",
        &out,
    );
}

#[test]
fn lua_tests_with_a_swap_in_the_middle() {
    let dir = lua_tests_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("note: no {}", dir.display());
        return;
    };
    let mut scripts: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    scripts.retain(|p| p.extension().is_some_and(|e| e == "lua") && !p.ends_with("limit.lua"));
    scripts.sort();
    let others = others();
    for (i, s) in scripts.iter().enumerate() {
        let to = others
            .get(i % others.len().max(1))
            .copied()
            .unwrap_or("system");
        let swap = format!("{to}@3000");
        let out = clean(lmem_lua())
            .args(["--check", "--stats", "--swap", &swap])
            .arg(s)
            .current_dir(&dir)
            .output()
            .unwrap();
        check(
            out.status.success(),
            &format!("{} with --swap {swap}", s.display()),
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
fn lmem_swap_on_the_plain_path_installs_a_routing_function() {
    // No --check: the plain form, where a swap hands Lua a new function with lua_setallocf.
    let mut names = others();
    names.push("system");
    run_swap_script("routing", &["--stats"], &names);
}
