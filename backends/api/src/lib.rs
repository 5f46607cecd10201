#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::fmt;
use std::ptr::NonNull;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod rng;

/// Minimum alignment of every block: what glibc's malloc gives on x86-64, and what mlua and Lua's
/// `LUAI_MAXALIGN` assume.
pub const ALIGN: usize = 16;

/// Largest size any backend may hand out: Rust's `Layout` limit for [`ALIGN`]. Requests above it
/// must fail with `None`.
pub const MAX_SIZE: usize = isize::MAX as usize - (ALIGN - 1);

/// The Lua type of the object a new block is for.
///
/// Lua 5.4 and 5.5 pass it as `osize` when `ptr` is NULL (`LUA_TSTRING` 4 … `LUA_TPROTO` 10); Lua
/// 5.1 passes 0, which maps to [`Tag::Other`], as does every other value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tag {
    /// `LUA_TSTRING` (4).
    String = 0,
    /// `LUA_TTABLE` (5), and a table's array and hash parts.
    Table = 1,
    /// `LUA_TFUNCTION` (6): closures.
    Function = 2,
    /// `LUA_TUSERDATA` (7).
    Userdata = 3,
    /// `LUA_TTHREAD` (8): coroutines and the main state.
    Thread = 4,
    /// `LUA_TUPVAL` (9).
    Upvalue = 5,
    /// `LUA_TPROTO` (10): function prototypes.
    Proto = 6,
    /// Anything else: vectors, buffers, stacks, Lua 5.1's blocks, and host blocks.
    Other = 7,
}

impl Tag {
    /// All tags, in index order.
    pub const ALL: [Tag; 8] = [
        Tag::String,
        Tag::Table,
        Tag::Function,
        Tag::Userdata,
        Tag::Thread,
        Tag::Upvalue,
        Tag::Proto,
        Tag::Other,
    ];

    /// Number of tags.
    pub const COUNT: usize = 8;

    /// The tag Lua means by `osize` when it allocates a new block (`ptr == NULL`).
    #[inline]
    pub const fn from_lua(osize: usize) -> Tag {
        match osize {
            4 => Tag::String,
            5 => Tag::Table,
            6 => Tag::Function,
            7 => Tag::Userdata,
            8 => Tag::Thread,
            9 => Tag::Upvalue,
            10 => Tag::Proto,
            _ => Tag::Other,
        }
    }

    /// The Lua type number for this tag (`LUA_TSTRING` …), 0 for [`Tag::Other`].
    #[inline]
    pub const fn to_lua(self) -> usize {
        match self {
            Tag::Other => 0,
            t => t as usize + 4,
        }
    }

    /// Dense index in `0..Tag::COUNT`, for per-tag tables.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as Lua's `type()` says it (`other` for the rest).
    pub const fn name(self) -> &'static str {
        match self {
            Tag::String => "string",
            Tag::Table => "table",
            Tag::Function => "function",
            Tag::Userdata => "userdata",
            Tag::Thread => "thread",
            Tag::Upvalue => "upvalue",
            Tag::Proto => "proto",
            Tag::Other => "other",
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend's answer to "is this block yours?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The pointer is a block of this backend.
    Owned,
    /// The pointer is certainly not a block of this backend.
    Foreign,
    /// The backend cannot tell (plain `malloc` cannot).
    Unknown,
}

/// What a backend can say about the memory it holds. Every field is optional: a backend fills in
/// what it knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Bytes in live blocks as the backend counts them (after its own rounding).
    pub allocated: Option<usize>,
    /// Bytes the backend holds from the system or a pool (pages, arenas, chunks), live or not.
    pub reserved: Option<usize>,
    /// Bytes held but not usable by the caller: `reserved - requested live bytes`, including
    /// rounding, fragmentation and frees the backend cannot reuse.
    pub wasted: Option<usize>,
    /// Live blocks.
    pub blocks: Option<usize>,
}

/// What an inlinable fast path did ([`Backend::allocate_fast`], [`Backend::deallocate_fast`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Fast<T> {
    /// The call is done, with this answer: exactly what the full method would have answered.
    Done(T),
    /// The fast path could not serve it and did nothing: call the full method.
    Slow,
}

/// Why [`Backend::reset`] did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetUnsupported;

impl fmt::Display for ResetUnsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this backend cannot release all of its blocks at once")
    }
}

impl std::error::Error for ResetUnsupported {}

/// An allocator backend: the memory under one Lua state (or one heap of the core layer).
///
/// See the crate docs for the terms *block*, *size*, *fits* and *owned*, and for the contract
/// clause by clause. Methods take `&mut self`: one backend value serves one single-threaded VM
/// state; anything shared between states (page pools, arena pools) lives behind the backend's
/// own synchronisation.
///
/// # Safety
///
/// Implementors must uphold, for every call the caller makes according to the methods' own
/// preconditions:
///
/// - `allocate(size, _)` and `resize(_, _, new_size)` return either `None` or a pointer to a block
///   that fits `size`/`new_size` (aligned to [`ALIGN`], at least that many bytes, readable and
///   writable) and overlaps no other live block of this backend, nor any memory the caller owns;
/// - requests above [`MAX_SIZE`] return `None`;
/// - `resize` keeps the first `min(old_size, new_size)` bytes; on `None` the old block is
///   untouched and remains a live block of this backend;
/// - `deallocate` always succeeds; nothing panics across these methods on out-of-memory, and
///   nothing aborts the process on out-of-memory;
/// - `owns` answers [`Ownership::Owned`] or [`Ownership::Unknown`] for each live block of this
///   backend, and [`Ownership::Foreign`] or [`Ownership::Unknown`] for any address outside the
///   memory this backend holds (so it is never wrong about a live block of another backend);
/// - blocks stay valid when the backend value is moved (blocks never point into `self`);
/// - `trim` leaves every live block live and unchanged;
/// - `allocate_fast` and `deallocate_fast` answer [`Fast::Done`] with exactly what `allocate` and
///   `deallocate` would have done, or [`Fast::Slow`] having changed nothing.
///
/// The core layer, the `lua_Alloc` function and hot swap rely on these for memory safety. A
/// backend that can always tell its own blocks from any other address says so by implementing
/// [`ExactOwnership`], whose own clause is added to these.
pub unsafe trait Backend {
    /// Short name for reports (`system`, `slab`, `tracking(system)`, …).
    fn name(&self) -> &str;

    /// Allocates a block of `size` bytes for an object of type `tag`.
    ///
    /// The core layer never asks for 0 bytes; an implementation may answer `None` for 0. Returns
    /// `None` when the memory cannot be had.
    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>>;

    /// Gives a block back. Never fails.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this backend and `size` is its size (the one it was last
    /// allocated or resized to). The block is not used afterwards.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize);

    /// The part of [`Backend::allocate`] that can be inlined into the caller: a backend whose
    /// common case needs no call (a free list, a bump pointer) answers [`Fast::Done`] there and
    /// [`Fast::Slow`] otherwise, having done nothing; the caller then calls `allocate`. This is
    /// what lets the allocation function Lua holds be call-free on the common path, and tail-call
    /// one slow path otherwise. The default is the whole of `allocate`.
    #[inline(always)]
    fn allocate_fast(&mut self, size: usize, tag: Tag) -> Fast<Option<NonNull<u8>>> {
        Fast::Done(self.allocate(size, tag))
    }

    /// The part of [`Backend::deallocate`] that can be inlined into the caller, as
    /// [`Backend::allocate_fast`] is for `allocate`. The default is the whole of `deallocate`.
    ///
    /// # Safety
    ///
    /// As [`Backend::deallocate`]; after [`Fast::Slow`] the block is still live and the caller
    /// frees it with `deallocate`.
    #[inline(always)]
    unsafe fn deallocate_fast(&mut self, ptr: NonNull<u8>, size: usize) -> Fast<()> {
        // SAFETY: the caller's contract is `deallocate`'s.
        unsafe { self.deallocate(ptr, size) };
        Fast::Done(())
    }

    /// Changes a block's size from `old_size` to `new_size` (both > 0), keeping the first
    /// `min(old_size, new_size)` bytes. Returns the block's new address, which may equal `ptr`.
    ///
    /// On `None` the old block is untouched and still live. The default allocates a new block,
    /// copies and frees the old one; backends override it to grow or shrink in place.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this backend of size `old_size`; `new_size > 0`. On success the
    /// old pointer is not used afterwards (unless it equals the returned one).
    unsafe fn resize(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's contract for `resize` is ours to pass on.
        unsafe { resize_by_copy(self, ptr, old_size, new_size, Tag::Other) }
    }

    /// Whether `ptr` is a block of this backend; the default is [`Ownership::Unknown`]. Only
    /// answers for live blocks (of this or another backend) are specified: a backend that answers
    /// by address range may say `Owned` for a freed slot of its own memory. Hot swap routes a
    /// free by this answer, and only asks backends that declare [`ExactOwnership`].
    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        let _ = ptr;
        Ownership::Unknown
    }

    /// Bytes the caller may use in a block of size `size`. The default is `size`.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this backend of size `size`.
    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        let _ = ptr;
        size
    }

    /// Releases every block at once (an arena reset, a heap destroy).
    ///
    /// # Safety
    ///
    /// No block of this backend is used after the call.
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        Err(ResetUnsupported)
    }

    /// What the backend knows about the memory it holds.
    fn stats(&self) -> BackendStats {
        BackendStats::default()
    }

    /// Gives memory the backend holds but does not use (cached blocks, empty pages, purgeable
    /// arenas) back to its pool or to the operating system, as far as it can. Live blocks are
    /// not touched. The default does nothing. A host calls it after a full collection, when a
    /// state's heap has shrunk and the memory should be had back.
    fn trim(&mut self) {}
}

/// A backend that always tells its own blocks: its [`Backend::owns`] never answers
/// [`Ownership::Unknown`].
///
/// This is a declared capability, not a probe: hot swap keeps a chain of backends in which every
/// member but one is `ExactOwnership`, and routes each free to the member whose `owns` claims
/// the block, the one member that cannot tell taking the rest. That is decided by types when the
/// chain is built, never by asking `owns` about some address.
///
/// # Safety
///
/// On top of [`Backend`]'s clauses, for as long as the value lives: `owns(p)` answers
/// [`Ownership::Owned`] for every live block `p` of this backend and [`Ownership::Foreign`] for
/// every address outside the memory this backend holds (another backend's live blocks, the
/// stack, any other allocation); it never answers [`Ownership::Unknown`], reads no memory
/// outside what this backend holds (so any address may be asked about), writes none, and never
/// panics. Hot swap relies on it for memory safety: a wrong answer
/// would hand a block to a backend that did not make it.
pub unsafe trait ExactOwnership: Backend {}

// SAFETY: a box forwards `owns` to the backend it holds, which answers exactly.
unsafe impl<B: ExactOwnership + ?Sized> ExactOwnership for Box<B> {}
// SAFETY: as for the box: `owns` is forwarded unchanged.
unsafe impl<B: ExactOwnership + ?Sized> ExactOwnership for &mut B {}

/// The default [`Backend::resize`]: allocate a new block, copy, free the old one. A shrink that
/// cannot allocate keeps the old block, which is large enough (never fail a shrink).
///
/// # Safety
///
/// As [`Backend::resize`]: `ptr` is a live block of `backend` of size `old_size`; `new_size > 0`.
pub unsafe fn resize_by_copy<B: Backend + ?Sized>(
    backend: &mut B,
    ptr: NonNull<u8>,
    old_size: usize,
    new_size: usize,
    tag: Tag,
) -> Option<NonNull<u8>> {
    let Some(new) = backend.allocate(new_size, tag) else {
        // A block of `old_size >= new_size` already fits a shrink: keep it rather than fail.
        return (new_size <= old_size).then_some(ptr);
    };
    // SAFETY: `ptr` is live with `old_size` readable bytes (caller); `new` is a fresh block of
    // `new_size` bytes that overlaps no live block (trait contract), so the ranges are disjoint.
    unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), old_size.min(new_size)) };
    // SAFETY: `ptr` is a live block of `backend` of size `old_size` (caller), not used again.
    unsafe { backend.deallocate(ptr, old_size) };
    Some(new)
}

/// Implements [`Backend`] for a pointer type to a backend by forwarding every method.
macro_rules! forward_backend {
    ($($ptr:ty),*) => {$(
        // SAFETY: every method forwards to `B`, which upholds the contract.
        unsafe impl<B: Backend + ?Sized> Backend for $ptr {
            fn name(&self) -> &str {
                (**self).name()
            }
            #[inline]
            fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
                (**self).allocate(size, tag)
            }
            #[inline]
            unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
                // SAFETY: forwarded; the caller's contract is the same.
                unsafe { (**self).deallocate(ptr, size) }
            }
            #[inline(always)]
            fn allocate_fast(&mut self, size: usize, tag: Tag) -> Fast<Option<NonNull<u8>>> {
                (**self).allocate_fast(size, tag)
            }
            #[inline(always)]
            unsafe fn deallocate_fast(&mut self, ptr: NonNull<u8>, size: usize) -> Fast<()> {
                // SAFETY: forwarded; the caller's contract is the same.
                unsafe { (**self).deallocate_fast(ptr, size) }
            }
            #[inline]
            unsafe fn resize(
                &mut self,
                ptr: NonNull<u8>,
                old_size: usize,
                new_size: usize,
            ) -> Option<NonNull<u8>> {
                // SAFETY: forwarded; the caller's contract is the same.
                unsafe { (**self).resize(ptr, old_size, new_size) }
            }
            fn owns(&self, ptr: NonNull<u8>) -> Ownership {
                (**self).owns(ptr)
            }
            unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
                // SAFETY: forwarded; the caller's contract is the same.
                unsafe { (**self).usable_size(ptr, size) }
            }
            unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
                // SAFETY: forwarded; the caller's contract is the same.
                unsafe { (**self).reset() }
            }
            fn stats(&self) -> BackendStats {
                (**self).stats()
            }
            fn trim(&mut self) {
                (**self).trim()
            }
        }
    )*};
}

forward_backend!(Box<B>, &mut B);

/// Implements [`Backend`] for an enum whose every variant holds a backend, forwarding each
/// method to the backend of the variant at hand (static dispatch: the variant's fast path can
/// be inlined into the `match`).
///
/// `$on` names a `macro_rules!` macro of the caller's: `$on!(self, b => expr)` matches `self`
/// and evaluates `expr` with `b` bound to the variant's backend, so its arms may carry
/// `#[cfg]`. The invocation spells `unsafe impl` because the impl is sound only if a value's
/// variant never changes while it has live blocks (each block must reach the backend that made
/// it); write the `// SAFETY:` comment that says so above it.
///
/// ```
/// use lmem_backend::{Backend, Tag};
/// # use lmem_backend::{BackendStats, Ownership};
/// # use std::ptr::NonNull;
/// # struct Null;
/// # unsafe impl Backend for Null {
/// #     fn name(&self) -> &str { "null" }
/// #     fn allocate(&mut self, _: usize, _: Tag) -> Option<NonNull<u8>> { None }
/// #     unsafe fn deallocate(&mut self, _: NonNull<u8>, _: usize) {}
/// # }
/// enum Either { A(Null), B(Box<dyn Backend>) }
/// macro_rules! on_either {
///     ($self:expr, $b:ident => $e:expr) => {
///         match $self { Either::A($b) => $e, Either::B($b) => $e }
///     };
/// }
/// // SAFETY: no method changes the variant, so blocks go back to the backend that made them.
/// lmem_backend::forward_backend_enum!(unsafe impl Backend for Either => on_either);
/// assert_eq!(Either::A(Null).name(), "null");
/// ```
#[macro_export]
macro_rules! forward_backend_enum {
    (unsafe impl Backend for $ty:ty => $on:ident) => {
        // SAFETY: every method forwards unchanged to the variant's backend, which upholds the
        // contract; the caller vouches that a value's variant never changes under live blocks.
        unsafe impl $crate::Backend for $ty {
            fn name(&self) -> &str {
                $on!(self, b => b.name())
            }
            #[inline]
            fn allocate(
                &mut self,
                size: usize,
                tag: $crate::Tag,
            ) -> ::core::option::Option<::core::ptr::NonNull<u8>> {
                $on!(self, b => b.allocate(size, tag))
            }
            #[inline]
            unsafe fn deallocate(&mut self, ptr: ::core::ptr::NonNull<u8>, size: usize) {
                // SAFETY: forwarded; the caller's contract is the same.
                $on!(self, b => unsafe { b.deallocate(ptr, size) })
            }
            #[inline(always)]
            fn allocate_fast(
                &mut self,
                size: usize,
                tag: $crate::Tag,
            ) -> $crate::Fast<::core::option::Option<::core::ptr::NonNull<u8>>> {
                $on!(self, b => b.allocate_fast(size, tag))
            }
            #[inline(always)]
            unsafe fn deallocate_fast(
                &mut self,
                ptr: ::core::ptr::NonNull<u8>,
                size: usize,
            ) -> $crate::Fast<()> {
                // SAFETY: forwarded; the caller's contract is the same.
                $on!(self, b => unsafe { b.deallocate_fast(ptr, size) })
            }
            #[inline]
            unsafe fn resize(
                &mut self,
                ptr: ::core::ptr::NonNull<u8>,
                old_size: usize,
                new_size: usize,
            ) -> ::core::option::Option<::core::ptr::NonNull<u8>> {
                // SAFETY: forwarded; the caller's contract is the same.
                $on!(self, b => unsafe { b.resize(ptr, old_size, new_size) })
            }
            fn owns(&self, ptr: ::core::ptr::NonNull<u8>) -> $crate::Ownership {
                $on!(self, b => b.owns(ptr))
            }
            unsafe fn usable_size(&self, ptr: ::core::ptr::NonNull<u8>, size: usize) -> usize {
                // SAFETY: forwarded; the caller's contract is the same.
                $on!(self, b => unsafe { b.usable_size(ptr, size) })
            }
            unsafe fn reset(&mut self) -> ::core::result::Result<(), $crate::ResetUnsupported> {
                // SAFETY: forwarded; the caller's contract is the same.
                $on!(self, b => unsafe { b.reset() })
            }
            fn stats(&self) -> $crate::BackendStats {
                $on!(self, b => b.stats())
            }
            fn trim(&mut self) {
                $on!(self, b => b.trim())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_through_lua_numbers() {
        for t in Tag::ALL {
            if t != Tag::Other {
                assert_eq!(Tag::from_lua(t.to_lua()), t);
            }
            assert_eq!(Tag::ALL[t.index()], t);
        }
        for other in [0, 1, 2, 3, 11, 64, usize::MAX] {
            assert_eq!(Tag::from_lua(other), Tag::Other);
        }
    }
}
