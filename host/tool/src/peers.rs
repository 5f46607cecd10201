//! The `LD_PRELOAD` peers: Debian's builds of mimalloc, jemalloc and tcmalloc, preloaded under
//! stock Lua (`lmem-lua --stock`: `luaL_newstate` with Lua's own `l_alloc`, no lmem layer) —
//! exactly "stock Lua with a better malloc", what a user would otherwise pick.

use std::path::{Path, PathBuf};

/// The line that installs every peer.
pub const INSTALL_LINE: &str =
    "apt-get install -y libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4";

/// Where Debian puts the libraries on this architecture.
const LIB_DIRS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
];

/// One peer: its name in reports, its package, and the library found (if installed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Name in reports: `preload:mimalloc`, `preload:jemalloc`, `preload:tcmalloc`.
    pub name: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
    /// The lmem backend on the same allocator (`mimalloc` for `preload:mimalloc`), if any.
    pub same_as: Option<&'static str>,
    /// The shared library to preload; `None` when not installed.
    pub path: Option<PathBuf>,
}

/// The peers, in report order, with the library each resolves to on this machine.
pub fn find() -> Vec<Peer> {
    find_in(&LIB_DIRS.map(Path::new))
}

/// [`find`] in the given directories (tests use a scratch directory).
pub fn find_in(dirs: &[&Path]) -> Vec<Peer> {
    // (name, package, lmem backend on the same allocator, file name prefix, exact name)
    let table: [(&str, &str, Option<&str>, &str, &str); 3] = [
        (
            "preload:mimalloc",
            "libmimalloc2.0",
            Some("mimalloc"),
            "libmimalloc.so.2",
            "libmimalloc.so.2",
        ),
        (
            "preload:jemalloc",
            "libjemalloc2",
            Some("jemalloc"),
            "libjemalloc.so.2",
            "libjemalloc.so.2",
        ),
        (
            "preload:tcmalloc",
            "libtcmalloc-minimal4",
            None,
            "libtcmalloc_minimal.so.4",
            "libtcmalloc_minimal.so.4",
        ),
    ];
    table
        .iter()
        .map(|&(name, package, same_as, prefix, exact)| Peer {
            name,
            package,
            same_as,
            path: dirs.iter().find_map(|d| lookup(d, prefix, exact)),
        })
        .collect()
}

/// `dir/exact` if it exists, else the first `dir/prefix*` (sorted), e.g. `libmimalloc.so.2.0`.
fn lookup(dir: &Path, prefix: &str, exact: &str) -> Option<PathBuf> {
    let p = dir.join(exact);
    if p.is_file() {
        return Some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versioned_names_and_reports_missing() {
        let dir = std::env::temp_dir().join(format!("lmem-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libmimalloc.so.2.0"), b"").unwrap();
        std::fs::write(dir.join("libjemalloc.so.2"), b"").unwrap();
        let peers = find_in(&[&dir]);
        assert_eq!(peers[0].path, Some(dir.join("libmimalloc.so.2.0")));
        assert_eq!(peers[1].path, Some(dir.join("libjemalloc.so.2")));
        assert_eq!(peers[2].path, None);
        assert_eq!(peers[2].package, "libtcmalloc-minimal4");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
