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
