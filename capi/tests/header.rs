//! The committed header, `include/lmem.h`, is what cbindgen makes of `src/lib.rs` now: this test
//! regenerates it and fails when the two differ. `LMEM_BLESS=1` writes the new one instead.

use std::path::Path;

#[test]
fn the_committed_header_is_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = dir.join("include/lmem.h");
    if std::env::var_os("LMEM_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/lmem.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/lmem.h is stale: regenerate it with \
         `LMEM_BLESS=1 cargo test -p lmem-capi --test header` and commit it"
    );
}
