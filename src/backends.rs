//! The backends compiled in, by cargo feature, and lookup by name (`--backend NAME`).

pub use lmem_system::System;

#[cfg(feature = "bump")]
pub use lmem_bump::Bump;
#[cfg(feature = "jemalloc")]
pub use lmem_jemalloc::Jemalloc;
#[cfg(feature = "mimalloc")]
pub use lmem_mimalloc::Mimalloc;
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

use lmem_backend::Backend;

/// Every backend name this project knows, in the order reports list them.
pub const ALL_NAMES: [&str; 5] = ["system", "jemalloc", "mimalloc", "bump", "slab"];

/// Each backend name with whether this build has it.
const COMPILED: [(&str, bool); 5] = [
    ("system", true),
    ("jemalloc", cfg!(feature = "jemalloc")),
    ("mimalloc", cfg!(feature = "mimalloc")),
    ("bump", cfg!(feature = "bump")),
    ("slab", cfg!(feature = "slab")),
];

/// Whether backend `name` is compiled into this build.
pub fn is_compiled(name: &str) -> bool {
    COMPILED.iter().any(|&(n, on)| on && n == name)
}

/// The names of the backends compiled into this build.
pub fn names() -> Vec<&'static str> {
    ALL_NAMES.into_iter().filter(|n| is_compiled(n)).collect()
}

/// A new value of backend `name`, or `None` when it is unknown or not compiled in.
pub fn by_name(name: &str) -> Option<Box<dyn Backend>> {
    Some(match name {
        "system" => Box::new(System::new()),
        #[cfg(feature = "jemalloc")]
        "jemalloc" => Box::new(Jemalloc::new()),
        #[cfg(feature = "mimalloc")]
        "mimalloc" => Box::new(Mimalloc::new()),
        #[cfg(feature = "bump")]
        "bump" => Box::new(Bump::new()),
        #[cfg(feature = "slab")]
        "slab" => Box::new(Slab::new()),
        _ => return None,
    })
}

/// Something to do with a backend chosen by name, at its static type: each backend gets its own
/// monomorphised code, with no dynamic dispatch on the hot path. See [`with_backend`].
pub trait Visit {
    /// What the visit returns.
    type Output;
    /// Runs with a fresh value of the chosen backend.
    fn visit<B: Backend + 'static>(self, backend: B) -> Self::Output;
}

/// Runs `v` with a fresh value of backend `name` at its static type; `None` when `name` is
/// unknown or not compiled in.
pub fn with_backend<V: Visit>(name: &str, v: V) -> Option<V::Output> {
    Some(match name {
        "system" => v.visit(System::new()),
        #[cfg(feature = "jemalloc")]
        "jemalloc" => v.visit(Jemalloc::new()),
        #[cfg(feature = "mimalloc")]
        "mimalloc" => v.visit(Mimalloc::new()),
        #[cfg(feature = "bump")]
        "bump" => v.visit(Bump::new()),
        #[cfg(feature = "slab")]
        "slab" => v.visit(Slab::new()),
        _ => return None,
    })
}

/// A value of any backend, for layers that hold "some backend" chosen at run time (the hot
/// swap's members). A compiled-in backend is called through a `match`, into which its fast path
/// is inlined; any other backend (a wrapper, a backend of the host's own) through `Dyn`, one
/// indirect call. [`AnyBackend::by_name`] makes the compiled-in kinds; `From` takes boxes.
pub enum AnyBackend {
    /// libc malloc.
    System(System),
    /// jemalloc.
    #[cfg(feature = "jemalloc")]
    Jemalloc(Box<Jemalloc>),
    /// A mimalloc heap.
    #[cfg(feature = "mimalloc")]
    Mimalloc(Box<Mimalloc>),
    /// Pooled bump arenas.
    #[cfg(feature = "bump")]
    Bump(Box<Bump>),
    /// The size-class slab.
    #[cfg(feature = "slab")]
    Slab(Box<Slab>),
    /// Any other backend, behind an indirect call.
    Dyn(Box<dyn Backend>),
}

impl AnyBackend {
    /// A new value of backend `name` at its own kind, or `None` when it is unknown or not
    /// compiled in.
    pub fn by_name(name: &str) -> Option<AnyBackend> {
        Some(match name {
            "system" => AnyBackend::System(System::new()),
            #[cfg(feature = "jemalloc")]
            "jemalloc" => AnyBackend::Jemalloc(Box::new(Jemalloc::new())),
            #[cfg(feature = "mimalloc")]
            "mimalloc" => AnyBackend::Mimalloc(Box::new(Mimalloc::new())),
            #[cfg(feature = "bump")]
            "bump" => AnyBackend::Bump(Box::new(Bump::new())),
            #[cfg(feature = "slab")]
            "slab" => AnyBackend::Slab(Box::new(Slab::new())),
            _ => return None,
        })
    }
}

impl From<Box<dyn Backend>> for AnyBackend {
    fn from(b: Box<dyn Backend>) -> Self {
        AnyBackend::Dyn(b)
    }
}

impl<B: Backend + 'static> From<Box<B>> for AnyBackend {
    fn from(b: Box<B>) -> Self {
        AnyBackend::Dyn(b)
    }
}

impl std::fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AnyBackend").field(&self.name()).finish()
    }
}

/// Runs `$e` with `$b` bound to the backend inside `$self`, whatever its kind.
macro_rules! on_any {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::System($b) => $e,
            #[cfg(feature = "jemalloc")]
            AnyBackend::Jemalloc($b) => $e,
            #[cfg(feature = "mimalloc")]
            AnyBackend::Mimalloc($b) => $e,
            #[cfg(feature = "bump")]
            AnyBackend::Bump($b) => $e,
            #[cfg(feature = "slab")]
            AnyBackend::Slab($b) => $e,
            AnyBackend::Dyn($b) => $e,
        }
    };
}

// SAFETY: a value's kind never changes (no method replaces it), so a block is always freed by
// the backend that made it.
lmem_backend::forward_backend_enum!(unsafe impl Backend for AnyBackend => on_any);
