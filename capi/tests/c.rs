//! The C tests: the programs in `tests/c/` are compiled with `cc -Wall -Wextra -Werror` (one with
//! `c++`, for the header's C++ side) against Debian's Lua 5.4 (`liblua5.4-dev`) and the library
//! cargo just built (static, and shared for one of them), using the pkg-config files `lmem.pc`
//! and `lmem-static.pc` with `libdir` pointed at this build, then run on every backend compiled
//! in. Four of them run again under valgrind's memcheck on `system`.
//!
//! Without the C toolchain, pkg-config, Lua 5.4's development files or valgrind these tests fail
//! (they never skip), naming the Debian package to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

const CFLAGS: &[&str] = &[
    "-std=c99",
    "-pedantic",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-g",
    "-O1",
];

const CXXFLAGS: &[&str] = &[
    "-std=c++11",
    "-pedantic",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-g",
    "-O1",
];

fn capi_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put `liblmem_capi.a` and `liblmem_capi.so` for this build: beside the test
/// binary, in `<target>/<profile>/deps` (a library with a `cdylib` crate type has no hash in its
/// file names there).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .expect("the test binary's directory")
        .to_path_buf();
    for lib in ["liblmem_capi.a", "liblmem_capi.so"] {
        assert!(
            dir.join(lib).is_file(),
            "{lib} is not in {}: cargo builds it with the tests",
            dir.display()
        );
    }
    dir
}

/// Runs `cmd`, failing with `missing` when the program cannot be started at all.
fn output(cmd: &mut Command, missing: &str) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {:?} ({e}): {missing}", cmd.get_program()),
    }
}

fn words(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `pkg-config ARGS`, with this crate's `.pc` files first and `libdir` set to this build.
fn pkg_config(args: &[&str], missing: &str) -> Vec<String> {
    let mut cmd = Command::new("pkg-config");
    cmd.env("PKG_CONFIG_PATH", capi_dir())
        .arg(format!("--define-variable=libdir={}", lib_dir().display()))
        .args(args);
    let out = output(
        &mut cmd,
        "pkg-config is missing: apt-get install pkg-config",
    );
    assert!(
        out.status.success(),
        "pkg-config {args:?} failed: {missing}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    words(&out)
}

/// The compiler and linker flags for Debian's Lua 5.4.
fn lua_flags() -> &'static [String] {
    static FLAGS: OnceLock<Vec<String>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        pkg_config(
            &["--cflags", "--libs", "lua5.4"],
            "Lua 5.4's headers and library are missing: apt-get install liblua5.4-dev",
        )
    })
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

/// Compiles `tests/c/NAME.c` (or `NAME.cpp`) against the library, linked as `link`, once per test run (tests
/// that share a program wait for the one build).
fn build(name: &str, link: Link) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let key = format!("{name}-{link:?}").to_lowercase();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(k, _)| *k == key) {
        return exe.clone();
    }
    let exe = compile(name, link, &key);
    built.push((key, exe.clone()));
    exe
}

fn compile(name: &str, link: Link, key: &str) -> PathBuf {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-c");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let exe = out_dir.join(key);
    let lmem = match link {
        Link::Static => pkg_config(&["--cflags", "--libs", "lmem-static"], "lmem-static.pc"),
        Link::Shared => pkg_config(&["--cflags", "--libs", "lmem"], "lmem.pc"),
    };
    let c = capi_dir().join("tests/c").join(format!("{name}.c"));
    let (src, compiler, flags) = if c.is_file() {
        (
            c,
            std::env::var("CC").unwrap_or_else(|_| "cc".into()),
            CFLAGS,
        )
    } else {
        let cxx = capi_dir().join("tests/c").join(format!("{name}.cpp"));
        (
            cxx,
            std::env::var("CXX").unwrap_or_else(|_| "c++".into()),
            CXXFLAGS,
        )
    };
    let mut cmd = Command::new(compiler);
    cmd.args(flags)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(&lmem)
        .args(lua_flags())
        .arg("-lpthread");
    if let Link::Shared = link {
        cmd.arg(format!("-Wl,-rpath,{}", lib_dir().display()));
    }
    let out = output(&mut cmd, "no C or C++ compiler: apt-get install gcc g++");
    assert!(
        out.status.success(),
        "compiling {} failed:\n{}{}",
        src.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs a built program and returns its output; fails with it unless it exits with 0.
fn run(mut cmd: Command) -> String {
    let out = output(&mut cmd, "the program was just built");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `tests/c/NAME.c` (static) on every backend; returns its output.
fn run_program(name: &str) -> String {
    let stdout = run(Command::new(build(name, Link::Static)));
    assert!(
        stdout.contains(&format!("{name}: ")) && stdout.contains("passed, 0 failed"),
        "{stdout}"
    );
    stdout
}

/// The backends compiled into the library, as the Rust side sees them.
fn backends() -> Vec<&'static str> {
    lmem::backends::names()
}

#[test]
fn a_script_on_every_backend() {
    let out = run_program("script");
    for b in backends() {
        assert!(out.contains(&format!("script: {b} ok")), "{out}");
    }
}

#[test]
fn a_script_through_the_shared_library() {
    let exe = build("script", Link::Shared);
    let out = run(Command::new(exe));
    assert!(
        out.contains(&format!("script: {} passed, 0 failed", backends().len())),
        "{out}"
    );
}

#[test]
fn a_cxx_host() {
    let out = run_program("cxx");
    assert!(
        out.contains(&format!("cxx: {} passed", backends().len())),
        "{out}"
    );
}

#[test]
fn bad_input_direct_calls_and_threads() {
    run_program("api");
}

#[test]
fn swap_mid_run_between_every_pair_of_backends() {
    let out = run_program("swap");
    let n = backends().len();
    assert!(out.contains(&format!("swap: {} passed", n * n)), "{out}");
}

#[test]
fn the_limit_is_not_enough_memory_and_pcall_recovers() {
    run_program("limit");
}

#[test]
fn fault_sweep_on_every_backend() {
    let out = run_program("faults");
    for b in backends() {
        for mode in ["once", "from"] {
            assert!(out.contains(&format!("faults: {b} {mode}: ")), "{out}");
        }
    }
}

#[test]
fn memcheck_is_clean_on_system() {
    let version = output(
        Command::new("valgrind").arg("--version"),
        "valgrind is missing: apt-get install valgrind",
    );
    assert!(
        version.status.success(),
        "valgrind does not run: apt-get install valgrind"
    );
    for name in ["api", "script", "swap", "faults"] {
        let exe = build(name, Link::Static);
        let mut cmd = Command::new("valgrind");
        cmd.args([
            "--quiet",
            // mimalloc's process-init reads past what read(2) filled in (its own, harmless);
            // the repository's suppressions name that one report.
            &format!(
                "--suppressions={}",
                capi_dir().join("../scripts/valgrind.supp").display()
            ),
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect,possible",
        ])
        .arg(exe)
        .arg("system");
        let out = run(cmd);
        assert!(out.contains("passed, 0 failed"), "{out}");
    }
}
