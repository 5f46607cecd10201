//! `Tracking`: totals, peak and counts of a backend's traffic, and optionally a log of every
//! call, with its result.

use lmem_backend::{Backend, BackendStats, ExactOwnership, Ownership, ResetUnsupported, Tag};
use std::ptr::NonNull;

/// What kind of call a [`LoggedCall`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `allocate(size, tag)`.
    Allocate(Tag),
    /// `resize(ptr, old, new)`.
    Resize,
    /// `deallocate(ptr, size)`.
    Free,
}

/// One logged call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedCall {
    /// The call.
    pub op: CallKind,
    /// The block passed in (0 for an allocation).
    pub ptr: usize,
    /// Its size (0 for an allocation).
    pub old_size: usize,
    /// The size asked for (0 for a free).
    pub new_size: usize,
    /// The block returned (0 for a failure or a free).
    pub result: usize,
}

/// Counters kept by [`Tracking`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackingStats {
    /// Bytes in live blocks.
    pub live: usize,
    /// Highest `live` seen.
    pub peak: usize,
    /// Successful allocations.
    pub allocations: u64,
    /// Frees.
    pub frees: u64,
    /// Successful resizes.
    pub resizes: u64,
    /// Failed allocations and resizes.
    pub failures: u64,
}

/// Counts what passes through to `B`, and logs it when asked to.
#[derive(Debug, Default)]
pub struct Tracking<B> {
    inner: B,
    stats: TrackingStats,
    log: Option<Vec<LoggedCall>>,
    name: String,
}

impl<B: Backend> Tracking<B> {
    /// Counts without logging.
    pub fn new(inner: B) -> Self {
        let name = format!("tracking({})", inner.name());
        Tracking {
            inner,
            stats: TrackingStats::default(),
            log: None,
            name,
        }
    }

    /// Counts and logs every call.
    pub fn with_log(inner: B) -> Self {
        Tracking {
            log: Some(Vec::new()),
            ..Self::new(inner)
        }
    }

    /// The counters.
    pub fn stats(&self) -> TrackingStats {
        self.stats
    }

    /// The log so far (empty when not logging).
    pub fn log(&self) -> &[LoggedCall] {
        self.log.as_deref().unwrap_or_default()
    }

    /// Takes the log, leaving it empty (logging goes on).
    pub fn take_log(&mut self) -> Vec<LoggedCall> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> B {
        self.inner
    }

    fn record(
        &mut self,
        op: CallKind,
        ptr: usize,
        old_size: usize,
        new_size: usize,
        result: usize,
    ) {
        if let Some(log) = &mut self.log {
            log.push(LoggedCall {
                op,
                ptr,
                old_size,
                new_size,
                result,
            });
        }
    }
}

fn addr(p: Option<NonNull<u8>>) -> usize {
    p.map_or(0, |p| p.as_ptr() as usize)
}

// SAFETY: every call is forwarded unchanged to `B`, which upholds the contract; the wrapper only
// counts.
unsafe impl<B: Backend> Backend for Tracking<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        let p = self.inner.allocate(size, tag);
        match p {
            Some(_) => {
                let s = &mut self.stats;
                s.allocations += 1;
                s.live += size;
                s.peak = s.peak.max(s.live);
            }
            None => self.stats.failures += 1,
        }
        self.record(CallKind::Allocate(tag), 0, 0, size, addr(p));
        p
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.deallocate(ptr, size) };
        self.stats.frees += 1;
        self.stats.live -= size;
        self.record(CallKind::Free, ptr.as_ptr() as usize, size, 0, 0);
    }

    unsafe fn resize(&mut self, ptr: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
        // SAFETY: forwarded caller contract.
        let q = unsafe { self.inner.resize(ptr, old, new) };
        match q {
            Some(_) => {
                let s = &mut self.stats;
                s.resizes += 1;
                s.live = s.live - old + new;
                s.peak = s.peak.max(s.live);
            }
            None => self.stats.failures += 1,
        }
        self.record(CallKind::Resize, ptr.as_ptr() as usize, old, new, addr(q));
        q
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
        self.stats.live = 0;
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
unsafe impl<B: ExactOwnership> ExactOwnership for Tracking<B> {}
