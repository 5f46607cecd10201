//! Helpers shared by the integration tests: run the built `lmem-lua` with a clean environment.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `lmem-lua` binary under test.
pub fn lmem_lua() -> &'static str {
    env!("CARGO_BIN_EXE_lmem-lua")
}

/// The workspace's `lua/tests` directory.
pub fn lua_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lua/tests")
}

/// This package's own Lua scripts (`host/lua/tests/lua`).
pub fn host_lua_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua")
}

/// Backends compiled into this build.
pub fn backends() -> Vec<&'static str> {
    lmem::backends::names()
}

/// A command with no `LMEM_*`/`LUA_*` variables inherited.
pub fn clean(cmd: &str) -> Command {
    let mut c = Command::new(cmd);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LMEM_") || k.starts_with("LUA_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs `lmem-lua args` (stdin empty) and returns its output.
pub fn run(args: &[&str]) -> Output {
    clean(lmem_lua()).args(args).output().expect("run lmem-lua")
}

/// Text of a stream.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fails with the whole output when `cond` is false.
pub fn check(cond: bool, what: &str, out: &Output) {
    assert!(
        cond,
        "{what}\nstatus: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The `live after lua_close` figure of a `--stats` report.
pub fn live_after_close(stderr: &str) -> Option<usize> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("lmem: live after lua_close: "))
        .and_then(|r| r.trim_end_matches(" bytes").parse().ok())
}

/// The stock interpreter `name` of Debian (`lua5.4`, `luajit`) when it is installed, else a note.
pub fn stock_interpreter(name: &str) -> Option<String> {
    let found = ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        println!("note: {name} is not installed; skipping the comparison with stock {name}");
    }
    found
}

/// A scratch directory (named by `prefix` and `tag`) with the command-line comparisons'
/// scripts and a module.
pub fn cli_fixtures(prefix: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "args.lua",
            "print(select('#', ...), ...)\nfor i = -3, #arg do print(i, arg[i]) end\n",
        ),
        (
            "fail.lua",
            "local function f(x) error('boom ' .. x) end\nlocal function g() f(1) end\ng()\n",
        ),
        ("syntax.lua", "local x = = 1\n"),
        ("exit.lua", "io.write('bye\\n') os.exit(7)\n"),
        ("mymod.lua", "return { x = 42 }\n"),
        ("init.lua", "print('init file')\n"),
        (
            "errobj.lua",
            "error(setmetatable({}, {__tostring = function() return 'custom' end}))\n",
        ),
    ];
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    dir
}

/// Runs `prog` as `argv[0] = arg0` in `dir` with `args`, `env` and `stdin`, looking modules up
/// only in `dir` (the default paths are build configuration: an install prefix, Debian's
/// multiarch directories).
pub fn run_as(
    arg0: &str,
    prog: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
    dir: &Path,
) -> Output {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut c = clean(prog);
    c.arg0(arg0)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped());
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.env("LUA_PATH", "./?.lua");
    c.env("LUA_CPATH", "./?.so");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    // The child may exit before reading its input (EPIPE): that is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}
