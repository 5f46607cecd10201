//! Finds out which mimalloc `libmimalloc-sys` builds (2.x or 3.x) and tells the crate by a cfg.
//!
//! Why here and not by our own `v2` feature: any crate in the graph can turn on
//! `libmimalloc-sys/v2`, and the two versions export different heap functions
//! (`mi_heap_check_owned` in 2.x, `mi_heap_contains` in 3.x). The -sys crate publishes the include
//! directory of the version it built (`links = "mimalloc"` makes it `DEP_MIMALLOC_INCLUDE_DIR`),
//! and that path names the version.
use std::env;
use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mimalloc_v2)");
    println!("cargo::rerun-if-env-changed=DEP_MIMALLOC_INCLUDE_DIR");
    let include = env::var("DEP_MIMALLOC_INCLUDE_DIR").unwrap_or_default();
    let version_dir = Path::new(&include)
        .parent()
        .and_then(Path::file_name)
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if version_dir == "v2" {
        println!("cargo::rustc-cfg=mimalloc_v2");
    } else if version_dir != "v3" {
        println!(
            "cargo::warning=cannot tell the mimalloc version from DEP_MIMALLOC_INCLUDE_DIR={include:?}; assuming 3.x"
        );
    }
}
