//! `Heap<B>`: lmem.c's VM-side API — the `luaM_*` layer — over a [`Layer`]: GC-debt conventions,
//! emergency collection and one retry, GC-step hooks, the raising variants, vectors and growth.

use crate::error::MemError;
use crate::layer::Layer;
use crate::stats::{Accounting, Detailed, Stats};
use lmem_backend::{Backend, MAX_SIZE, Tag};
use std::fmt;
use std::ptr::{self, NonNull};

/// Which sign the GC debt is read and written with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DebtConvention {
    /// Lua 5.4: `GCdebt` counts bytes allocated and not yet paid for by the collector; a step is
    /// due when it is positive.
    #[default]
    Lua54,
    /// Lua 5.5: `GCdebt` counts bytes that may still be allocated before the next step; a step
    /// is due when it reaches zero or below.
    Lua55,
}

/// What an emergency-collection hook did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    /// Memory may have been freed: retry the request once.
    Collected,
    /// The collector cannot run now (Lua's `cantryagain` is false): fail at once.
    CannotCollect,
}

/// Called once when a request fails, with the heap and the size asked for, before the one retry.
/// It may free blocks through the heap (the hook is not re-entered meanwhile).
pub type EmergencyHook<B, A = Detailed> = Box<dyn FnMut(&mut Heap<B, A>, usize) -> Collect>;

/// Called after a successful request when the GC debt says a step is due. It is expected to pay
/// the debt ([`Heap::set_gc_threshold`] or [`Heap::set_gc_debt`]).
pub type GcStepHook<B, A = Detailed> = Box<dyn FnMut(&mut Heap<B, A>)>;

/// Raises a memory error from the infallible variants; never returns. The default panics with
/// Lua's message; a host embedding a VM installs one that throws into the VM.
pub type ErrorHandler = fn(&MemError) -> !;

fn panic_with(e: &MemError) -> ! {
    panic!("{e}")
}

/// Lua's smallest vector: `MINSIZEARRAY` in `lmem.c`.
pub const MIN_VECTOR: usize = 4;

/// A heap: lmem.c's VM-side API over a [`Layer`] — GC-debt conventions, emergency collection and
/// one retry, GC-step hooks, the raising variants, vectors and their growth — counting what `A`
/// asks for ([`Detailed`] by default; [`Basic`](crate::Basic) keeps only what `lmem.c` keeps).
///
/// This is the half a VM written in Rust uses (Lua itself keeps its debt and collects on its
/// own, so `lmem-lua` runs only the [`Layer`]). Every request goes through one entry point
/// ([`Heap::try_realloc`]), as in `lmem.c`; the counters change only after a request succeeds,
/// so a failed request leaves the heap exactly as it was. The heap does not know its blocks:
/// like Lua, the caller passes each block's size back (`osize`).
pub struct Heap<B: Backend, A: Accounting = Detailed> {
    /// The half under the allocation function: backend, live bytes, limit, accounting.
    layer: Layer<B, A>,
    /// Requests that failed after the emergency collection and the retry.
    failures: u64,
    emergencies: u64,
    /// What the collector has paid for: Lua 5.4's `GCdebt` is `live - gc_paid`. Kept this way
    /// so that a request updates one counter (the layer's live bytes), not two.
    gc_paid: isize,
    /// A GC step is due when `live > gc_trigger` (`isize::MAX` without a step hook), so the
    /// hot path tests one comparison whatever the convention.
    gc_trigger: isize,
    convention: DebtConvention,
    emergency: Option<EmergencyHook<B, A>>,
    gc_step: Option<GcStepHook<B, A>>,
    raise: ErrorHandler,
}

impl<B: Backend + Default> Default for Heap<B> {
    fn default() -> Self {
        Heap::new(B::default())
    }
}

impl<B: Backend, A: Accounting> fmt::Debug for Heap<B, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("backend", &self.layer.backend().name())
            .field("live", &self.layer.live())
            .field("limit", &self.limit())
            .field("gc_debt", &self.gc_debt())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Heap<B> {
    /// A heap over `backend` with [`Detailed`] accounting, unlimited, with no hooks.
    pub fn new(backend: B) -> Self {
        Heap::with_accounting(backend)
    }
}

impl<B: Backend, A: Accounting> Heap<B, A> {
    /// A heap over `backend` counting what `A` asks for, unlimited, with no hooks.
    pub fn with_accounting(backend: B) -> Self {
        Heap::on_layer(Layer::with_accounting(backend))
    }

    /// A heap over `layer` (its live blocks, limit and counts go on), with no hooks.
    pub fn on_layer(layer: Layer<B, A>) -> Self {
        Heap {
            layer,
            failures: 0,
            emergencies: 0,
            gc_paid: 0,
            gc_trigger: isize::MAX,
            convention: DebtConvention::Lua54,
            emergency: None,
            gc_step: None,
            raise: panic_with,
        }
    }

    /// The layer under the heap.
    pub fn layer(&self) -> &Layer<B, A> {
        &self.layer
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        self.layer.backend()
    }

    /// The backend, mutably (to configure it).
    pub fn backend_mut(&mut self) -> &mut B {
        self.layer.backend_mut()
    }

    /// Gives the backend back. Blocks still live stay live in it.
    pub fn into_backend(self) -> B {
        self.layer.into_parts().0
    }

    /// Gives the layer back (live blocks, limit and counts with it).
    pub fn into_layer(self) -> Layer<B, A> {
        self.layer
    }

    /// The counters, as the accounting `A` keeps them.
    pub fn stats(&self) -> Stats {
        let mut s = self.layer.stats();
        s.failures = self.failures;
        s.emergencies = self.emergencies;
        s
    }

    /// Bytes in live blocks (Lua's `gettotalbytes`).
    pub fn total_bytes(&self) -> usize {
        self.layer.live()
    }

    /// The live-byte limit, if any.
    pub fn limit(&self) -> Option<usize> {
        self.layer.limit()
    }

    /// Sets or clears the live-byte limit. A request that would take the live bytes above it
    /// fails (after the emergency hook and one retry) with `not enough memory`; blocks already
    /// live are not touched, and shrinks and frees always succeed.
    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.layer.set_limit(limit);
    }

    /// Installs the emergency-collection hook (Lua's `luaC_fullgc(L, 1)` in `tryagain`).
    pub fn set_emergency_hook(&mut self, hook: Option<EmergencyHook<B, A>>) {
        self.emergency = hook;
    }

    /// Installs the GC-step hook, called when the debt says a step is due.
    pub fn set_gc_step_hook(&mut self, hook: Option<GcStepHook<B, A>>) {
        self.gc_step = hook;
        self.update_gc_trigger();
    }

    /// Installs the handler that the infallible variants raise errors through.
    pub fn set_error_handler(&mut self, raise: ErrorHandler) {
        self.raise = raise;
    }

    /// Chooses the sign convention of [`Heap::gc_debt`] and [`Heap::set_gc_debt`].
    pub fn set_debt_convention(&mut self, convention: DebtConvention) {
        self.convention = convention;
        self.update_gc_trigger();
    }

    /// Lua 5.4's debt: bytes allocated and not yet paid for.
    fn debt54(&self) -> isize {
        self.layer.live() as isize - self.gc_paid
    }

    /// The GC debt in the chosen convention.
    pub fn gc_debt(&self) -> isize {
        match self.convention {
            DebtConvention::Lua54 => self.debt54(),
            DebtConvention::Lua55 => -self.debt54(),
        }
    }

    /// Sets the GC debt in the chosen convention (`luaE_setdebt`).
    pub fn set_gc_debt(&mut self, debt: isize) {
        let debt54 = match self.convention {
            DebtConvention::Lua54 => debt,
            DebtConvention::Lua55 => debt.saturating_neg(),
        };
        self.gc_paid = (self.layer.live() as isize).saturating_sub(debt54);
        self.update_gc_trigger();
    }

    /// Asks for the next GC step after `bytes` more bytes are allocated, whatever the convention.
    pub fn set_gc_threshold(&mut self, bytes: usize) {
        let bytes = bytes.min(isize::MAX as usize) as isize;
        self.gc_paid = (self.layer.live() as isize).saturating_add(bytes);
        self.update_gc_trigger();
    }

    /// Whether the debt says a GC step is due.
    #[inline]
    pub fn gc_step_due(&self) -> bool {
        match self.convention {
            DebtConvention::Lua54 => self.debt54() > 0,
            DebtConvention::Lua55 => self.debt54() >= 0,
        }
    }

    /// Recomputes the one comparison the hot path makes for the GC step.
    fn update_gc_trigger(&mut self) {
        self.gc_trigger = match (&self.gc_step, self.convention) {
            (None, _) => isize::MAX,
            (Some(_), DebtConvention::Lua54) => self.gc_paid,
            (Some(_), DebtConvention::Lua55) => self.gc_paid.saturating_sub(1),
        };
    }

    // ---------------------------------------------------------------------------------------
    // The entry point.

    /// `luaM_realloc_`: the one entry point. Frees when `nsize == 0`, allocates when `block` is
    /// null (then `osize` must be 0), resizes otherwise; on failure runs the emergency hook and
    /// retries once, and returns the error with the heap and the block untouched.
    ///
    /// Returns null exactly when `nsize == 0`.
    ///
    /// # Safety
    ///
    /// `block` is null, or a live block of this heap whose size is `osize`. On success a non-null
    /// `block` is not used again unless it equals the result.
    #[inline]
    pub unsafe fn try_realloc(
        &mut self,
        block: *mut u8,
        osize: usize,
        nsize: usize,
    ) -> Result<*mut u8, MemError> {
        debug_assert_eq!(
            osize == 0,
            block.is_null(),
            "lmem: (osize == 0) == (block == NULL)"
        );
        // SAFETY: the caller's contract is ours.
        let r = unsafe { self.request(NonNull::new(block), osize, nsize, Tag::Other) };
        debug_assert!(r.as_ref().is_err() || (nsize == 0) == r.as_ref().is_ok_and(|p| p.is_null()));
        r
    }

    /// The `lua_Alloc` contract on top of the heap: when `ptr` is null, `osize` is the Lua type
    /// of the new object, not a size. Never raises; failure is null.
    ///
    /// # Safety
    ///
    /// `ptr` is null, or a live block of this heap whose size is `osize`.
    #[inline]
    pub unsafe fn lua_alloc(&mut self, ptr: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        let block = NonNull::new(ptr);
        let (osize, tag) = match block {
            Some(_) => (osize, Tag::Other),
            None => (0, Tag::from_lua(osize)),
        };
        // SAFETY: `ptr` is null or a live block of size `osize` (caller).
        unsafe { self.request(block, osize, nsize, tag) }.unwrap_or(ptr::null_mut())
    }

    /// Dispatch on the shape of the request, as `l_alloc` does.
    #[inline]
    unsafe fn request(
        &mut self,
        block: Option<NonNull<u8>>,
        osize: usize,
        nsize: usize,
        tag: Tag,
    ) -> Result<*mut u8, MemError> {
        match (block, nsize) {
            (None, 0) => Ok(ptr::null_mut()),
            (Some(p), 0) => {
                // SAFETY: `p` is a live block of size `osize` (caller).
                unsafe { self.free_block(p, osize) };
                Ok(ptr::null_mut())
            }
            (None, n) => self.alloc_block(n, tag).map(NonNull::as_ptr),
            // SAFETY: `p` is a live block of size `osize` (caller).
            (Some(p), n) => unsafe { self.resize_block(p, osize, n) }.map(NonNull::as_ptr),
        }
    }

    #[inline]
    fn alloc_block(&mut self, size: usize, tag: Tag) -> Result<NonNull<u8>, MemError> {
        let p = match self.layer.try_allocate(size, tag) {
            Ok(p) => p,
            Err(e) => self.alloc_again(size, tag, e)?,
        };
        self.after_growth();
        Ok(p)
    }

    /// `tryagain` for a new block: one emergency collection, one retry, else the error.
    #[cold]
    #[inline(never)]
    fn alloc_again(&mut self, size: usize, tag: Tag, e: MemError) -> Result<NonNull<u8>, MemError> {
        if !self.emergency_collect(size) {
            return Err(self.failed(e));
        }
        self.layer
            .try_allocate(size, tag)
            .map_err(|e| self.failed(e))
    }

    /// # Safety
    ///
    /// `p` is a live block of size `osize`; `nsize > 0`.
    #[inline]
    unsafe fn resize_block(
        &mut self,
        p: NonNull<u8>,
        osize: usize,
        nsize: usize,
    ) -> Result<NonNull<u8>, MemError> {
        // SAFETY: `p` is a live block of the layer of size `osize`, `nsize > 0` (caller).
        let q = match unsafe { self.layer.try_resize(p, osize, nsize) } {
            Ok(q) => q,
            // SAFETY: forwarded caller contract; the failed first try left `p` live.
            Err(e) => unsafe { self.resize_again(p, osize, nsize, e) }?,
        };
        if nsize > osize {
            self.after_growth();
        }
        Ok(q)
    }

    /// `tryagain` for a resize.
    ///
    /// # Safety
    ///
    /// `p` is a live block of size `osize`; `nsize > 0`.
    #[cold]
    #[inline(never)]
    unsafe fn resize_again(
        &mut self,
        p: NonNull<u8>,
        osize: usize,
        nsize: usize,
        e: MemError,
    ) -> Result<NonNull<u8>, MemError> {
        if !self.emergency_collect(nsize) {
            return Err(self.failed(e));
        }
        // SAFETY: the hook may free other blocks but not `p`, which the caller owns.
        unsafe { self.layer.try_resize(p, osize, nsize) }.map_err(|e| self.failed(e))
    }

    /// # Safety
    ///
    /// `p` is a live block of size `osize`.
    #[inline]
    unsafe fn free_block(&mut self, p: NonNull<u8>, osize: usize) {
        // SAFETY: `p` is a live block of the layer of size `osize` (caller).
        unsafe { self.layer.deallocate(p, osize) }
    }

    /// Runs the emergency hook once, unless it is already running (Lua's `gcstopem`).
    #[cold]
    fn emergency_collect(&mut self, size: usize) -> bool {
        let Some(mut hook) = self.emergency.take() else {
            return false;
        };
        let answer = hook(self, size);
        if self.emergency.is_none() {
            self.emergency = Some(hook);
        }
        if answer == Collect::Collected {
            self.emergencies += 1;
            true
        } else {
            false
        }
    }

    /// Counts a request that failed for good.
    #[cold]
    fn failed(&mut self, e: MemError) -> MemError {
        self.failures += 1;
        e
    }

    #[inline]
    fn after_growth(&mut self) {
        if self.layer.live() as isize > self.gc_trigger {
            self.run_gc_step();
        }
    }

    #[cold]
    fn run_gc_step(&mut self) {
        if let Some(mut hook) = self.gc_step.take() {
            hook(self);
            if self.gc_step.is_none() {
                self.gc_step = Some(hook);
            }
            self.update_gc_trigger();
        }
    }

    /// Raises `e` through the error handler.
    #[cold]
    #[inline(never)]
    pub fn raise(&self, e: MemError) -> ! {
        (self.raise)(&e)
    }

    // ---------------------------------------------------------------------------------------
    // The raising variants and plain blocks.

    /// [`Heap::try_realloc`] that raises on failure: Lua's `luaM_saferealloc_` (also under that
    /// name, [`Heap::saferealloc`]).
    ///
    /// # Safety
    ///
    /// As [`Heap::try_realloc`].
    pub unsafe fn realloc(&mut self, block: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        // SAFETY: the caller's contract is ours.
        match unsafe { self.try_realloc(block, osize, nsize) } {
            Ok(p) => p,
            Err(e) => self.raise(e),
        }
    }

    /// Lua's name for [`Heap::realloc`] (`luaM_saferealloc_`).
    ///
    /// # Safety
    ///
    /// As [`Heap::try_realloc`].
    #[doc(alias = "luaM_saferealloc_")]
    pub unsafe fn saferealloc(&mut self, block: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `realloc`'s.
        unsafe { self.realloc(block, osize, nsize) }
    }

    /// `luaM_malloc_`: a new block of `size` bytes for an object of type `tag`; null for 0.
    pub fn try_malloc(&mut self, size: usize, tag: Tag) -> Result<*mut u8, MemError> {
        if size == 0 {
            return Ok(ptr::null_mut());
        }
        self.alloc_block(size, tag).map(NonNull::as_ptr)
    }

    /// [`Heap::try_malloc`] that raises on failure.
    pub fn malloc(&mut self, size: usize, tag: Tag) -> *mut u8 {
        self.try_malloc(size, tag).unwrap_or_else(|e| self.raise(e))
    }

    /// `luaM_free_`: frees a block of size `osize`; null is a no-op. Never fails.
    ///
    /// # Safety
    ///
    /// `block` is null or a live block of this heap of size `osize`, not used afterwards.
    pub unsafe fn free(&mut self, block: *mut u8, osize: usize) {
        debug_assert_eq!(
            osize == 0,
            block.is_null(),
            "lmem: (osize == 0) == (block == NULL)"
        );
        if let Some(p) = NonNull::new(block) {
            // SAFETY: `p` is a live block of size `osize` (caller).
            unsafe { self.free_block(p, osize) }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Typed helpers (`luaM_new`, `luaM_newvector`, `luaM_growvector`, …).

    /// `luaM_new`: uninitialised room for one `T`, tagged `tag`.
    pub fn try_new_object<T>(&mut self, tag: Tag) -> Result<NonNull<T>, MemError> {
        const {
            assert!(
                align_of::<T>() <= lmem_backend::ALIGN,
                "T is over-aligned for a heap"
            )
        };
        if size_of::<T>() == 0 {
            return Ok(NonNull::dangling());
        }
        self.alloc_block(size_of::<T>(), tag).map(NonNull::cast)
    }

    /// [`Heap::try_new_object`] that raises on failure.
    pub fn new_object<T>(&mut self, tag: Tag) -> NonNull<T> {
        self.try_new_object(tag).unwrap_or_else(|e| self.raise(e))
    }

    /// `luaM_freemem`/`luaM_free` for one `T` made by [`Heap::try_new_object`].
    ///
    /// # Safety
    ///
    /// `obj` came from this heap's `try_new_object::<T>`/`new_object::<T>` and is not used afterwards.
    pub unsafe fn free_object<T>(&mut self, obj: NonNull<T>) {
        if size_of::<T>() != 0 {
            // SAFETY: a live block of size `size_of::<T>()` (caller).
            unsafe { self.free_block(obj.cast(), size_of::<T>()) }
        }
    }

    /// Bytes in `n` elements of `T`, or `block too big` (`luaM_checksize`).
    #[inline]
    fn vector_bytes<T>(n: usize) -> Result<usize, MemError> {
        const {
            assert!(
                align_of::<T>() <= lmem_backend::ALIGN,
                "T is over-aligned for a heap"
            )
        };
        match n.checked_mul(size_of::<T>()) {
            Some(bytes) if bytes <= MAX_SIZE => Ok(bytes),
            _ => Err(MemError::BlockTooBig {
                n,
                size: size_of::<T>(),
            }),
        }
    }

    /// `luaM_newvectorchecked`: uninitialised room for `n` elements of `T`; null for `n == 0`.
    pub fn try_new_vector<T>(&mut self, n: usize, tag: Tag) -> Result<*mut T, MemError> {
        let bytes = Self::vector_bytes::<T>(n)?;
        self.try_malloc(bytes, tag).map(|p| p.cast())
    }

    /// [`Heap::try_new_vector`] that raises on failure.
    pub fn new_vector<T>(&mut self, n: usize, tag: Tag) -> *mut T {
        self.try_new_vector(n, tag)
            .unwrap_or_else(|e| self.raise(e))
    }

    /// `luaM_freearray`: frees a vector of `n` elements.
    ///
    /// # Safety
    ///
    /// `v` is null with `n == 0`, or a live vector of this heap holding room for exactly `n`
    /// elements of `T`; not used afterwards.
    pub unsafe fn free_array<T>(&mut self, v: *mut T, n: usize) {
        let bytes = n * size_of::<T>();
        if let Some(p) = NonNull::new(v.cast::<u8>()).filter(|_| bytes > 0) {
            // SAFETY: a live block of `n * size_of::<T>()` bytes (caller).
            unsafe { self.free_block(p, bytes) }
        }
    }

    /// `luaM_reallocvector`: resizes a vector from `old_n` to `new_n` elements.
    ///
    /// # Safety
    ///
    /// `v` is null with `old_n == 0`, or a live vector of this heap with room for exactly `old_n`
    /// elements of `T`. On success the old pointer is not used again unless it equals the result.
    pub unsafe fn try_realloc_vector<T>(
        &mut self,
        v: *mut T,
        old_n: usize,
        new_n: usize,
    ) -> Result<*mut T, MemError> {
        let old = old_n * size_of::<T>();
        let new = Self::vector_bytes::<T>(new_n)?;
        let v = if old == 0 { ptr::null_mut() } else { v.cast() };
        // SAFETY: `v` is null with size 0 or a live block of `old` bytes (caller).
        unsafe { self.try_realloc(v, old, new) }.map(|p| p.cast())
    }

    /// [`Heap::try_realloc_vector`] that raises on failure.
    ///
    /// # Safety
    ///
    /// As [`Heap::try_realloc_vector`].
    pub unsafe fn realloc_vector<T>(&mut self, v: *mut T, old_n: usize, new_n: usize) -> *mut T {
        // SAFETY: the caller's contract is ours.
        unsafe { self.try_realloc_vector(v, old_n, new_n) }.unwrap_or_else(|e| self.raise(e))
    }

    /// `luaM_growaux_`: makes room for one more element in a vector of capacity `*size` holding
    /// `nelems`. If one more fits, the same vector comes back. Otherwise the capacity doubles (at
    /// least [`MIN_VECTOR`]), clamped to `limit`; a vector already at `limit` fails with
    /// `too many {what} (limit is {limit})`. `*size` changes only on success.
    ///
    /// # Safety
    ///
    /// `v` is null with `*size == 0`, or a live vector of this heap with room for exactly `*size`
    /// elements of `T`; `nelems <= *size`. On success the old pointer is not used again unless it
    /// equals the result.
    pub unsafe fn try_grow_vector<T>(
        &mut self,
        v: *mut T,
        nelems: usize,
        size: &mut usize,
        limit: usize,
        what: &'static str,
    ) -> Result<*mut T, MemError> {
        debug_assert!(
            nelems <= *size,
            "lmem: growvector with {nelems} of {size} in use"
        );
        if nelems < *size {
            return Ok(v); // one extra element still fits
        }
        // `luaM_limitN`: no limit beyond what a block can hold, so `n * size_of` cannot overflow.
        let limit = limit.min(MAX_SIZE / size_of::<T>().max(1));
        let new_size = if *size >= limit / 2 {
            if *size >= limit {
                return Err(MemError::TooMany { what, limit });
            }
            limit
        } else {
            // Lua's limits are always far above MIN_VECTOR; a small one still bounds the vector.
            (*size * 2).max(MIN_VECTOR).min(limit)
        };
        debug_assert!(nelems < new_size && new_size <= limit);
        // SAFETY: the caller's contract covers `v` and `*size`.
        let grown = unsafe { self.try_realloc_vector(v, *size, new_size) }?;
        *size = new_size; // only when everything else is OK
        Ok(grown)
    }

    /// [`Heap::try_grow_vector`] that raises on failure.
    ///
    /// # Safety
    ///
    /// As [`Heap::try_grow_vector`].
    pub unsafe fn grow_vector<T>(
        &mut self,
        v: *mut T,
        nelems: usize,
        size: &mut usize,
        limit: usize,
        what: &'static str,
    ) -> *mut T {
        // SAFETY: the caller's contract is ours.
        unsafe { self.try_grow_vector(v, nelems, size, limit, what) }
            .unwrap_or_else(|e| self.raise(e))
    }

    /// `luaM_shrinkvector_`: shrinks a vector of capacity `*size` to `final_n` elements (the
    /// parser's last step for each prototype). `*size` changes only on success.
    ///
    /// # Safety
    ///
    /// `v` is null with `*size == 0`, or a live vector of this heap with room for exactly `*size`
    /// elements of `T`; `final_n <= *size`.
    pub unsafe fn try_shrink_vector<T>(
        &mut self,
        v: *mut T,
        size: &mut usize,
        final_n: usize,
    ) -> Result<*mut T, MemError> {
        debug_assert!(
            final_n <= *size,
            "lmem: shrinkvector from {size} to {final_n}"
        );
        // SAFETY: the caller's contract covers `v` and `*size`.
        let shrunk = unsafe { self.try_realloc_vector(v, *size, final_n) }?;
        *size = final_n;
        Ok(shrunk)
    }

    /// [`Heap::try_shrink_vector`] that raises on failure.
    ///
    /// # Safety
    ///
    /// As [`Heap::try_shrink_vector`].
    pub unsafe fn shrink_vector<T>(
        &mut self,
        v: *mut T,
        size: &mut usize,
        final_n: usize,
    ) -> *mut T {
        // SAFETY: the caller's contract is ours.
        unsafe { self.try_shrink_vector(v, size, final_n) }.unwrap_or_else(|e| self.raise(e))
    }
}
