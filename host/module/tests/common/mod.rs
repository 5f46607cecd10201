//! Helpers shared by the integration tests: Debian's real interpreter of the version built, run
//! with a clean environment and the built module on its C path.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The interpreter of the Lua version this build is for.
#[cfg(not(feature = "lua51"))]
pub const LUA: &str = "lua5.4";
/// The interpreter of the Lua version this build is for.
#[cfg(feature = "lua51")]
pub const LUA: &str = "lua5.1";

/// The Lua version, as luarocks names it.
#[cfg(not(feature = "lua51"))]
pub const VERSION: &str = "5.4";
/// The Lua version, as luarocks names it.
#[cfg(feature = "lua51")]
pub const VERSION: &str = "5.1";

/// The Debian packages the tests need (CI installs them).
#[cfg(not(feature = "lua51"))]
pub const PACKAGES: &str = "lua5.4 liblua5.4-dev";
/// The Debian packages the tests need (CI installs them).
#[cfg(feature = "lua51")]
pub const PACKAGES: &str = "lua5.1 liblua5.1-0-dev";

/// Where the version's development package puts its headers.
#[cfg(not(feature = "lua51"))]
pub const INCLUDE_DIR: &str = "/usr/include/lua5.4";
/// Where the version's development package puts its headers.
#[cfg(feature = "lua51")]
pub const INCLUDE_DIR: &str = "/usr/include/lua5.1";

/// Fails, naming the packages, unless `what` is there.
pub fn require_installed(what: &str, ok: bool) {
    assert!(
        ok,
        "{what} is missing: install the Debian packages {PACKAGES} \
         (apt-get install -y {PACKAGES}); the tests run the real interpreter"
    );
}

/// The interpreter, checked to be installed.
pub fn lua() -> &'static str {
    let runs = Command::new(LUA)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    require_installed(LUA, runs);
    LUA
}

/// The directory of the built `liblmem.so` (cargo builds the library before the tests).
pub fn module_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("the test's directory");
    for dir in [deps, deps.parent().unwrap_or(deps)] {
        if dir.join("liblmem.so").is_file() {
            return dir.to_path_buf();
        }
    }
    panic!("liblmem.so not found next to {}", exe.display());
}

/// `LUA_CPATH` that finds the built module, and nothing else, for `require "lmem"`.
pub fn cpath() -> String {
    format!("{}/lib?.so", module_dir().display())
}

/// The interpreter with no `LMEM_*`/`LUA_*` variables inherited, stdin empty, the module on its
/// C path, and the close report on.
pub fn lua_cmd() -> Command {
    let mut c = Command::new(lua());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LMEM_") || k.starts_with("LUA_") {
            c.env_remove(k);
        }
    }
    c.env("LUA_CPATH", cpath()).env("LMEM_STATS", "1");
    c.stdin(Stdio::null());
    c
}

/// Runs the interpreter with `args`, `LMEM_BACKEND` set to `backend` if given.
pub fn run(backend: Option<&str>, args: &[&str]) -> Output {
    let mut c = lua_cmd();
    if let Some(b) = backend {
        c.env("LMEM_BACKEND", b);
    }
    c.args(args).output().expect("run the interpreter")
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

/// The run succeeded, and `lua_close` gave every block back: the close report says 0 bytes live
/// and every backend got its blocks back.
pub fn check_clean(what: &str, out: &Output) {
    check(out.status.success(), &format!("{what}: exit status"), out);
    let err = text(&out.stderr);
    check(
        err.contains("lmem: live after lua_close: 0 bytes\n"),
        &format!("{what}: 0 bytes live after lua_close"),
        out,
    );
    check(
        err.contains("lmem: every backend got its blocks back: yes\n"),
        &format!("{what}: every backend got its blocks back"),
        out,
    );
}

/// The compiled-in backends a state can be swapped to (those that tell their own blocks).
pub fn exact_backends() -> Vec<&'static str> {
    lmem_core::backends::names()
        .into_iter()
        .filter(|n| lmem_core::backends::declares_exact_ownership(n) == Some(true))
        .collect()
}

/// The workspace's `lua/tests` directory.
pub fn lua_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lua/tests")
}

/// `lmem-lua`'s own module scripts (`host/lua/tests/lua`): the same scripts run on both.
pub fn host_lua_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lua/tests/lua")
}

/// This crate's Lua scripts.
pub fn own_lua_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua")
}
