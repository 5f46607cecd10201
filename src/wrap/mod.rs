//! Wrapper backends: each is a backend around a backend, and they compose
//! (`Checker<FaultInjection<Tracking<System>>>`).
//!
//! - [`Tracking`]: totals, peak, counts, and an optional log of every call.
//! - [`Monitor`]: a record per live block; at close a leak report and a size distribution.
//! - [`Checker`]: what Lua's test suite does in `debug_realloc` — guard bytes, fills, `osize`
//!   verified on every free and resize, double frees and foreign pointers caught, leaks reported.
//! - [`FaultInjection`]: fail the N-th allocation, above a byte limit, or at random.
//! - [`Registry`]: remembers live block addresses, so a backend that cannot tell its own blocks
//!   (`system`, `jemalloc`) answers `owns` exactly — what hot swap needs.

mod blocks;
mod checker;
mod fault;
mod monitor;
mod registry;
mod tracking;

pub use blocks::{BlockRecord, BlockTable};
pub use checker::{Checker, Complaint, GUARD};
pub use fault::{FaultInjection, FaultPlan};
pub use monitor::{Monitor, MonitorReport};
pub use registry::Registry;
pub use tracking::{CallKind, LoggedCall, Tracking, TrackingStats};
