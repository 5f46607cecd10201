//! The wrapped chain of `--check`, `--trace` and `--fail-at`, by value: the recorder over the
//! checker over fault injection over the swap, each layer present only when asked for (an
//! [`Either`] of the wrapper and what it wraps), and the paths to the layers the host talks to.

use lmem::trace::Recorder;
use lmem::{Checker, FaultInjection, Swap};
use std::fs::File;

/// One of two backends, chosen when the chain is built and fixed from then on.
pub enum Either<L, R> {
    /// The wrapper.
    Left(L),
    /// What it would wrap.
    Right(R),
}

/// Forwards each call to the variant at hand.
macro_rules! on_either {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Either::Left($b) => $e,
            Either::Right($b) => $e,
        }
    };
}

// SAFETY: the chain is built once and never changes variant, so every block goes back to the
// layer that made it.
lmem::forward_backend_enum!(unsafe impl Backend for Either<Recorder<Checked, File>, Checked> => on_either);
// SAFETY: as above.
lmem::forward_backend_enum!(unsafe impl Backend for Either<Checker<Faulty>, Faulty> => on_either);
// SAFETY: as above.
lmem::forward_backend_enum!(unsafe impl Backend for Either<FaultInjection<Swap>, Swap> => on_either);

/// Fault injection over the swap, or the swap.
pub type Faulty = Either<FaultInjection<Swap>, Swap>;
/// The checker over that, or that.
pub type Checked = Either<Checker<Faulty>, Faulty>;
/// The recorder over that, or that: the whole wrapped chain.
pub type Traced = Either<Recorder<Checked, File>, Checked>;

impl Traced {
    pub(super) fn recorder(&mut self) -> Option<&mut Recorder<Checked, File>> {
        match self {
            Either::Left(r) => Some(r),
            Either::Right(_) => None,
        }
    }
    fn checked(&self) -> &Checked {
        match self {
            Either::Left(r) => r.inner(),
            Either::Right(c) => c,
        }
    }
    fn checked_mut(&mut self) -> &mut Checked {
        match self {
            Either::Left(r) => r.inner_mut(),
            Either::Right(c) => c,
        }
    }
    pub(super) fn checker(&self) -> Option<&Checker<Faulty>> {
        match self.checked() {
            Either::Left(c) => Some(c),
            Either::Right(_) => None,
        }
    }
    pub(super) fn swap(&self) -> &Swap {
        let faulty = match self.checked() {
            Either::Left(c) => c.inner(),
            Either::Right(f) => f,
        };
        match faulty {
            Either::Left(f) => f.inner(),
            Either::Right(s) => s,
        }
    }
    pub(super) fn swap_mut(&mut self) -> &mut Swap {
        let faulty = match self.checked_mut() {
            Either::Left(c) => c.inner_mut(),
            Either::Right(f) => f,
        };
        match faulty {
            Either::Left(f) => f.inner_mut(),
            Either::Right(s) => s,
        }
    }
}
