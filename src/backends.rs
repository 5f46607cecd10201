//! The backends compiled in, by cargo feature: one table, from which every name, every lookup by
//! name and the one dispatch form are built.
//!
//! The table (the `backend_table!` invocation below) lists each backend once: its name (what
//! `--backend`, `LMEM_BACKEND` and reports say), its cargo feature, its type, how to make one, and
//! whether it declares [`ExactOwnership`]. From it come
//!
//! - [`ALL_NAMES`], [`names`], [`is_compiled`];
//! - [`with_backend`]: runs a [`Visit`] with a fresh backend chosen by name, at its static type —
//!   the dispatch form every user builds its path from (the allocation function Lua holds is
//!   then monomorphic: no match, no indirect call);
//! - [`AnyBackend`]: a backend value of any kind, for the hot-swap chain, which calls a
//!   compiled-in backend through a `match` (its fast path inlined) and any other through one
//!   indirect call; [`AnyBackend::visit`] turns it back into its static type through the same
//!   table;
//! - [`ExactBackend`]: a backend that is known, by its type, to tell its own blocks.

pub use lmem_system::System;

#[cfg(feature = "bump")]
pub use lmem_bump::Bump;
#[cfg(feature = "jemalloc")]
pub use lmem_jemalloc::Jemalloc;
#[cfg(feature = "mimalloc")]
pub use lmem_mimalloc::{Mimalloc, SharedMimalloc};
#[cfg(feature = "slab")]
pub use lmem_slab::Slab;

// The backend crates themselves, for their own knobs (pool bounds and statistics).
#[cfg(feature = "bump")]
pub use lmem_bump as bump;
#[cfg(feature = "jemalloc")]
pub use lmem_jemalloc as jemalloc;
#[cfg(feature = "mimalloc")]
pub use lmem_mimalloc as mimalloc;
#[cfg(feature = "slab")]
pub use lmem_slab as slab;

use crate::wrap::Registry;
use lmem_backend::{Backend, BackendStats, ExactOwnership, Fast, Ownership, ResetUnsupported, Tag};
use std::fmt;
use std::ptr::NonNull;

/// Something to do with a backend chosen at run time, at its static type: each backend gets its
/// own monomorphised code, with no dynamic dispatch on the hot path. See [`with_backend`] and
/// [`AnyBackend::visit`].
pub trait Visit {
    /// What the visit returns.
    type Output;
    /// Runs with the chosen backend. `B` can be turned back into an [`AnyBackend`] of the same
    /// kind ([`IntoAny`]), which is how a state moves its backend into a swap chain.
    fn visit<B: IntoAny>(self, backend: B) -> Self::Output;
}

mod sealed {
    pub trait Sealed {}
}

/// A backend that [`Visit::visit`] may be given, and that goes back into an [`AnyBackend`] of its
/// own kind. Implemented by the table's backends, `Box<dyn Backend>` and `Registry<AnyBackend>`
/// only (sealed): [`AnyBackend`]'s declared ownership must come from the table, never from an
/// outside impl.
pub trait IntoAny: Backend + sealed::Sealed + 'static {
    /// The same backend, with every live block still its own, as an [`AnyBackend`].
    fn into_any(self) -> AnyBackend;
}

/// Builds everything the module docs list from one list of backends.
macro_rules! backend_table {
    ($(
        $(#[cfg($cfg:meta)])?
        $variant:ident : $ty:ty = $name:literal, $new:expr, exact: $exact:literal;
    )*) => {
        /// Every backend name this project knows, in the order reports list them.
        pub const ALL_NAMES: [&str; [$($name),*].len()] = [$($name),*];

        /// Whether backend `name` is compiled into this build.
        pub fn is_compiled(name: &str) -> bool {
            match name {
                $($(#[cfg($cfg)])? $name => true,)*
                _ => false,
            }
        }

        /// Runs `v` with a fresh value of backend `name` at its static type; `None` when `name`
        /// is unknown or not compiled in.
        pub fn with_backend<V: Visit>(name: &str, v: V) -> Option<V::Output> {
            Some(match name {
                $($(#[cfg($cfg)])? $name => v.visit::<$ty>($new),)*
                _ => return None,
            })
        }

        /// Whether backend `name` declares [`ExactOwnership`] (`None`: unknown or not compiled).
        pub fn declares_exact_ownership(name: &str) -> Option<bool> {
            match name {
                $($(#[cfg($cfg)])? $name => Some($exact),)*
                _ => None,
            }
        }

        enum Kind {
            $($(#[cfg($cfg)])? $variant(Box<$ty>),)*
            /// A table backend that cannot tell its blocks, made to by a registry.
            Registered(Box<Registry<AnyBackend>>),
            /// Any other backend, behind an indirect call; `exact` only when it was made from a
            /// type that declares [`ExactOwnership`].
            Dyn { backend: Box<dyn Backend>, exact: bool },
        }

        impl AnyBackend {
            /// The name of the kind, as the table says it (`dyn` for another backend).
            fn kind_name(&self) -> &'static str {
                match &self.0 {
                    $($(#[cfg($cfg)])? Kind::$variant(_) => $name,)*
                    Kind::Registered(r) => r.inner().kind_name(),
                    Kind::Dyn { .. } => "dyn",
                }
            }

            /// Whether the value tells its own blocks, as its type declares.
            pub fn exact_ownership(&self) -> bool {
                match &self.0 {
                    $($(#[cfg($cfg)])? Kind::$variant(_) => $exact,)*
                    Kind::Registered(_) => true,
                    Kind::Dyn { exact, .. } => *exact,
                }
            }

            /// Runs `v` with the backend at its static type (a table backend as itself, a
            /// registry as `Registry<AnyBackend>`, another backend as `Box<dyn Backend>`).
            pub fn visit<V: Visit>(self, v: V) -> V::Output {
                match self.0 {
                    $($(#[cfg($cfg)])? Kind::$variant(b) => v.visit::<$ty>(*b),)*
                    Kind::Registered(r) => v.visit::<Registry<AnyBackend>>(*r),
                    Kind::Dyn { backend, .. } => v.visit::<Box<dyn Backend>>(backend),
                }
            }

            /// A table backend that was wrapped in a [`Registry`] to be swapped to, unwrapped
            /// again: once it holds every live block of a state, nothing needs telling apart.
            pub fn unregistered(self) -> AnyBackend {
                match self.0 {
                    Kind::Registered(r) => r.into_inner(),
                    _ => self,
                }
            }
        }

        $(
            $(#[cfg($cfg)])?
            impl sealed::Sealed for $ty {}
            $(#[cfg($cfg)])?
            impl IntoAny for $ty {
                fn into_any(self) -> AnyBackend {
                    AnyBackend(Kind::$variant(Box::new(self)))
                }
            }
            $(#[cfg($cfg)])?
            impl From<$ty> for AnyBackend {
                fn from(b: $ty) -> AnyBackend {
                    b.into_any()
                }
            }
        )*

        /// Runs `$e` with `$b` bound to the backend inside `$self`, whatever its kind.
        macro_rules! on_kind {
            ($self:expr, $b:ident => $e:expr) => {
                match $self {
                    $($(#[cfg($cfg)])? Kind::$variant($b) => $e,)*
                    Kind::Registered($b) => $e,
                    Kind::Dyn { backend: $b, .. } => $e,
                }
            };
        }
    };
}

backend_table! {
    System: System = "system", System::new(), exact: false;
    #[cfg(feature = "jemalloc")]
    Jemalloc: Jemalloc = "jemalloc", Jemalloc::new(), exact: false;
    #[cfg(feature = "mimalloc")]
    Mimalloc: Mimalloc = "mimalloc", Mimalloc::new(), exact: true;
    #[cfg(feature = "mimalloc")]
    MimallocShared: SharedMimalloc = "mimalloc-shared", SharedMimalloc::new(), exact: true;
    #[cfg(feature = "bump")]
    Bump: Bump = "bump", Bump::new(), exact: true;
    #[cfg(feature = "slab")]
    Slab: Slab = "slab", Slab::new(), exact: true;
}

// The table's `exact: true` rows must be types that declare the capability: this fails to
// compile if one does not.
const _: () = {
    #[allow(dead_code)]
    fn declared<B: ExactOwnership>() {}
    #[allow(dead_code)]
    fn check() {
        #[cfg(feature = "mimalloc")]
        declared::<Mimalloc>();
        #[cfg(feature = "mimalloc")]
        declared::<SharedMimalloc>();
        #[cfg(feature = "bump")]
        declared::<Bump>();
        #[cfg(feature = "slab")]
        declared::<Slab>();
    }
};

/// The names of the backends compiled into this build, in the table's order.
pub fn names() -> Vec<&'static str> {
    ALL_NAMES.into_iter().filter(|n| is_compiled(n)).collect()
}

/// A value of any backend, for layers that hold "some backend" chosen at run time (the hot
/// swap's members). A compiled-in backend is called through a `match`, into which its fast path
/// is inlined; any other backend (a wrapper, a backend of the host's own) through one indirect
/// call. Whether it tells its own blocks ([`AnyBackend::exact_ownership`]) comes from its type:
/// the table for compiled-in backends, [`AnyBackend::exact`] for others.
pub struct AnyBackend(Kind);

impl AnyBackend {
    /// A new value of backend `name` at its own kind, or `None` when it is unknown or not
    /// compiled in.
    pub fn by_name(name: &str) -> Option<AnyBackend> {
        with_backend(name, IntoAnyVisit)
    }

    /// Any backend, behind an indirect call; it counts as one that cannot tell its blocks.
    pub fn new<B: Backend + 'static>(backend: B) -> AnyBackend {
        AnyBackend(Kind::Dyn {
            backend: Box::new(backend),
            exact: false,
        })
    }

    /// A backend that declares [`ExactOwnership`], behind an indirect call.
    pub fn exact<B: ExactOwnership + 'static>(backend: B) -> AnyBackend {
        AnyBackend(Kind::Dyn {
            backend: Box::new(backend),
            exact: true,
        })
    }
}

/// [`Visit`] that gives the backend back as an [`AnyBackend`].
struct IntoAnyVisit;

impl Visit for IntoAnyVisit {
    type Output = AnyBackend;
    fn visit<B: IntoAny>(self, backend: B) -> AnyBackend {
        backend.into_any()
    }
}

impl sealed::Sealed for Box<dyn Backend> {}
impl IntoAny for Box<dyn Backend> {
    /// As a backend that cannot tell its blocks (the box forgets whether its type declared it).
    fn into_any(self) -> AnyBackend {
        AnyBackend(Kind::Dyn {
            backend: self,
            exact: false,
        })
    }
}

impl sealed::Sealed for Registry<AnyBackend> {}
impl IntoAny for Registry<AnyBackend> {
    fn into_any(self) -> AnyBackend {
        AnyBackend(Kind::Registered(Box::new(self)))
    }
}

impl From<Box<dyn Backend>> for AnyBackend {
    fn from(b: Box<dyn Backend>) -> Self {
        b.into_any()
    }
}

impl fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyBackend")
            .field(&self.name())
            .field(&self.kind_name())
            .finish()
    }
}

// SAFETY: a value's kind never changes (no method replaces it), so a block is always freed by
// the backend that made it; every method forwards unchanged to the backend inside.
unsafe impl Backend for AnyBackend {
    fn name(&self) -> &str {
        on_kind!(&self.0, b => b.name())
    }
    #[inline]
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        on_kind!(&mut self.0, b => b.allocate(size, tag))
    }
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded; the caller's contract is the same.
        on_kind!(&mut self.0, b => unsafe { b.deallocate(ptr, size) })
    }
    #[inline(always)]
    fn allocate_fast(&mut self, size: usize, tag: Tag) -> Fast<Option<NonNull<u8>>> {
        on_kind!(&mut self.0, b => b.allocate_fast(size, tag))
    }
    #[inline(always)]
    unsafe fn deallocate_fast(&mut self, ptr: NonNull<u8>, size: usize) -> Fast<()> {
        // SAFETY: forwarded; the caller's contract is the same.
        on_kind!(&mut self.0, b => unsafe { b.deallocate_fast(ptr, size) })
    }
    #[inline]
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded; the caller's contract is the same.
        on_kind!(&mut self.0, b => unsafe { b.resize(ptr, old_size, new_size) })
    }
    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        on_kind!(&self.0, b => b.owns(ptr))
    }
    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: forwarded; the caller's contract is the same.
        on_kind!(&self.0, b => unsafe { b.usable_size(ptr, size) })
    }
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        // SAFETY: forwarded; the caller's contract is the same.
        on_kind!(&mut self.0, b => unsafe { b.reset() })
    }
    fn stats(&self) -> BackendStats {
        on_kind!(&self.0, b => b.stats())
    }
    fn trim(&mut self) {
        on_kind!(&mut self.0, b => b.trim())
    }
}

/// A backend that tells its own blocks, by its type: what a hot swap may add to a chain. Made
/// from a type that declares [`ExactOwnership`], or by name (a compiled-in backend that cannot
/// tell its blocks — `system`, `jemalloc` — comes wrapped in a [`Registry`], which can).
pub struct ExactBackend(AnyBackend);

impl ExactBackend {
    /// A backend that declares [`ExactOwnership`], behind an indirect call.
    pub fn new<B: ExactOwnership + 'static>(backend: B) -> ExactBackend {
        ExactBackend(AnyBackend::exact(backend))
    }

    /// Backend `name`, made to tell its blocks; `None` when unknown or not compiled in.
    pub fn by_name(name: &str) -> Option<ExactBackend> {
        let any = AnyBackend::by_name(name)?;
        Some(match ExactBackend::declared(any) {
            Ok(e) => e,
            Err(blind) => ExactBackend(Registry::new(blind).into_any()),
        })
    }

    /// `any` when its type declares exact ownership; otherwise `any` back.
    pub fn declared(any: AnyBackend) -> Result<ExactBackend, AnyBackend> {
        if any.exact_ownership() {
            Ok(ExactBackend(any))
        } else {
            Err(any)
        }
    }

    /// The backend.
    pub fn as_any(&self) -> &AnyBackend {
        &self.0
    }

    /// The backend, forgetting that it is exact.
    pub fn into_any(self) -> AnyBackend {
        self.0
    }
}

impl fmt::Debug for ExactBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ExactBackend").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_itself() {
        for name in ALL_NAMES {
            let compiled = is_compiled(name);
            assert_eq!(AnyBackend::by_name(name).is_some(), compiled, "{name}");
            assert_eq!(declares_exact_ownership(name).is_some(), compiled, "{name}");
            if let Some(b) = AnyBackend::by_name(name) {
                assert_eq!(b.name(), name);
                assert_eq!(b.kind_name(), name);
                assert_eq!(Some(b.exact_ownership()), declares_exact_ownership(name));
                let e = ExactBackend::by_name(name).expect("compiled");
                assert!(e.as_any().exact_ownership());
                assert_eq!(e.as_any().name(), name);
            }
        }
        assert!(is_compiled("system"));
        assert!(!is_compiled("no-such"));
        assert!(AnyBackend::by_name("no-such").is_none());
    }

    #[test]
    fn a_registry_wrapped_backend_unwraps_to_its_own_kind() {
        let e = ExactBackend::by_name("system").expect("system");
        let any = e.into_any();
        assert!(any.exact_ownership());
        let plain = any.unregistered();
        assert!(!plain.exact_ownership());
        assert_eq!(plain.kind_name(), "system");
    }
}
