//! `lmem-lua` links lmem, lmem-module-core, mlua-sys and libc and nothing the tool needs: no
//! plotters, indicatif or serde in its normal dependency tree.

use std::process::Command;

#[test]
fn the_interpreter_does_not_link_the_tools_libraries() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "lmem-lua", "-e", "normal", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("mlua-sys"), "{tree}");
    for banned in ["plotters", "indicatif", "serde", "clap"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "lmem-lua depends on {banned}:\n{tree}"
        );
    }
}
