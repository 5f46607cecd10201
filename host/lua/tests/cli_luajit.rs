//! A LuaJIT build's command line: compared with Debian's `luajit` on a set of invocations (exit
//! status, stdout and stderr must match; both run with `argv[0] = "luajit"`), and what differs
//! on purpose or by release checked on its own: the version line, the JIT status line, errors in
//! finalizers, `-b` and the `-j` add-on modules (which come with an installed LuaJIT, not with
//! the vendored library). The comparison is skipped, with a note, when `luajit` is not installed.
//!
//! Normalised before comparing: the version line (another release), and the addresses of C
//! frames in tracebacks (`[C]: at 0x…`).
#![cfg(feature = "luajit")]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stock() -> Option<String> {
    stock_interpreter("luajit")
}

fn fixtures(tag: &str) -> PathBuf {
    cli_fixtures("lmem-clijit", tag)
}

fn run_with(prog: &str, args: &[&str], env: &[(&str, &str)], stdin: &str, dir: &Path) -> Output {
    run_as("luajit", prog, args, env, stdin, dir)
}

/// The version line and C frames' addresses made release-independent.
fn normalise(s: &[u8]) -> String {
    text(s)
        .lines()
        .map(|l| {
            if l.starts_with("LuaJIT 2.1.") && l.contains("Mike Pall") {
                "LuaJIT 2.1.x".to_owned()
            } else if let Some(at) = l.find("[C]: at 0x") {
                format!("{}[C]: at 0x?", &l[..at])
            } else {
                l.to_owned()
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
fn same_as_stock_luajit() {
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
        (vec!["-e", "error(true)"], vec![], ""),
        (vec!["-e", "error('lvl0', 0)"], vec![], ""),
        (vec!["-e", "x = = 1"], vec![], ""),
        (vec!["-e", "a=1", "-e", "print(a+1)"], vec![], ""),
        (vec!["-ea=5", "-eprint(a)"], vec![], ""),
        (vec!["args.lua", "a", "b", "c"], vec![], ""),
        (vec!["-e", "y=1", "args.lua", "-e", "x"], vec![], ""),
        (
            vec!["-e", "arg[1] = 'changed'", "args.lua", "a"],
            vec![],
            "",
        ),
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
        (vec!["-j"], vec![], ""),
        (vec!["--x"], vec![], ""),
        (vec!["-vx"], vec![], ""),
        (vec!["-e", "print(1)", "-b"], vec![], ""),
        (vec!["-E", "-b"], vec![], ""),
        (vec!["-Ex", "-e", "print(1)"], vec![], ""),
        (vec!["-l", "mymod", "-e", "print(mymod)"], vec![], ""),
        (vec!["-lmymod", "-e", "print(1)"], vec![], ""),
        (vec!["-l", "nosuchmod"], vec![], ""),
        (vec!["-joff", "-e", "print(jit.status())"], vec![], ""),
        (vec!["-jon", "-e", "print((jit.status()))"], vec![], ""),
        (vec!["-jflush", "-e", "print(1)"], vec![], ""),
        (vec!["-jon=1", "-e", "print(1)"], vec![], ""),
        (vec!["-O", "-e", "print(1)"], vec![], ""),
        (vec!["-O3", "-O-fold", "-e", "print(1)"], vec![], ""),
        (
            vec!["-Omaxtrace=100,hotloop=2", "-e", "print(1)"],
            vec![],
            "",
        ),
        (vec!["-Ofoo", "-e", "print(1)"], vec![], ""),
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
            vec![
                "-E",
                "-e",
                "print(package.path:find('^%./%?%.lua;') ~= nil)",
            ],
            vec![("LUA_INIT", "print('no')")],
            "",
        ),
        (vec!["-e", "io.write('no newline')"], vec![], ""),
        (vec!["-e", "os.exit(false)"], vec![], ""),
        (vec!["-e", "os.exit(true, true)"], vec![], ""),
        (vec!["-e", "print(collectgarbage('count') > 0)"], vec![], ""),
        (vec!["-v"], vec![], ""),
        (vec!["-v", "-e", "print(1)"], vec![], ""),
        (vec!["-v"], vec![("LUA_INIT", "print('init first')")], ""),
        (
            vec!["-i"],
            vec![],
            "x = 20\n=x + 1\nx * 2\nfor i = 1, 2 do\nprint(i)\nend\nerror('oops')\n",
        ),
        (vec!["-i", "-e", "_PROMPT = 'P> '"], vec![], "print(1)\n"),
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
fn version_line_names_the_luajit_built() {
    let out = run(&["-v", "-e", "io.write(jit.version, '\\n')"]);
    check(out.status.success(), "-v", &out);
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let banner = lines.next().unwrap_or("");
    let version = lines.next().unwrap_or("");
    check(
        banner == lmem_lua::version::LUA_COPYRIGHT
            && version == lmem_lua::version::LUAJIT_VERSION
            && banner.starts_with(&format!("{version} -- Copyright (C) 2005-"))
            && banner.ends_with("Mike Pall. https://luajit.org/"),
        "the version line is LUAJIT_VERSION -- LUAJIT_COPYRIGHT. LUAJIT_URL of the library",
        &out,
    );
}

#[test]
fn interactive_mode_prints_the_jit_status() {
    let dir = fixtures("repl");
    let out = run_with(lmem_lua(), &["-i"], &[], "=jit.status()\n", &dir);
    let stdout = text(&out.stdout);
    check(out.status.success(), "REPL exit status", &out);
    let mut lines = stdout.lines();
    check(
        lines.next() == Some(lmem_lua::version::LUA_COPYRIGHT),
        "version line first",
        &out,
    );
    let status = lines.next().unwrap_or("");
    check(
        status.starts_with("JIT: ON ") && status.contains(" fold "),
        "JIT status line",
        &out,
    );
    check(
        stdout.contains("> true\t"),
        "expression printed after the prompt",
        &out,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_in_finalizers_are_reported_and_the_program_goes_on() {
    let out = run(&[
        "-e",
        "local p = newproxy(true) getmetatable(p).__gc = function() error('in gc') end \
         p = nil collectgarbage() print('after')",
    ]);
    check(out.status.success(), "exit status", &out);
    check(text(&out.stdout) == "after\n", "the program went on", &out);
    check(
        text(&out.stderr) == "ERROR in finalizer: (command line):1: in gc\n",
        "the error on stderr, as luaL_newstate's handler prints it",
        &out,
    );
}

#[test]
fn add_on_modules_are_looked_up_on_the_package_path() {
    // No jit.* add-on modules on the path: -jv and -b fail as luajit's do without them.
    let dir = fixtures("addon");
    for args in [&["-jv", "-e", "print(1)"][..], &["-bl", "x.lua"]] {
        let out = run_with(lmem_lua(), args, &[], "", &dir);
        check(out.status.code() == Some(1), "exit status 1", &out);
        check(
            text(&out.stderr) == "luajit: unknown luaJIT command or jit.* modules not installed\n",
            "message",
            &out,
        );
        check(!text(&out.stdout).contains('1'), "nothing ran", &out);
    }
    // A module that is there is started with the command's options, comma-separated.
    std::fs::create_dir_all(dir.join("jit")).unwrap();
    std::fs::write(
        dir.join("jit/probe.lua"),
        "return { start = function(...) print('start', select('#', ...), ...) end }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("jit/bcsave.lua"),
        "return { start = function(...) print('bcsave', ...) end }\n",
    )
    .unwrap();
    let out = run_with(
        lmem_lua(),
        &["-jprobe=a,,b", "-e", "print('ran')"],
        &[],
        "",
        &dir,
    );
    check(
        out.status.success() && text(&out.stdout) == "start\t3\ta\tnil\tb\nran\n",
        "-jprobe=a,,b",
        &out,
    );
    let out = run_with(lmem_lua(), &["-bl", "in.lua", "out"], &[], "", &dir);
    check(
        out.status.success() && text(&out.stdout) == "bcsave\t-l\tin.lua\tout\n",
        "-bl takes the rest of the command line",
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
        "print(#arg, arg[0], arg[-1], arg[-2])",
    ]);
    check(out.status.success(), "run", &out);
    // lmem options are not part of `arg`; with no script, luajit puts every argument at a
    // negative index: arg[-1] is the chunk, arg[-2] the option.
    check(
        text(&out.stdout) == "0\tnil\tprint(#arg, arg[0], arg[-1], arg[-2])\t-e\n",
        "arg table",
        &out,
    );
    // After the first Lua option, lmem options are Lua's business (and bad ones for it).
    let out = run(&["-e", "print(1)", "--stats"]);
    check(
        out.status.code() == Some(1),
        "--stats after a Lua option is a Lua usage error",
        &out,
    );
}
