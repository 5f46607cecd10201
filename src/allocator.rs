//! [`Allocator`]: the memory of one Lua state, on a backend chosen by name, that stays on the lean
//! path until the host asks for more.
//!
//! Lua holds a function pointer and a `ud`. What they point to changes with what the host asked
//! for, always between allocation calls and always by handing Lua a new pair
//! (`lua_setallocf`), as the `lua_Alloc` contract intends:
//!
//! | the host asked for | Lua holds | per call |
//! |---|---|---|
//! | nothing (the default) | `lua_alloc::<B, Basic>` over `Layer<B>` | `l_alloc`'s dispatch, one compare for the limit, live bytes counted once, the backend's fast path inlined |
//! | details ([`Session::count_details`]) | `lua_alloc::<B, Detailed>` | plus peak, counts per Lua type and the size histogram |
//! | a swap ([`Session::swap_to`], [`Session::schedule`]) | `lua_alloc::<Swap, A>` | plus routing: a free goes to the member that made the block, while a retired member holds blocks |
//!
//! Once every retired backend has given back its last block and no swap is scheduled,
//! [`Session::settle`] hands Lua the lean function of the backend now in use again: a swapped
//! state pays for routing only while old blocks remain. Every change returns an [`Install`]: the
//! pair the host must give Lua (`lua_setallocf(L, install.function, install.ud)`) before Lua
//! allocates again, because the old `ud` is gone.

use crate::backends::{AnyBackend, ExactBackend, IntoAny, Visit, with_backend};
use crate::layer::{Layer, LayerState};
use crate::lua_alloc::{LuaAlloc, LuaAllocator};
use crate::stats::{Accounting, Basic, Stats};
use crate::swap::Swap;
use lmem_backend::BackendStats;
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::fmt;

/// A backend name that is not in this build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBackend {
    /// The name asked for.
    pub name: String,
}

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown backend '{}' (compiled in: {})",
            self.name,
            crate::backends::names().join(", ")
        )
    }
}

impl std::error::Error for UnknownBackend {}

/// The allocation function and `ud` Lua must be given now (`lua_setallocf`), before it
/// allocates again: the pair it holds was replaced.
#[derive(Clone, Copy, Debug)]
#[must_use = "Lua must be given the new pair with lua_setallocf before it allocates again"]
pub struct Install {
    /// The allocation function.
    pub function: LuaAlloc,
    /// Its `ud`.
    pub ud: *mut c_void,
}

/// One form of the state's memory: a [`LuaAllocator`] whose function and `ud` Lua holds. Every
/// method runs while no allocation is running (a [`Session`] is alive).
trait Form {
    fn pair(&self) -> (LuaAlloc, *mut c_void);
    fn stats(&self) -> Stats;
    fn live(&self) -> usize;
    fn limit(&self) -> Option<usize>;
    fn set_limit(&mut self, limit: Option<usize>);
    fn backend_name(&self) -> String;
    fn backend_stats(&self) -> BackendStats;
    fn trim(&mut self);
    fn detailed(&self) -> bool;
    /// The swap chain, in the routed forms.
    fn swap(&mut self) -> Option<&mut Swap>;
    fn with_details(self: Box<Self>) -> Box<dyn Form>;
    /// The same memory with a swap chain (itself if it has one).
    fn routed(self: Box<Self>) -> Box<dyn Form>;
    /// The lean form of the current backend once the chain is settled; itself otherwise.
    fn settled(self: Box<Self>) -> Box<dyn Form>;
}

/// The layer of a form, while a [`Session`] is alive (which promises that no allocation runs).
macro_rules! layer {
    ($a:expr) => {
        // SAFETY: forms are only reached through a `Session`, whose creation promised that no
        // allocation is running; the form's allocator has no other guard alive.
        unsafe { $a.enter() }
    };
}

/// A backend at its own type, on the lean or detailed path.
struct Direct<B: IntoAny, A: Accounting>(LuaAllocator<B, A>);

/// A swap chain behind the function.
struct Routed<A: Accounting>(LuaAllocator<Swap, A>);

impl<B: IntoAny, A: Accounting + 'static> Form for Direct<B, A> {
    fn pair(&self) -> (LuaAlloc, *mut c_void) {
        self.0.raw()
    }
    fn stats(&self) -> Stats {
        layer!(self.0).stats()
    }
    fn live(&self) -> usize {
        layer!(self.0).live()
    }
    fn limit(&self) -> Option<usize> {
        layer!(self.0).limit()
    }
    fn set_limit(&mut self, limit: Option<usize>) {
        layer!(self.0).set_limit(limit)
    }
    fn backend_name(&self) -> String {
        layer!(self.0).backend().name().to_owned()
    }
    fn backend_stats(&self) -> BackendStats {
        layer!(self.0).backend_stats()
    }
    fn trim(&mut self) {
        layer!(self.0).trim()
    }
    fn detailed(&self) -> bool {
        layer!(self.0).stats().detailed
    }
    fn swap(&mut self) -> Option<&mut Swap> {
        None
    }
    fn with_details(self: Box<Self>) -> Box<dyn Form> {
        let (b, state) = self.0.into_layer().into_parts();
        let state = state.map_acct(A::into_detailed);
        Box::new(Direct(LuaAllocator::new(Layer::from_parts(b, state))))
    }
    fn routed(self: Box<Self>) -> Box<dyn Form> {
        let (b, state) = self.0.into_layer().into_parts();
        let swap = Swap::with_live(b.into_any(), state.live);
        Box::new(Routed(LuaAllocator::new(Layer::from_parts(swap, state))))
    }
    fn settled(self: Box<Self>) -> Box<dyn Form> {
        self
    }
}

impl<A: Accounting + 'static> Form for Routed<A> {
    fn pair(&self) -> (LuaAlloc, *mut c_void) {
        self.0.raw()
    }
    fn stats(&self) -> Stats {
        layer!(self.0).stats()
    }
    fn live(&self) -> usize {
        layer!(self.0).live()
    }
    fn limit(&self) -> Option<usize> {
        layer!(self.0).limit()
    }
    fn set_limit(&mut self, limit: Option<usize>) {
        layer!(self.0).set_limit(limit)
    }
    fn backend_name(&self) -> String {
        layer!(self.0).backend().current_name().to_owned()
    }
    fn backend_stats(&self) -> BackendStats {
        layer!(self.0).backend_stats()
    }
    fn trim(&mut self) {
        layer!(self.0).trim()
    }
    fn detailed(&self) -> bool {
        layer!(self.0).stats().detailed
    }
    fn swap(&mut self) -> Option<&mut Swap> {
        // SAFETY: as `layer!` (no allocation runs while a session lives); the reference ends
        // with the `&mut self` borrow, before any other access to the form.
        Some(unsafe { self.0.layer_mut() }.backend_mut())
    }
    fn with_details(self: Box<Self>) -> Box<dyn Form> {
        let (swap, state) = self.0.into_layer().into_parts();
        let state = state.map_acct(A::into_detailed);
        Box::new(Routed(LuaAllocator::new(Layer::from_parts(swap, state))))
    }
    fn routed(self: Box<Self>) -> Box<dyn Form> {
        self
    }
    fn settled(self: Box<Self>) -> Box<dyn Form> {
        if !layer!(self.0).backend().is_settled() {
            return self;
        }
        let (swap, state) = self.0.into_layer().into_parts();
        let current = match swap.into_current() {
            Ok(current) => current,
            Err(_) => unreachable!("the chain was settled a moment ago"),
        };
        // A backend wrapped in a registry to be swapped to holds every block now: it need not
        // tell them apart any more.
        current.unregistered().visit(MakeDirect { state })
    }
}

/// [`Visit`] that puts a backend on the direct path, going on from `state`.
struct MakeDirect<A> {
    state: LayerState<A>,
}

impl<A: Accounting + 'static> Visit for MakeDirect<A> {
    type Output = Box<dyn Form>;
    fn visit<B: IntoAny>(self, backend: B) -> Box<dyn Form> {
        Box::new(Direct(LuaAllocator::new(Layer::from_parts(
            backend, self.state,
        ))))
    }
}

/// The memory of one Lua state: a backend chosen by name (or given), behind the allocation
/// function Lua holds, on the lean path until the host asks for more (see the module docs).
///
/// Make it, give Lua [`Allocator::function`] and [`Allocator::ud`] (`lua_newstate`), and reach it
/// later through [`Allocator::enter`]. Close the state before dropping the allocator.
pub struct Allocator {
    inner: UnsafeCell<Inner>,
    /// The pair Lua holds, readable without a session.
    pair: Cell<(LuaAlloc, *mut c_void)>,
    entered: Cell<bool>,
}

struct Inner {
    form: Option<Box<dyn Form>>,
    /// Swaps done by chains that have been settled since.
    swaps_before: u64,
}

impl Inner {
    fn form(&self) -> &dyn Form {
        self.form.as_deref().expect("a form is always installed")
    }
    fn form_mut(&mut self) -> &mut dyn Form {
        self.form
            .as_deref_mut()
            .expect("a form is always installed")
    }
}

impl fmt::Debug for Allocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allocator")
            .field("ud", &self.pair.get().1)
            .finish_non_exhaustive()
    }
}

impl Allocator {
    /// An allocator on a fresh backend `name`, lean, unlimited.
    pub fn new(name: &str) -> Result<Allocator, UnknownBackend> {
        let form = with_backend(
            name,
            MakeDirect::<Basic> {
                state: LayerState::fresh(),
            },
        )
        .ok_or_else(|| UnknownBackend {
            name: name.to_owned(),
        })?;
        Ok(Allocator::with_form(form))
    }

    /// An allocator on `backend` (a compiled-in backend at its own type, or a `Box<dyn Backend>`
    /// of the host's own), lean, unlimited.
    pub fn from_backend<B: IntoAny>(backend: B) -> Allocator {
        Allocator::with_form(Box::new(Direct(LuaAllocator::new(Layer::new(backend)))))
    }

    /// An allocator on `backend` of any kind.
    pub fn from_any(backend: AnyBackend) -> Allocator {
        Allocator::with_form(backend.visit(MakeDirect::<Basic> {
            state: LayerState::fresh(),
        }))
    }

    /// An allocator for a running state whose memory is in `backend` already, `live` bytes of
    /// it (Lua's own count: `lua_gc(L, LUA_GCCOUNT)` KiB plus `LUA_GCCOUNTB` bytes). The
    /// state's blocks go on being freed and resized by `backend`; a swap then keeps them there
    /// and takes new blocks elsewhere. This is how a module takes over a stock interpreter's
    /// state: `backend` is its [`ForeignAlloc`](crate::ForeignAlloc).
    pub fn take_over(backend: AnyBackend, live: usize) -> Allocator {
        let mut state = LayerState::fresh();
        state.live = live;
        Allocator::with_form(backend.visit(MakeDirect::<Basic> { state }))
    }

    fn with_form(form: Box<dyn Form>) -> Allocator {
        let pair = form.pair();
        Allocator {
            inner: UnsafeCell::new(Inner {
                form: Some(form),
                swaps_before: 0,
            }),
            pair: Cell::new(pair),
            entered: Cell::new(false),
        }
    }

    /// The allocation function Lua holds now (for `lua_newstate`).
    pub fn function(&self) -> LuaAlloc {
        self.pair.get().0
    }

    /// The `ud` Lua holds now, with [`Allocator::function`].
    pub fn ud(&self) -> *mut c_void {
        self.pair.get().1
    }

    /// Reaches the memory between allocation calls: statistics, the limit, swaps, details.
    ///
    /// # Panics
    ///
    /// If a session of this allocator is alive already.
    ///
    /// # Safety
    ///
    /// No call of the allocation function is running, and none starts while the session lives.
    /// On one thread this holds anywhere outside the allocation function itself: in a Lua C
    /// function, before `lua_newstate`, after `lua_close`, or while no Lua code runs.
    pub unsafe fn enter(&self) -> Session<'_> {
        assert!(
            !self.entered.replace(true),
            "lmem: a session of this allocator is alive already"
        );
        Session {
            // SAFETY: the only other access to `inner` is through sessions, and this is the only
            // one (checked above); no allocation runs meanwhile (caller).
            inner: unsafe { &mut *self.inner.get() },
            pair: &self.pair,
            entered: &self.entered,
        }
    }
}

/// Access to an [`Allocator`]'s memory while no allocation is running. Methods that change
/// what Lua holds return the [`Install`] to hand Lua.
pub struct Session<'a> {
    inner: &'a mut Inner,
    pair: &'a Cell<(LuaAlloc, *mut c_void)>,
    entered: &'a Cell<bool>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.entered.set(false);
    }
}

impl Session<'_> {
    /// Name of the backend new blocks come from.
    pub fn backend(&self) -> String {
        self.inner.form().backend_name()
    }

    /// Bytes in live blocks (exact on every path).
    pub fn live(&self) -> usize {
        self.inner.form().live()
    }

    /// The counters: `live` and `failures` always; the detailed figures once counted (see
    /// [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.inner.form().stats()
    }

    /// What the backend (all members of a swap chain) says about the memory it holds.
    pub fn backend_stats(&self) -> BackendStats {
        self.inner.form().backend_stats()
    }

    /// The limit in force.
    pub fn limit(&self) -> Option<usize> {
        self.inner.form().limit()
    }

    /// Sets or lifts the limit on live bytes; returns the previous one. Allocations past it get
    /// NULL, which Lua turns into an emergency collection and `not enough memory`.
    pub fn set_limit(&mut self, limit: Option<usize>) -> Option<usize> {
        let previous = self.limit();
        self.inner.form_mut().set_limit(limit);
        previous
    }

    /// Gives memory the backend holds but does not use back to its pool or the OS.
    pub fn trim(&mut self) {
        self.inner.form_mut().trim()
    }

    /// Backend switches done so far (by [`Session::swap_to`] and by schedules).
    pub fn swaps(&mut self) -> u64 {
        let now = self.inner.form_mut().swap().map_or(0, |s| s.swaps());
        self.inner.swaps_before + now
    }

    /// Whether calls are routed through a swap chain now (a swap was made and old blocks remain,
    /// or swaps are scheduled).
    pub fn is_routing(&mut self) -> bool {
        self.inner.form_mut().swap().is_some()
    }

    /// Whether the detailed figures are being counted.
    pub fn is_detailed(&self) -> bool {
        self.inner.form().detailed()
    }

    /// Starts counting the detailed figures (from now on: [`Stats::uncounted`] says what was live
    /// before). `None` when they are counted already.
    pub fn count_details(&mut self) -> Option<Install> {
        if self.is_detailed() {
            return None;
        }
        Some(self.replace(|f| f.with_details()))
    }

    /// Makes `next` the backend new blocks come from; blocks of the old one go back to it.
    /// `None` when Lua already holds a routing function (a swap chain was there).
    pub fn swap_to(&mut self, next: ExactBackend) -> Option<Install> {
        let install = self.route();
        self.chain().swap_to(next);
        install
    }

    /// [`Session::swap_to`] the backend called `name` (made to tell its own blocks).
    pub fn swap_to_name(&mut self, name: &str) -> Result<Option<Install>, UnknownBackend> {
        let next = ExactBackend::by_name(name).ok_or_else(|| UnknownBackend {
            name: name.to_owned(),
        })?;
        Ok(self.swap_to(next))
    }

    /// Swaps to `next` after `after` more allocations, from inside the allocation function
    /// (no host call in between): the state keeps the routing function while the schedule lasts.
    pub fn schedule(&mut self, after: u64, next: ExactBackend) -> Option<Install> {
        let install = self.route();
        self.chain().schedule(after, next);
        install
    }

    /// Back to the lean (or detailed) function of the backend in use, once no retired backend
    /// holds a block and no swap is scheduled. `None` when nothing changed.
    pub fn settle(&mut self) -> Option<Install> {
        let settled = match self.inner.form_mut().swap() {
            Some(s) if s.is_settled() => s.swaps(),
            _ => return None,
        };
        self.inner.swaps_before += settled;
        Some(self.replace(|f| f.settled()))
    }

    /// Moves to the routed form if needed.
    fn route(&mut self) -> Option<Install> {
        if self.inner.form_mut().swap().is_some() {
            return None;
        }
        Some(self.replace(|f| f.routed()))
    }

    fn chain(&mut self) -> &mut Swap {
        self.inner
            .form_mut()
            .swap()
            .expect("the form was just routed")
    }

    /// Replaces the form, and the pair Lua must be given.
    fn replace(&mut self, f: impl FnOnce(Box<dyn Form>) -> Box<dyn Form>) -> Install {
        let old = self.inner.form.take().expect("a form is always installed");
        let new = f(old);
        let (function, ud) = new.pair();
        self.inner.form = Some(new);
        self.pair.set((function, ud));
        Install { function, ud }
    }
}

impl LayerState<Basic> {
    /// A fresh layer's state: nothing live, no limit, nothing counted.
    fn fresh() -> Self {
        LayerState {
            live: 0,
            limit: usize::MAX,
            failures: 0,
            acct: Basic,
        }
    }
}
