//! `FaultInjection`: makes a backend fail on purpose, to prove that everything above it copes
//! with out-of-memory — the N-th allocation, anything above a byte limit, or at random from a
//! seed. Frees never fail.
//!
//! Shrinks fail only when asked to ([`FaultInjection::fail_shrinks`]): Lua 5.1 assumes a shrink
//! never fails, and 5.4 copes with it, so the default honours the stricter rule.

use lmem_backend::rng::Rng;
use lmem_backend::{Backend, BackendStats, ExactOwnership, Ownership, ResetUnsupported, Tag};
use std::ptr::NonNull;

/// When to fail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultPlan {
    /// Never (a transparent wrapper).
    Never,
    /// The N-th request (1-based) that could fail: allocations and grows (and shrinks, when
    /// enabled). Only that one; later requests succeed.
    At(u64),
    /// Every request from the N-th on.
    From(u64),
    /// Any request that would take the live bytes above this.
    Above(usize),
    /// Each request with probability `p`, from a seeded generator (deterministic).
    Random {
        /// Probability of failure, 0 to 1.
        p: f64,
        /// Seed.
        seed: u64,
    },
}

/// `B` with failures on a plan.
#[derive(Debug)]
pub struct FaultInjection<B> {
    inner: B,
    plan: FaultPlan,
    fail_shrinks: bool,
    requests: u64,
    injected: u64,
    live: usize,
    rng: Rng,
}

impl<B: Backend> FaultInjection<B> {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: B, plan: FaultPlan) -> Self {
        let rng = match plan {
            FaultPlan::Random { seed, .. } => Rng::new(seed),
            _ => Rng::new(0),
        };
        FaultInjection {
            inner,
            plan,
            fail_shrinks: false,
            requests: 0,
            injected: 0,
            live: 0,
            rng,
        }
    }

    /// Fails only the `n`-th allocation (1-based).
    pub fn fail_at(inner: B, n: u64) -> Self {
        Self::new(inner, FaultPlan::At(n))
    }

    /// Fails what would take the live bytes above `bytes`.
    pub fn fail_above(inner: B, bytes: usize) -> Self {
        Self::new(inner, FaultPlan::Above(bytes))
    }

    /// Fails each request with probability `p`, deterministically from `seed`.
    pub fn fail_randomly(inner: B, p: f64, seed: u64) -> Self {
        Self::new(inner, FaultPlan::Random { p, seed })
    }

    /// Whether shrinks may fail too (default: no).
    pub fn fail_shrinks(mut self, yes: bool) -> Self {
        self.fail_shrinks = yes;
        self
    }

    /// Changes the plan (the request count goes on).
    pub fn set_plan(&mut self, plan: FaultPlan) {
        if let FaultPlan::Random { seed, .. } = plan {
            self.rng = Rng::new(seed);
        }
        self.plan = plan;
    }

    /// Requests that could fail, so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Failures injected so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, mutably (to configure it, or to swap inside it; its live blocks
    /// stay known to the wrapper).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Whether this request (taking live bytes up by `grow`) is to fail. Counts it.
    fn should_fail(&mut self, grow: usize) -> bool {
        self.requests += 1;
        let fail = match self.plan {
            FaultPlan::Never => false,
            FaultPlan::At(n) => self.requests == n,
            FaultPlan::From(n) => self.requests >= n,
            FaultPlan::Above(limit) => grow > limit.saturating_sub(self.live),
            FaultPlan::Random { p, .. } => self.rng.unit() < p,
        };
        self.injected += fail as u64;
        fail
    }
}

// SAFETY: every call that is not failed on purpose is forwarded unchanged to `B`; an injected
// failure returns `None` without touching the block; frees are always forwarded.
unsafe impl<B: Backend> Backend for FaultInjection<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        if self.should_fail(size) {
            return None;
        }
        let p = self.inner.allocate(size, tag)?;
        self.live += size;
        Some(p)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.deallocate(ptr, size) };
        self.live -= size;
    }

    unsafe fn resize(&mut self, ptr: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
        if (new > old || self.fail_shrinks) && self.should_fail(new.saturating_sub(old)) {
            return None;
        }
        // SAFETY: forwarded caller contract.
        let q = unsafe { self.inner.resize(ptr, old, new) }?;
        self.live = self.live - old + new;
        Some(q)
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        self.inner.owns(ptr)
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.usable_size(ptr, size) }
    }

    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.reset() }?;
        self.live = 0;
        Ok(())
    }

    fn stats(&self) -> BackendStats {
        self.inner.stats()
    }

    fn trim(&mut self) {
        self.inner.trim()
    }
}

// SAFETY: `owns` is forwarded unchanged to `B`, which answers exactly.
unsafe impl<B: ExactOwnership> ExactOwnership for FaultInjection<B> {}
