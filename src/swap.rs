//! Hot swap: a backend that changes the backend behind a live allocation function.
//!
//! New blocks come from the current backend. Blocks of a retired backend keep being freed and
//! resized by it — each pointer is routed by asking the members whether they own it — and a
//! retired backend is dropped when its last live byte is freed. A swap that could misroute a
//! block (two members that cannot tell their blocks apart) is refused, never guessed.

use crate::backends::AnyBackend;
use crate::wrap::Registry;
use lmem_backend::{Backend, BackendStats, Ownership, Tag};
use std::fmt;
use std::ptr::NonNull;

/// Why a swap was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapError {
    /// More than one backend that would be in the chain cannot tell its own blocks (its `owns`
    /// answers `Unknown`), so a free could reach the wrong one.
    AmbiguousOwnership {
        /// The backend asked for.
        next: String,
        /// The members (live or scheduled, and the new one) that cannot tell ownership.
        blind: Vec<String>,
    },
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapError::AmbiguousOwnership { next, blind } => write!(
                f,
                "cannot swap to {next}: {} cannot tell their blocks apart \
                 (wrap all but one in lmem::Registry)",
                blind.join(" and ")
            ),
        }
    }
}

impl std::error::Error for SwapError {}

/// Whether a backend answers `owns` exactly: it says `Foreign` for memory it cannot hold (a
/// stack address). Backends either always answer `Unknown` (malloc-like) or answer exactly.
pub fn tells_ownership(b: &dyn Backend) -> bool {
    let probe = 0u128;
    b.owns(NonNull::from(&probe).cast()) == Ownership::Foreign
}

/// `b` ready to be swapped to: as it is when it tells its own blocks, otherwise wrapped in a
/// [`Registry`] so that it does. With every swap target made so, a chain holds at most one
/// blind member (the first backend) and no swap is refused.
pub fn with_exact_ownership(b: impl Into<AnyBackend>) -> AnyBackend {
    let b = b.into();
    if tells_ownership(&b) {
        b
    } else {
        AnyBackend::Dyn(Box::new(Registry::new(b)))
    }
}

struct Member {
    backend: AnyBackend,
    /// Bytes in this member's live blocks.
    live: usize,
    exact: bool,
}

impl Member {
    fn new(backend: AnyBackend) -> Self {
        let exact = tells_ownership(&backend);
        Member {
            backend,
            live: 0,
            exact,
        }
    }
}

/// A backend whose current backend can be changed while blocks are live.
///
/// Routing costs nothing while no retired backend has live blocks; afterwards each free and
/// resize asks the members' `owns` until one claims the block.
pub struct Swap {
    current: Member,
    retired: Vec<Member>,
    /// Swaps waiting for an allocation count, soonest last.
    scheduled: Vec<(u64, AnyBackend)>,
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
    /// Starts with `first` as the current backend. A backend of a compiled-in kind
    /// ([`AnyBackend::by_name`]) is called without an indirect call; a box through one.
    pub fn new(first: impl Into<AnyBackend>) -> Self {
        Swap {
            current: Member::new(first.into()),
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

    /// Checks that the members that may hold blocks, plus every scheduled backend and `next`,
    /// leave at most one backend that cannot tell ownership. The current backend counts when
    /// it has live blocks now, or `later` (a scheduled swap, by when it will have some).
    fn check_chain(&self, next: &dyn Backend, later: bool) -> Result<(), SwapError> {
        let mut blind = Vec::new();
        let members = std::iter::once(&self.current)
            .filter(|m| later || m.live > 0)
            .chain(&self.retired)
            .map(|m| (&m.backend as &dyn Backend, m.exact));
        let others = self.scheduled.iter().map(|(_, b)| b as &dyn Backend);
        let others = others
            .chain(std::iter::once(next))
            .map(|b| (b, tells_ownership(b)));
        for (b, exact) in members.chain(others) {
            if !exact {
                blind.push(b.name().to_string());
            }
        }
        if blind.len() > 1 {
            return Err(SwapError::AmbiguousOwnership {
                next: next.name().to_string(),
                blind,
            });
        }
        Ok(())
    }

    /// Makes `next` the current backend now. The old one keeps its live blocks until they are
    /// freed, then is dropped (at once if it has none).
    pub fn swap_to(&mut self, next: impl Into<AnyBackend>) -> Result<(), SwapError> {
        let next = next.into();
        self.check_chain(&next, false)?;
        self.install(next);
        Ok(())
    }

    /// Swaps to `next` once `after` more allocations have been served (the host's `--swap
    /// NAME@N`). Checked now against every member and every swap already scheduled.
    pub fn schedule(&mut self, after: u64, next: impl Into<AnyBackend>) -> Result<(), SwapError> {
        let next = next.into();
        self.check_chain(&next, true)?;
        let at = self.allocations.saturating_add(after);
        self.scheduled.push((at, next));
        self.scheduled.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
        self.next_at = self.scheduled.last().map_or(u64::MAX, |s| s.0);
        Ok(())
    }

    fn install(&mut self, next: AnyBackend) {
        let old = std::mem::replace(&mut self.current, Member::new(next));
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
        // Nobody exact claims it: it belongs to the one member that cannot tell.
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
// and resizes are routed to the member that made the block (exact members claim their own; the
// one member that cannot tell is, by the check in `check_chain`, the only other candidate);
// members are dropped only when they have no live block.
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
}
