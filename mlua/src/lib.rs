#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use lmem::{Allocator, BackendStats, Install, Stats, UnknownBackend};
use mlua::ffi;
use std::fmt;

/// Why a state could not be made, or a call on it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The backend name is not compiled into `lmem`.
    UnknownBackend(UnknownBackend),
    /// The backend could not even allocate the state (or its standard libraries).
    NotEnoughMemory,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownBackend(e) => e.fmt(f),
            Error::NotEnoughMemory => f.write_str("cannot create state: not enough memory"),
        }
    }
}

impl std::error::Error for Error {}

impl From<UnknownBackend> for Error {
    fn from(e: UnknownBackend) -> Self {
        Error::UnknownBackend(e)
    }
}

/// How to make a state: its limit, and whether the detailed figures count from the start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Limit on live bytes; an allocation past it fails and mlua reports `Error::MemoryError`.
    pub limit: Option<usize>,
    /// Count the detailed figures (peak, per Lua type, histogram) from the first block. Without
    /// it the state runs the lean path, which counts live bytes only, until
    /// [`MluaState::count_details`].
    pub detailed: bool,
}

/// A Lua state on an lmem backend, usable from mlua, closed on drop.
///
/// The state is made with `lua_newstate` over an [`lmem::Allocator`] (the same lean allocation
/// function `lmem-lua` gives Lua), then handed to mlua with `mlua::Lua::get_or_init_from_ptr`.
/// mlua does not own such a state: this value closes it, then reads the accounting. Every
/// method may be called from Rust, including from a Rust function that Lua is running (that is
/// between allocation calls); none from inside the allocation function itself, which never calls
/// out.
pub struct MluaState {
    // Declared first, so that drop closes the state before the allocator goes.
    state: *mut ffi::lua_State,
    alloc: Allocator,
}

impl MluaState {
    /// A state on backend `name` with the standard libraries, unlimited, on the lean path.
    pub fn new(name: &str) -> Result<Self, Error> {
        MluaState::with_options(name, Options::default())
    }

    /// A state on backend `name` with the standard libraries, as `options` say.
    pub fn with_options(name: &str, options: Options) -> Result<Self, Error> {
        let alloc = Allocator::new(name)?;
        {
            // SAFETY: no state uses the allocator yet; the pair is read back below.
            let mut s = unsafe { alloc.enter() };
            s.set_limit(options.limit);
            if options.detailed {
                let _ = s.count_details();
            }
        }
        // SAFETY: the function and ud come from `alloc`, which outlives the state (it is closed
        // in `drop` before `alloc` goes); the function never unwinds.
        let state = unsafe {
            #[cfg(not(feature = "lua55"))]
            let l = ffi::lua_newstate(alloc.function(), alloc.ud());
            #[cfg(feature = "lua55")]
            let l = ffi::lua_newstate(
                alloc.function(),
                alloc.ud(),
                ffi::luaL_makeseed(std::ptr::null_mut()),
            );
            l
        };
        if state.is_null() {
            return Err(Error::NotEnoughMemory);
        }
        let this = MluaState { state, alloc };
        // The standard libraries in protected mode: a memory error under a small limit is an
        // error, not a panic. (`lua_cpcall` on 5.1, where pushing a C function allocates.)
        unsafe extern "C-unwind" fn open(l: *mut ffi::lua_State) -> std::ffi::c_int {
            // SAFETY: called by Lua in protected mode on a valid state.
            unsafe { ffi::luaL_openlibs(l) };
            0
        }
        // SAFETY: a valid state; the call is protected, and `open` takes no argument.
        let status = unsafe {
            #[cfg(not(any(feature = "lua51", feature = "luajit")))]
            {
                ffi::lua_pushcfunction(this.state, open);
                ffi::lua_pcall(this.state, 0, 0, 0)
            }
            // Pushing a C function allocates a closure on 5.1 and LuaJIT: unprotected there.
            #[cfg(any(feature = "lua51", feature = "luajit"))]
            {
                ffi::lua_cpcall(this.state, open, std::ptr::null_mut())
            }
        };
        if status != ffi::LUA_OK {
            return Err(Error::NotEnoughMemory);
        }
        Ok(this)
    }

    /// The mlua handle on the state.
    pub fn lua(&self) -> &mlua::Lua {
        // SAFETY: `state` is a valid main state that lives as long as `self`; mlua attaches its
        // extra data without taking ownership.
        unsafe { mlua::Lua::get_or_init_from_ptr(self.state) }
    }

    /// The raw state.
    pub fn as_ptr(&self) -> *mut ffi::lua_State {
        self.state
    }

    /// Runs `f` with the allocator's session, and hands Lua the pair it returns.
    fn with_session<R>(&self, f: impl FnOnce(&mut lmem::Session<'_>) -> (R, Option<Install>)) -> R {
        // SAFETY: called from Rust, between allocation calls (the type's contract); the session
        // ends in this function.
        let mut s = unsafe { self.alloc.enter() };
        let (r, install) = f(&mut s);
        drop(s);
        if let Some(i) = install
            && !self.state.is_null()
        {
            // SAFETY: the state is valid; the pair is the one it must hold from now on, and no
            // allocation runs before it is installed.
            unsafe { ffi::lua_setallocf(self.state, i.function, i.ud) };
        }
        r
    }

    /// A copy of the accounting: live bytes always; the detailed figures once counted.
    pub fn stats(&self) -> Stats {
        self.with_session(|s| (s.stats(), None))
    }

    /// What the backend says about the memory it holds.
    pub fn backend_stats(&self) -> BackendStats {
        self.with_session(|s| (s.backend_stats(), None))
    }

    /// The backend new blocks come from.
    pub fn backend(&self) -> String {
        self.with_session(|s| (s.backend(), None))
    }

    /// Sets (or lifts) the byte limit and returns the previous one: allocations past it fail and
    /// Lua raises `not enough memory` (mlua: `Error::MemoryError`). mlua's own
    /// `Lua::set_memory_limit` answers `Error::MemoryControlNotAvailable` on such a state (mlua
    /// controls memory only through an allocator of its own); this is the call to use.
    pub fn set_limit(&self, limit: Option<usize>) -> Option<usize> {
        self.with_session(|s| (s.set_limit(limit), None))
    }

    /// Starts counting the detailed figures (from now on; [`Stats::uncounted`] is what was live
    /// before).
    pub fn count_details(&self) {
        self.with_session(|s| ((), s.count_details()))
    }

    /// Switches new blocks to backend `name`; blocks made before go back to their own backend.
    pub fn swap(&self, name: &str) -> Result<(), Error> {
        self.with_session(|s| match s.swap_to_name(name) {
            Ok(i) => (Ok(()), i),
            Err(e) => (Err(e.into()), None),
        })
    }

    /// Back on the lean function of the backend in use, once the backends swapped from hold no
    /// block (a state's first blocks live until it closes, so after a swap this mostly answers
    /// `false` until then). Returns whether it changed.
    pub fn settle(&self) -> bool {
        self.with_session(|s| {
            let i = s.settle();
            (i.is_some(), i)
        })
    }

    /// Gives the backend's unused memory back to its pool and the OS (after a full collection,
    /// say: `lua.gc_collect()`).
    pub fn trim(&self) {
        self.with_session(|s| (s.trim(), None))
    }

    /// Closes the state and returns the accounting after `lua_close` (`live` is 0 unless
    /// something leaked).
    pub fn close(mut self) -> Stats {
        self.close_state();
        self.stats()
    }

    fn close_state(&mut self) {
        if !self.state.is_null() {
            // SAFETY: the state is valid and not used after this; mlua's extra data is released
            // by the state's own finalisers.
            unsafe { ffi::lua_close(self.state) };
            self.state = std::ptr::null_mut();
        }
    }
}

impl Drop for MluaState {
    fn drop(&mut self) {
        self.close_state();
    }
}
