//! The errors of the core layer, printing Lua's own messages.

use std::fmt;

/// Why a request to the heap failed. `Display` prints exactly what Lua prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemError {
    /// The backend had no memory for `requested` bytes, even after an emergency collection.
    /// Lua: `not enough memory`.
    OutOfMemory {
        /// The size asked for.
        requested: usize,
    },
    /// The heap's memory limit would be exceeded. Lua has no separate message for this: it is
    /// `not enough memory`, which a script can catch with `pcall`.
    LimitExceeded {
        /// The size asked for.
        requested: usize,
        /// Bytes live when it was asked.
        live: usize,
        /// The limit in force.
        limit: usize,
    },
    /// An `n · size` product overflowed, or exceeded what any block can be.
    /// Lua: `memory allocation error: block too big`.
    BlockTooBig {
        /// Number of elements asked for.
        n: usize,
        /// Size of one element.
        size: usize,
    },
    /// A growing vector reached its limit. Lua: `too many {what} (limit is {limit})`.
    TooMany {
        /// What the vector holds, as Lua names it (`constants`, `upvalues`, …).
        what: &'static str,
        /// The vector's limit, in elements.
        limit: usize,
    },
}

impl MemError {
    /// Whether Lua reports this as a memory error (`LUA_ERRMEM`) rather than a runtime error.
    pub fn is_out_of_memory(&self) -> bool {
        matches!(
            self,
            MemError::OutOfMemory { .. } | MemError::LimitExceeded { .. }
        )
    }
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::OutOfMemory { .. } | MemError::LimitExceeded { .. } => {
                f.write_str("not enough memory")
            }
            MemError::BlockTooBig { .. } => f.write_str("memory allocation error: block too big"),
            MemError::TooMany { what, limit } => write!(f, "too many {what} (limit is {limit})"),
        }
    }
}

impl std::error::Error for MemError {}
