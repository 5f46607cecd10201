//! Hot swap: a backend that changes the backend behind a live allocation function.
//!
//! New blocks come from the current backend. Blocks of a retired backend keep being freed and
//! resized by it, and a retired backend is dropped when its last live byte is freed. Each free and
//! resize is routed to the member that made the block: the members that tell their own blocks
//! ([`ExactOwnership`](lmem_backend::ExactOwnership)) are asked, and the one member that cannot
//! tell — at most one, the first — takes the rest. That "at most one" is a matter of types: only
//! the first member may be any backend; everything swapped to later is an [`ExactBackend`].
//! Nothing is probed and no swap can be refused for it.

use crate::backends::{AnyBackend, ExactBackend};
use lmem_backend::{Backend, BackendStats, Ownership, Tag};
use std::fmt;
use std::ptr::NonNull;

struct Member {
    backend: AnyBackend,
    /// Bytes in this member's live blocks.
    live: usize,
    /// Whether `backend` declares exact ownership (from its type).
    exact: bool,
}

impl Member {
    fn new(backend: AnyBackend) -> Self {
        let exact = backend.exact_ownership();
        Member {
            backend,
            live: 0,
            exact,
        }
    }
}

/// A backend whose current backend can be changed while blocks are live.
///
/// While no retired backend has live blocks, a call costs one test more than the current
/// backend's own (and the member's byte count); afterwards each free and resize asks the exact
/// members' `owns` until one claims the block.
pub struct Swap {
    current: Member,
    retired: Vec<Member>,
    /// Swaps waiting for an allocation count, soonest last.
    scheduled: Vec<(u64, ExactBackend)>,
    /// Allocation count at which the next scheduled swap happens (`u64::MAX`: none).
    next_at: u64,
    allocations: u64,
    swaps: u64,
}

impl fmt::Debug for Swap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swap")
            .field("current", &self.current.backend.name())
            .field("retired", &self.retired_names())
            .field("swaps", &self.swaps)
            .finish_non_exhaustive()
    }
}

impl Swap {
    /// Starts with `first` as the current backend: the one member that need not tell its own
    /// blocks. A backend of a compiled-in kind ([`AnyBackend::by_name`]) is called without an
    /// indirect call.
    pub fn new(first: impl Into<AnyBackend>) -> Self {
        Swap::with_live(first.into(), 0)
    }

    /// Starts with `first` holding `live` bytes of live blocks already (a state moving its
    /// backend into a swap chain).
    pub fn with_live(first: AnyBackend, live: usize) -> Self {
        let mut current = Member::new(first);
        current.live = live;
        Swap {
            current,
            retired: Vec::new(),
            scheduled: Vec::new(),
            next_at: u64::MAX,
            allocations: 0,
            swaps: 0,
        }
    }

    /// The current backend's name.
    pub fn current_name(&self) -> &str {
        self.current.backend.name()
    }

    /// Names of retired backends that still have live blocks.
    pub fn retired_names(&self) -> Vec<&str> {
        self.retired.iter().map(|m| m.backend.name()).collect()
    }

    /// Swaps done so far.
    pub fn swaps(&self) -> u64 {
        self.swaps
    }

    /// Allocations served so far (what scheduled swaps count).
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// Whether the chain is down to one member with nothing scheduled: the current backend
    /// holds every live block, and routing has nothing left to do.
    pub fn is_settled(&self) -> bool {
        self.retired.is_empty() && self.scheduled.is_empty()
    }

    /// Makes `next` the current backend now. The old one keeps its live blocks until they are
    /// freed, then is dropped (at once if it has none).
    ///
    /// `next` tells its own blocks by its type; a second member that cannot does not compile:
    ///
    /// ```compile_fail,E0277
    /// use lmem::{backends::System, ExactBackend, Swap};
    /// let mut s = Swap::new(System::new());
    /// s.swap_to(ExactBackend::new(System::new())); // System does not declare ExactOwnership
    /// ```
    ///
    /// while one that can, or a backend made to (by name, in a `Registry`), does:
    ///
    /// ```
    /// use lmem::{backends::System, ExactBackend, Registry, Swap};
    /// let mut s = Swap::new(System::new());
    /// s.swap_to(ExactBackend::new(Registry::new(System::new())));
    /// s.swap_to(ExactBackend::by_name("system").unwrap());
    /// assert_eq!(s.swaps(), 2);
    /// ```
    pub fn swap_to(&mut self, next: ExactBackend) {
        self.install(next);
    }

    /// Swaps to `next` once `after` more allocations have been served (the host's `--swap
    /// NAME@N`).
    pub fn schedule(&mut self, after: u64, next: ExactBackend) {
        let at = self.allocations.saturating_add(after);
        self.scheduled.push((at, next));
        self.scheduled.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
        self.next_at = self.scheduled.last().map_or(u64::MAX, |s| s.0);
    }

    /// The current backend, once the chain is settled ([`Swap::is_settled`]); the swap back
    /// otherwise.
    pub fn into_current(self) -> Result<AnyBackend, Swap> {
        if self.is_settled() {
            Ok(self.current.backend)
        } else {
            Err(self)
        }
    }

    fn install(&mut self, next: ExactBackend) {
        let old = std::mem::replace(&mut self.current, Member::new(next.into_any()));
        if old.live > 0 {
            self.retired.push(old);
        }
        self.swaps += 1;
    }

    #[cold]
    fn run_scheduled(&mut self) {
        while self.next_at <= self.allocations {
            let (_, next) = self
                .scheduled
                .pop()
                .expect("next_at names a scheduled swap");
            self.install(next);
            self.next_at = self.scheduled.last().map_or(u64::MAX, |s| s.0);
        }
    }

    /// The member that made `ptr`: `None` for the current one, `Some(i)` for retired `i`.
    #[inline]
    fn route(&self, ptr: NonNull<u8>) -> Option<usize> {
        if self.retired.is_empty() {
            return None;
        }
        self.route_among_members(ptr)
    }

    #[cold]
    fn route_among_members(&self, ptr: NonNull<u8>) -> Option<usize> {
        if self.current.exact && self.current.backend.owns(ptr) == Ownership::Owned {
            return None;
        }
        if let Some(i) = self
            .retired
            .iter()
            .position(|m| m.exact && m.backend.owns(ptr) == Ownership::Owned)
        {
            return Some(i);
        }
        // Nobody exact claims it: it belongs to the one member that cannot tell (every member
        // but the first is an `ExactBackend`, so there is at most one).
        if !self.current.exact {
            return None;
        }
        let blind = self.retired.iter().position(|m| !m.exact);
        debug_assert!(blind.is_some(), "lmem swap: no member owns block {ptr:p}");
        blind
    }

    fn member(&mut self, at: Option<usize>) -> &mut Member {
        match at {
            None => &mut self.current,
            Some(i) => &mut self.retired[i],
        }
    }

    /// Drops retired member `at` once its last byte is gone.
    fn settle(&mut self, at: Option<usize>) {
        if let Some(i) = at
            && self.retired[i].live == 0
        {
            self.retired.swap_remove(i);
        }
    }
}

// SAFETY: every block is served by exactly one member, which upholds the contract for it; frees
// and resizes are routed to the member that made the block (exact members claim their own, by
// `ExactOwnership`'s clause; every member but the first is an `ExactBackend`, so the one member
// that cannot tell is the only other candidate); members are dropped only when they have no live
// block.
unsafe impl Backend for Swap {
    fn name(&self) -> &str {
        self.current.backend.name()
    }

    #[inline]
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        if self.allocations >= self.next_at {
            self.run_scheduled();
        }
        let p = self.current.backend.allocate(size, tag)?;
        self.current.live += size;
        self.allocations += 1;
        Some(p)
    }

    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        let at = self.route(ptr);
        let m = self.member(at);
        // SAFETY: `ptr` is a live block of this member (routing) of size `size` (caller).
        unsafe { m.backend.deallocate(ptr, size) };
        m.live -= size;
        self.settle(at);
    }

    #[inline]
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        let at = self.route(ptr);
        let m = self.member(at);
        // SAFETY: `ptr` is a live block of this member (routing) of size `old_size` (caller).
        let q = unsafe { m.backend.resize(ptr, old_size, new_size) }?;
        m.live = m.live - old_size + new_size;
        Some(q)
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        let mut answer = Ownership::Foreign;
        for m in std::iter::once(&self.current).chain(&self.retired) {
            match m.backend.owns(ptr) {
                Ownership::Owned => return Ownership::Owned,
                Ownership::Unknown => answer = Ownership::Unknown,
                Ownership::Foreign => {}
            }
        }
        answer
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        let m = match self.route(ptr) {
            None => &self.current,
            Some(i) => &self.retired[i],
        };
        // SAFETY: `ptr` is a live block of this member of size `size` (caller, routing).
        unsafe { m.backend.usable_size(ptr, size) }
    }

    fn stats(&self) -> BackendStats {
        let mut s = self.current.backend.stats();
        for m in &self.retired {
            let r = m.backend.stats();
            let add = |a: Option<usize>, b: Option<usize>| a.zip(b).map(|(a, b)| a + b);
            s.allocated = add(s.allocated, r.allocated);
            s.reserved = add(s.reserved, r.reserved);
            s.wasted = add(s.wasted, r.wasted);
            s.blocks = add(s.blocks, r.blocks);
        }
        s
    }

    fn trim(&mut self) {
        for m in std::iter::once(&mut self.current).chain(&mut self.retired) {
            m.backend.trim();
        }
    }
}
