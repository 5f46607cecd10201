//! The command line compared with Debian's `lua5.4` on a set of invocations: exit status,
//! stdout and stderr must match (both run with `argv[0] = "lua"`; the version line and the
//! traceback line numbers of C functions are what may legitimately differ and are normalised).
//! Skipped, with a note, when `lua5.4` is not installed. (A LuaJIT build has `luajit`'s command
//! line, compared with Debian's `luajit` in `cli_luajit.rs`.)
#![cfg(not(feature = "luajit"))]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stock() -> Option<String> {
    stock_interpreter("lua5.4")
}

fn fixtures(tag: &str) -> PathBuf {
    cli_fixtures("lmem-cli", tag)
}

fn run_with(prog: &str, args: &[&str], env: &[(&str, &str)], stdin: &str, dir: &Path) -> Output {
    run_as("lua", prog, args, env, stdin, dir)
}

/// Removes what differs between Lua releases without being behaviour: the release line.
fn normalise(s: &[u8]) -> String {
    text(s)
        .lines()
        .map(|l| {
            if l.starts_with("Lua 5.4.") && l.contains("Copyright") {
                "Lua 5.4.x"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Arguments, environment, stdin.
type Case = (
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn same_as_stock_lua() {
    let Some(stock) = stock() else { return };
    let stock = stock.as_str();
    let dir = fixtures("stock");
    let cases: Vec<Case> = vec![
        (vec!["-e", "print(1, 'two', 3.5)"], vec![], ""),
        (
            vec!["-e", "print(arg[0], arg[-1], arg[1], #arg)"],
            vec![],
            "",
        ),
        (vec!["-e", "error('x')"], vec![], ""),
        (vec!["-e", "error({})"], vec![], ""),
        (vec!["-e", "error(nil)"], vec![], ""),
        (vec!["-e", "error('lvl0', 0)"], vec![], ""),
        (vec!["-e", "x = = 1"], vec![], ""),
        (vec!["-e", "a=1", "-e", "print(a+1)"], vec![], ""),
        (vec!["-ea=5", "-eprint(a)"], vec![], ""),
        (vec!["args.lua", "a", "b", "c"], vec![], ""),
        (vec!["-e", "y=1", "args.lua", "-e", "x"], vec![], ""),
        (vec!["--", "args.lua", "-v"], vec![], ""),
        (vec!["fail.lua"], vec![], ""),
        (vec!["syntax.lua"], vec![], ""),
        (vec!["errobj.lua"], vec![], ""),
        (vec!["missing.lua"], vec![], ""),
        (vec!["exit.lua"], vec![], ""),
        (vec!["-"], vec![], "print('from stdin', ...)"),
        (vec!["-", "p", "q"], vec![], "print(...) print(arg[0])"),
        (vec![], vec![], "print('implicit stdin')\nerror('late')"),
        (vec!["-x"], vec![], ""),
        (vec!["-e"], vec![], ""),
        (vec!["-l"], vec![], ""),
        (vec!["-e", "-v"], vec![], ""),
        (vec!["--x"], vec![], ""),
        (vec!["-vx"], vec![], ""),
        (vec!["-v"], vec![], ""),
        (vec!["-v", "-e", "print(1)"], vec![], ""),
        (vec!["-l", "mymod", "-e", "print(mymod.x)"], vec![], ""),
        (vec!["-lmymod", "-e", "print(mymod.x)"], vec![], ""),
        (vec!["-l", "m=mymod", "-e", "print(m.x, mymod)"], vec![], ""),
        (vec!["-l", "nosuchmod"], vec![], ""),
        (
            vec!["-e", "print(1)"],
            vec![("LUA_INIT", "print('init')")],
            "",
        ),
        (vec!["-e", "print(1)"], vec![("LUA_INIT", "@init.lua")], ""),
        (
            vec!["-e", "print(1)"],
            vec![("LUA_INIT", "error('bad init')")],
            "",
        ),
        (
            vec!["-e", "print(1)"],
            vec![("LUA_INIT", "print(1)"), ("LUA_INIT_5_4", "print(54)")],
            "",
        ),
        (
            vec!["-E", "-e", "print(package.path == './?.lua')"],
            vec![("LUA_INIT", "print('no')")],
            "",
        ),
        (vec!["-W", "-e", "warn('hello', ' there')"], vec![], ""),
        (vec!["-e", "warn('quiet')"], vec![], ""),
        (
            vec!["-e", "warn('@on') warn('a', 'b') warn('@off') warn('c')"],
            vec![],
            "",
        ),
        (
            vec![
                "-e",
                "local t = setmetatable({}, {__gc = function() error('in gc') end}) t = nil collectgarbage()",
            ],
            vec![],
            "",
        ),
        (vec!["-e", "io.write('no newline')"], vec![], ""),
        (vec!["-e", "os.exit(false)"], vec![], ""),
        (vec!["-e", "os.exit(true, true)"], vec![], ""),
        (vec!["-e", "print(collectgarbage('count') > 0)"], vec![], ""),
    ];
    let mut mismatches = Vec::new();
    for (args, env, stdin) in &cases {
        let ours = run_with(lmem_lua(), args, env, stdin, &dir);
        let theirs = run_with(stock, args, env, stdin, &dir);
        let same = ours.status.code() == theirs.status.code()
            && normalise(&ours.stdout) == normalise(&theirs.stdout)
            && normalise(&ours.stderr) == normalise(&theirs.stderr);
        if !same {
            mismatches.push(format!(
                "args {args:?} env {env:?}\n  ours:  {:?}\n{}\n{}\n  stock: {:?}\n{}\n{}",
                ours.status.code(),
                normalise(&ours.stdout),
                normalise(&ours.stderr),
                theirs.status.code(),
                normalise(&theirs.stdout),
                normalise(&theirs.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n\n")
    );
}

#[test]
fn interactive_mode_reads_stdin() {
    let dir = fixtures("repl");
    let out = run_with(
        lmem_lua(),
        &["-i"],
        &[],
        "x = 20\n=x + 1\nx * 2\nfor i = 1, 2 do\nprint(i)\nend\nerror('oops')\n",
        &dir,
    );
    let stdout = text(&out.stdout);
    check(out.status.success(), "REPL exit status", &out);
    check(stdout.starts_with("Lua 5."), "version banner", &out);
    check(
        stdout.contains("21\n") && stdout.contains("40\n"),
        "expressions printed",
        &out,
    );
    check(
        stdout.contains(">> ") && stdout.contains("1\n") && stdout.contains("2\n"),
        "continuation",
        &out,
    );
    // No program name before errors in the REPL.
    check(
        text(&out.stderr).starts_with("stdin:1: oops"),
        "REPL error",
        &out,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lmem_options_come_before_lua_options() {
    let out = run(&[
        "--backend",
        "system",
        "--stats",
        "-e",
        "print(#arg, arg[0] ~= nil)",
    ]);
    check(out.status.success(), "run", &out);
    // lmem options are not part of `arg`: only `-e` and its chunk are (arg[-2], arg[-1]... no:
    // there is no script, so arg[0] is the program and arg[1], arg[2] the options).
    check(text(&out.stdout) == "2\ttrue\n", "arg table", &out);
    // After the first Lua option, lmem options are Lua's business (and bad ones for it).
    let out = run(&["-e", "print(1)", "--stats"]);
    check(
        out.status.code() == Some(1),
        "--stats after a Lua option is a Lua usage error",
        &out,
    );
}
