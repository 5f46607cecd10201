#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// The Lua C API this build links (`mlua-sys`, vendored PUC-Rio sources).
pub use mlua_sys as ffi;

pub mod interp;
pub mod memory;
pub mod module;
pub mod options;
pub mod standalone;
pub mod version;

pub use memory::Memory;
pub use options::MemOptions;
