#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod adapter;
mod api2;
pub mod backends;
mod error;
mod heap;
mod stats;
mod swap;
pub mod trace;
pub mod wrap;

pub use adapter::{LuaAlloc, LuaAllocator, lua_alloc};
pub use api2::SharedHeap;
pub use error::MemError;
pub use heap::{
    Collect, DebtConvention, EmergencyHook, ErrorHandler, GcStepHook, Heap, MIN_VECTOR,
};
pub use lmem_backend::{
    ALIGN, Backend, BackendStats, MAX_SIZE, Ownership, ResetUnsupported, Tag, forward_backend_enum,
    rng::Rng,
};
pub use stats::{Accounting, Basic, Detailed, HISTOGRAM_BUCKETS, Histogram, Stats, TagStats};
pub use swap::{Swap, SwapError, tells_ownership, with_exact_ownership};
pub use wrap::{Checker, FaultInjection, FaultPlan, Monitor, Registry, Tracking};
