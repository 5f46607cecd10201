#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

// The half under `lua_Alloc`: what `lmem-lua` and every Lua host runs.
mod allocator;
mod foreign;
mod layer;
mod lua_alloc;
mod swap;

// The VM-side half (`luaM_*`): what a VM written in Rust uses on top of a layer.
mod collections;
mod heap;

pub mod backends;
mod error;
mod stats;
pub mod trace;
pub mod wrap;

pub use allocator::{Allocator, Install, Session, UnknownBackend};
pub use backends::{AnyBackend, ExactBackend};
pub use collections::SharedHeap;
pub use error::MemError;
pub use foreign::ForeignAlloc;
pub use heap::{
    Collect, DebtConvention, EmergencyHook, ErrorHandler, GcStepHook, Heap, MIN_VECTOR,
};
pub use layer::{Layer, LayerState};
pub use lmem_backend::{
    ALIGN, Backend, BackendStats, ExactOwnership, Fast, MAX_SIZE, Ownership, ResetUnsupported, Tag,
    forward_backend_enum, rng::Rng,
};
pub use lua_alloc::{Guard, LuaAlloc, LuaAllocator, lua_alloc};
pub use stats::{Accounting, Basic, Detailed, HISTOGRAM_BUCKETS, Histogram, Stats, TagStats};
pub use swap::Swap;
pub use wrap::{Checker, Complaint, FaultInjection, FaultPlan, Monitor, Registry, Tracking};
