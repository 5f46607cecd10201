#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(all(feature = "lua51", feature = "lua54"))]
compile_error!(
    "features `lua51` and `lua54` are mutually exclusive: pick one Lua version \
     (for 5.1: --no-default-features --features lua51,all-backends)"
);
#[cfg(all(feature = "lua55", feature = "lua54"))]
compile_error!(
    "features `lua55` and `lua54` are mutually exclusive: pick one Lua version \
     (for 5.5: --no-default-features --features lua55,all-backends)"
);
#[cfg(all(feature = "lua51", feature = "lua55"))]
compile_error!("features `lua51` and `lua55` are mutually exclusive: pick one Lua version");
#[cfg(not(any(feature = "lua51", feature = "lua54", feature = "lua55")))]
compile_error!("no Lua version: enable one of the features `lua54` (default), `lua51`, `lua55`");

/// The Lua C API this build links (`mlua-sys`, vendored PUC-Rio sources).
pub use mlua_sys as ffi;

#[cfg(feature = "interop")]
pub mod interop;
pub mod interp;
pub mod memory;
pub mod module;
pub mod options;
pub mod standalone;
pub mod stress;
pub mod tool;

pub use memory::Memory;
pub use options::MemOptions;
