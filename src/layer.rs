//! `Layer<B, A>`: the half of Lua's `lmem.c` that sits under `lua_Alloc` — one entry point, the
//! memory limit, the live-byte count and, when asked, detailed accounting — over a backend.
//!
//! This is what `lmem-lua` runs and what a `lua_Alloc` function pointer reaches: stock Lua's
//! `l_alloc` (dispatch on the shape of the call) plus one comparison for the limit and one counter
//! of live bytes. Lua itself keeps the GC debt and runs the emergency collection when a call
//! returns NULL; the layer only says no. The other half, for a VM written in Rust that has no
//! collector of its own yet, is [`Heap`](crate::Heap): GC-debt conventions, emergency and GC-step
//! hooks, raising variants, vectors and growth, built on a `Layer`.

use crate::error::MemError;
use crate::stats::{Accounting, Basic, Detailed, Stats};
use lmem_backend::{Backend, BackendStats, Fast, Tag};
use std::fmt;
use std::ptr::{self, NonNull};

/// The layer under `lua_Alloc`: a backend, the bytes live in it, a limit, and what `A` counts
/// ([`Basic`] by default: nothing beyond live bytes; [`Detailed`]: peak, counts, bytes per Lua
/// type, a size histogram).
///
/// The live count changes only after the backend said yes, so a refused request leaves the
/// layer exactly as it was. The layer does not know its blocks: like Lua, the caller passes each
/// block's size back (`osize`).
pub struct Layer<B: Backend, A: Accounting = Basic> {
    backend: B,
    /// Bytes in live blocks, as the caller sized them (Lua's `gettotalbytes`).
    live: usize,
    /// Live-byte ceiling; `usize::MAX` when unlimited.
    limit: usize,
    /// Calls of [`Layer::realloc`] that returned NULL.
    failures: u64,
    acct: A,
}

impl<B: Backend + Default, A: Accounting> Default for Layer<B, A> {
    fn default() -> Self {
        Layer::with_accounting(B::default())
    }
}

impl<B: Backend, A: Accounting> fmt::Debug for Layer<B, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("backend", &self.backend.name())
            .field("live", &self.live)
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Layer<B> {
    /// A layer over `backend` that counts live bytes only, unlimited.
    pub fn new(backend: B) -> Self {
        Layer::with_accounting(backend)
    }
}

impl<B: Backend, A: Accounting> Layer<B, A> {
    /// A layer over `backend` counting what `A` asks for, unlimited.
    pub fn with_accounting(backend: B) -> Self {
        Layer {
            backend,
            live: 0,
            limit: usize::MAX,
            failures: 0,
            acct: A::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (to configure it; its live blocks must stay its own).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Bytes in live blocks (Lua's `gettotalbytes`).
    #[inline]
    pub fn live(&self) -> usize {
        self.live
    }

    /// The live-byte limit, if any.
    pub fn limit(&self) -> Option<usize> {
        (self.limit != usize::MAX).then_some(self.limit)
    }

    /// Sets or lifts the live-byte limit. A request that would take the live bytes above it is
    /// refused (Lua then collects and retries once, and raises `not enough memory`); blocks
    /// already live are not touched, and shrinks and frees always succeed.
    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit.unwrap_or(usize::MAX);
    }

    /// Calls of [`Layer::realloc`] that returned NULL.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The counters: `live` and `failures` always, the rest as `A` keeps them.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            live: self.live,
            failures: self.failures,
            ..Stats::default()
        };
        self.acct.report(&mut s);
        s
    }

    /// What the backend says about the memory it holds, with `wasted` filled in from the live
    /// bytes when the backend does not count requested sizes itself.
    pub fn backend_stats(&self) -> BackendStats {
        let mut s = self.backend.stats();
        if s.wasted.is_none() {
            s.wasted = s.reserved.map(|r| r.saturating_sub(self.live));
        }
        s
    }

    /// Gives the backend's unused memory back ([`Backend::trim`]).
    pub fn trim(&mut self) {
        self.backend.trim();
    }

    /// The layer's parts: the backend (with every live block still in it), live bytes, limit,
    /// failures and the accounting.
    pub fn into_parts(self) -> (B, LayerState<A>) {
        let state = LayerState {
            live: self.live,
            limit: self.limit,
            failures: self.failures,
            acct: self.acct,
        };
        (self.backend, state)
    }

    /// A layer over `backend` that goes on from `state` (what [`Layer::into_parts`] gave).
    /// `backend` must hold the live blocks that `state` counts.
    pub fn from_parts(backend: B, state: LayerState<A>) -> Self {
        Layer {
            backend,
            live: state.live,
            limit: state.limit,
            failures: state.failures,
            acct: state.acct,
        }
    }

    // ---------------------------------------------------------------------------------------
    // The entry point.

    /// The `lua_Alloc` contract, exactly as stock Lua's `l_alloc` serves it, plus the limit:
    /// `nsize == 0` frees `ptr` (which may be null) and returns null; a null `ptr` allocates
    /// `nsize` bytes for an object whose Lua type is `osize`; anything else resizes `ptr` from
    /// `osize` to `nsize`. Failure is null, with the old block untouched. Never raises.
    ///
    /// # Safety
    ///
    /// `ptr` is null, or a live block of this layer whose size is `osize`. On success a non-null
    /// `ptr` is not used again unless it equals the result.
    #[inline(always)]
    pub unsafe fn realloc(&mut self, ptr: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        match NonNull::new(ptr) {
            Some(p) if nsize == 0 => {
                // SAFETY: `p` is a live block of size `osize` (caller).
                unsafe { self.deallocate(p, osize) };
                ptr::null_mut()
            }
            None if nsize == 0 => ptr::null_mut(),
            None => match self.try_allocate(nsize, Tag::from_lua(osize)) {
                Ok(p) => p.as_ptr(),
                Err(_) => self.refused(),
            },
            // SAFETY: `p` is a live block of size `osize`, `nsize > 0` (caller).
            Some(p) => match unsafe { self.try_resize(p, osize, nsize) } {
                Ok(q) => q.as_ptr(),
                Err(_) => self.refused(),
            },
        }
    }

    /// The common cases of [`Layer::realloc`], with no call of their own when the backend's fast
    /// path needs none: a free or an allocation that [`Backend::deallocate_fast`] or
    /// [`Backend::allocate_fast`] serves, within the limit. [`Fast::Slow`] (a resize, the limit
    /// in reach, the backend's slow path) leaves everything as it was, for `realloc`.
    ///
    /// # Safety
    ///
    /// As [`Layer::realloc`].
    #[inline(always)]
    pub unsafe fn realloc_fast(
        &mut self,
        ptr: *mut u8,
        osize: usize,
        nsize: usize,
    ) -> Fast<*mut u8> {
        match NonNull::new(ptr) {
            Some(p) if nsize == 0 => {
                // SAFETY: `p` is a live block of size `osize` (caller).
                match unsafe { self.backend.deallocate_fast(p, osize) } {
                    Fast::Done(()) => {
                        debug_assert!(
                            osize <= self.live,
                            "lmem: free of {osize} B with {} B live",
                            self.live
                        );
                        self.live -= osize;
                        self.acct.freed(osize);
                        Fast::Done(ptr::null_mut())
                    }
                    Fast::Slow => Fast::Slow,
                }
            }
            None if nsize != 0 => {
                let after = match self.live.checked_add(nsize) {
                    Some(after) if after <= self.limit => after,
                    _ => return Fast::Slow,
                };
                let tag = Tag::from_lua(osize);
                match self.backend.allocate_fast(nsize, tag) {
                    Fast::Done(Some(p)) => {
                        self.live = after;
                        self.acct.allocated(nsize, tag, after);
                        Fast::Done(p.as_ptr())
                    }
                    Fast::Done(None) => Fast::Done(self.refused()),
                    Fast::Slow => Fast::Slow,
                }
            }
            None => Fast::Done(ptr::null_mut()),
            Some(_) => Fast::Slow,
        }
    }

    /// Counts a call that returns null.
    #[cold]
    #[inline(never)]
    fn refused(&mut self) -> *mut u8 {
        self.failures += 1;
        ptr::null_mut()
    }

    /// A new block of `size > 0` bytes for an object of type `tag`, or why not: the limit, or the
    /// backend had no memory.
    #[inline(always)]
    pub fn try_allocate(&mut self, size: usize, tag: Tag) -> Result<NonNull<u8>, MemError> {
        let (after, overflow) = self.live.overflowing_add(size);
        if overflow || after > self.limit {
            return Err(self.over_limit(size));
        }
        match self.backend.allocate(size, tag) {
            Some(p) => {
                self.live = after;
                self.acct.allocated(size, tag, after);
                Ok(p)
            }
            None => Err(MemError::OutOfMemory { requested: size }),
        }
    }

    /// Resizes a block from `osize` to `nsize > 0` bytes, keeping the first `min(osize, nsize)`;
    /// or says why not, with the block untouched. Only growth is held to the limit.
    ///
    /// # Safety
    ///
    /// `p` is a live block of this layer of size `osize`. On success `p` is not used again unless
    /// it equals the result.
    #[inline(always)]
    pub unsafe fn try_resize(
        &mut self,
        p: NonNull<u8>,
        osize: usize,
        nsize: usize,
    ) -> Result<NonNull<u8>, MemError> {
        debug_assert!(
            osize <= self.live,
            "lmem: resize of {osize} B with {} B live",
            self.live
        );
        let after = self.live - osize;
        let (after, overflow) = after.overflowing_add(nsize);
        if nsize > osize && (overflow || after > self.limit) {
            return Err(self.over_limit(nsize));
        }
        // SAFETY: `p` is a live block of the backend of size `osize`, `nsize > 0` (caller).
        match unsafe { self.backend.resize(p, osize, nsize) } {
            Some(q) => {
                self.live = after;
                self.acct.resized(osize, nsize, after);
                Ok(q)
            }
            None => Err(MemError::OutOfMemory { requested: nsize }),
        }
    }

    /// Frees a block of size `osize`. Never fails.
    ///
    /// # Safety
    ///
    /// `p` is a live block of this layer of size `osize`, not used afterwards.
    #[inline(always)]
    pub unsafe fn deallocate(&mut self, p: NonNull<u8>, osize: usize) {
        debug_assert!(
            osize <= self.live,
            "lmem: free of {osize} B with {} B live",
            self.live
        );
        self.live -= osize;
        self.acct.freed(osize);
        // SAFETY: `p` is a live block of the backend of size `osize` (caller).
        unsafe { self.backend.deallocate(p, osize) };
    }

    /// The error for a request of `requested` bytes that would take the live bytes past the
    /// limit (or past what any count can hold, which no backend could serve anyway).
    #[cold]
    #[inline(never)]
    fn over_limit(&self, requested: usize) -> MemError {
        if self.limit == usize::MAX {
            return MemError::OutOfMemory { requested };
        }
        MemError::LimitExceeded {
            requested,
            live: self.live,
            limit: self.limit,
        }
    }
}

impl<B: Backend> Layer<B, Basic> {
    /// The same layer, counting details from now on: peak, counts, bytes per Lua type and the
    /// size histogram start here, and [`Stats::uncounted`] says how many live bytes were made
    /// before.
    pub fn with_details(self) -> Layer<B, Detailed> {
        let (backend, s) = self.into_parts();
        let acct = Detailed::since(s.live);
        Layer::from_parts(
            backend,
            LayerState {
                live: s.live,
                limit: s.limit,
                failures: s.failures,
                acct,
            },
        )
    }
}

/// A [`Layer`] without its backend: what moves to the next layer when the backend changes hands
/// (a swap, details switched on).
#[derive(Clone, Debug)]
pub struct LayerState<A> {
    /// Bytes in live blocks.
    pub live: usize,
    /// The limit; `usize::MAX` when unlimited.
    pub limit: usize,
    /// Refused calls so far.
    pub failures: u64,
    /// The accounting.
    pub acct: A,
}

impl<A> LayerState<A> {
    /// The same state with another accounting.
    pub fn map_acct<C>(self, f: impl FnOnce(A, usize) -> C) -> LayerState<C> {
        LayerState {
            live: self.live,
            limit: self.limit,
            failures: self.failures,
            acct: f(self.acct, self.live),
        }
    }
}
