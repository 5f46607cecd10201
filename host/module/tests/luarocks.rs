//! The rockspec: `luarocks make` builds the module with cargo and installs it into a tree, where
//! the interpreter of this build's Lua version finds it through the tree's C path. The build
//! reuses this test run's target directory and profile, so cargo finds the object built already.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn luarocks_make_builds_and_installs_the_module() {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("no profile directory"),
    };
    let tree = std::env::temp_dir().join(format!("lmem-luarocks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tree);

    let mut make = Command::new("luarocks");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LMEM_") || k.starts_with("LUA_") {
            make.env_remove(k);
        }
    }
    let out = make
        .args(["--lua-version", VERSION, "make", "--tree"])
        .arg(&tree)
        .arg("lmem-scm-1.rockspec")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env("LMEM_CARGO_PROFILE", profile)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!(
            "luarocks cannot be run ({e}): install the Debian package luarocks \
             (apt-get install -y luarocks)"
        ),
    };
    check(out.status.success(), "luarocks make", &out);

    let installed = tree.join(format!("lib/lua/{VERSION}/lmem.so"));
    assert!(
        installed.is_file(),
        "{} was not installed",
        installed.display()
    );
    let code = "local ok, err = lmem.swap('slab') assert(ok, err) \
        local t = {} for i = 1, 10000 do t[i] = {i} end \
        print('ok', lmem.backend())";
    let out = lua_cmd()
        .env("LUA_CPATH", tree.join(format!("lib/lua/{VERSION}/?.so")))
        .args(["-l", "lmem", "-e", code])
        .output()
        .expect("run the interpreter");
    check_clean("the installed module", &out);
    check(text(&out.stdout) == "ok\tslab\n", "ok", &out);
    let _ = std::fs::remove_dir_all(&tree);
}
