//! The conformance kit: one check per clause of the contract, callable from any backend crate's
//! tests, plus a model-based random run and a checker for raw `lua_Alloc` functions.
//!
//! Use [`conformance_tests!`](crate::conformance_tests) to get one `#[test]` per clause:
//!
//! ```ignore
//! lmem_backend::conformance_tests!(lmem_system::System::new());
//! ```
//!
//! Every check panics with a message naming the clause it found broken.

use crate::{ALIGN, Backend, MAX_SIZE, Ownership, Tag};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr::NonNull;

pub use proptest;

pub use crate::rng::Rng;

/// The byte a block's content has at `offset`, from a per-block `seed`.
#[inline]
pub fn pattern(seed: u64, offset: usize) -> u8 {
    (seed as u8).wrapping_add((offset as u8).wrapping_mul(31)) ^ ((offset >> 8) as u8)
}

/// Fills `len` bytes at `p` with [`pattern`]`(seed, ..)`.
///
/// # Safety
///
/// `p` is valid for writing `len` bytes.
pub unsafe fn fill(p: NonNull<u8>, len: usize, seed: u64) {
    // SAFETY: the caller guarantees `len` writable bytes at `p`.
    let s = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) };
    for (i, b) in s.iter_mut().enumerate() {
        *b = pattern(seed, i);
    }
}

/// Panics with `what` unless the first `len` bytes at `p` hold [`pattern`]`(seed, ..)`.
///
/// # Safety
///
/// `p` is valid for reading `len` bytes.
pub unsafe fn verify(p: NonNull<u8>, len: usize, seed: u64, what: &str) {
    // SAFETY: the caller guarantees `len` readable bytes at `p`.
    let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) };
    if let Some(i) = s
        .iter()
        .enumerate()
        .position(|(i, &b)| b != pattern(seed, i))
    {
        panic!("{what}: byte {i} of {len} changed (block at {p:p})");
    }
}

fn alloc_ok<B: Backend + ?Sized>(b: &mut B, size: usize, tag: Tag) -> NonNull<u8> {
    let p = b
        .allocate(size, tag)
        .unwrap_or_else(|| panic!("{}: allocate({size}, {tag}) failed", b.name()));
    assert_eq!(
        p.as_ptr() as usize % ALIGN,
        0,
        "alignment: allocate({size}) gave {p:p}, not {ALIGN}-aligned"
    );
    p
}

/// Sizes every check walks through: the small classes byte by byte, then powers of two and their
/// neighbours up to 256 KiB.
pub fn probe_sizes() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=130).collect();
    let mut p = 256;
    while p <= 256 * 1024 {
        v.extend([p - 1, p, p + 1, p + p / 2]);
        p *= 2;
    }
    v
}

/// Clause 5: every block, new or resized, is aligned to at least [`ALIGN`] bytes.
pub fn alignment<B: Backend + ?Sized>(b: &mut B) {
    let mut live = Vec::new();
    for size in probe_sizes() {
        live.push((alloc_ok(b, size, Tag::Other), size));
    }
    for (p, size) in live.iter_mut() {
        let new = *size * 2 + 3;
        // SAFETY: `p` is a live block of `b` of size `size`.
        let q = unsafe { b.resize(*p, *size, new) }.expect("resize (grow) failed");
        assert_eq!(
            q.as_ptr() as usize % ALIGN,
            0,
            "alignment: resize to {new} gave {q:p}"
        );
        *p = q;
        *size = new;
    }
    for (p, size) in live {
        // SAFETY: live block of `b` with its current size.
        unsafe { b.deallocate(p, size) };
    }
}

/// Clause 3 (grow): a block grown step by step keeps its first `old_size` bytes each time.
pub fn grow_keeps_prefix<B: Backend + ?Sized>(b: &mut B) {
    for start in [1, 7, 16, 24, 63, 100, 500] {
        let mut size = start;
        let mut p = alloc_ok(b, size, Tag::Other);
        // SAFETY: `p` is a fresh block of `size` bytes.
        unsafe { fill(p, size, start as u64) };
        // A neighbour in the way, so an in-place grow has to be honest.
        let n = alloc_ok(b, 32, Tag::Other);
        // SAFETY: fresh block of 32 bytes.
        unsafe { fill(n, 32, 99) };
        while size < 300 * 1024 {
            let new = size * 2 + start % 5;
            // SAFETY: `p` is a live block of size `size`.
            p = unsafe { b.resize(p, size, new) }.expect("resize (grow) failed");
            // SAFETY: `p` now has `new >= size` bytes; the first `size` must have survived.
            unsafe { verify(p, size, start as u64, "grow keeps the prefix") };
            // SAFETY: `p` has `new` writable bytes.
            unsafe { fill(p, new, start as u64) };
            size = new;
        }
        // SAFETY: `n` is untouched by someone else's resize.
        unsafe { verify(n, 32, 99, "grow must not write into a neighbour") };
        // SAFETY: both live with these sizes.
        unsafe {
            b.deallocate(p, size);
            b.deallocate(n, 32);
        }
    }
}

/// Clause 3 (shrink): a block shrunk step by step keeps its first `new_size` bytes, and a shrink
/// does not fail.
pub fn shrink_keeps_prefix<B: Backend + ?Sized>(b: &mut B) {
    for start in [64 * 1024 + 3, 4096, 1000, 130, 64] {
        let mut size = start;
        let mut p = alloc_ok(b, size, Tag::Other);
        // SAFETY: fresh block of `size` bytes.
        unsafe { fill(p, size, start as u64) };
        while size > 1 {
            let new = size / 2 + (size % 3 == 0) as usize;
            let new = new.max(1).min(size - 1).max(1);
            // SAFETY: `p` is a live block of size `size`.
            p = unsafe { b.resize(p, size, new) }.expect("a shrink must not fail");
            assert_eq!(p.as_ptr() as usize % ALIGN, 0, "alignment after shrink");
            // SAFETY: `p` has `new` bytes, all from the old prefix.
            unsafe { verify(p, new, start as u64, "shrink keeps the prefix") };
            size = new;
        }
        // SAFETY: live with this size.
        unsafe { b.deallocate(p, size) };
    }
}

/// Clause 6: live blocks never overlap — each block keeps its own content while others are made,
/// resized and freed around it.
pub fn no_overlap<B: Backend + ?Sized>(b: &mut B) {
    let mut rng = Rng::new(0x5eed);
    let mut live: Vec<(NonNull<u8>, usize, u64)> = Vec::new();
    for round in 0..6u64 {
        for i in 0..400u64 {
            let size = rng.lua_size(8192);
            let p = alloc_ok(b, size, Tag::ALL[(i % 8) as usize]);
            let seed = round * 1000 + i;
            // SAFETY: fresh block of `size` bytes.
            unsafe { fill(p, size, seed) };
            live.push((p, size, seed));
        }
        let mut spans: Vec<(usize, usize)> = live
            .iter()
            .map(|&(p, s, _)| (p.as_ptr() as usize, s))
            .collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(
                w[0].0 + w[0].1 <= w[1].0,
                "overlap: blocks {:x?} and {:x?}",
                w[0],
                w[1]
            );
        }
        for &(p, size, seed) in &live {
            // SAFETY: live block of `size` bytes.
            unsafe { verify(p, size, seed, "a block changed while others were made") };
        }
        // Free about half, in random order; resize some survivors.
        let mut keep = Vec::new();
        for (p, size, seed) in live.drain(..) {
            match rng.below(4) {
                0 | 1 => {
                    // SAFETY: live block of `size` bytes.
                    unsafe { b.deallocate(p, size) }
                }
                2 => {
                    let new = rng.lua_size(8192);
                    // SAFETY: live block of `size` bytes.
                    let q = unsafe { b.resize(p, size, new) }.expect("resize failed");
                    // SAFETY: `q` holds the first min(size, new) bytes of the old content.
                    unsafe { verify(q, size.min(new), seed, "resize keeps the prefix") };
                    // SAFETY: `q` has `new` writable bytes.
                    unsafe { fill(q, new, seed) };
                    keep.push((q, new, seed));
                }
                _ => keep.push((p, size, seed)),
            }
        }
        live = keep;
    }
    for (p, size, seed) in live {
        // SAFETY: live block of `size` bytes.
        unsafe {
            verify(p, size, seed, "final contents");
            b.deallocate(p, size);
        }
    }
}

/// Clause 2: the tag is a hint, never a size — small blocks allocated under every tag hold
/// exactly their size without touching their neighbours.
pub fn tag_is_not_a_size<B: Backend + ?Sized>(b: &mut B) {
    let mut live = Vec::new();
    for size in 1..=24usize {
        for tag in Tag::ALL {
            let p = alloc_ok(b, size, tag);
            let seed = (size * 8 + tag.index()) as u64;
            // SAFETY: fresh block of `size` bytes.
            unsafe { fill(p, size, seed) };
            live.push((p, size, seed));
        }
    }
    for (p, size, seed) in live {
        // SAFETY: live block of `size` bytes; freed with the size, not the tag.
        unsafe {
            verify(p, size, seed, "tag taken for a size");
            b.deallocate(p, size);
        }
    }
}

/// Clause 4: an impossible request fails with `None` and leaves the old block untouched and
/// still usable; the backend keeps working afterwards.
pub fn failure_leaves_block_intact<B: Backend + ?Sized>(b: &mut B) {
    for huge in [usize::MAX, MAX_SIZE + 1, isize::MAX as usize] {
        assert!(
            b.allocate(huge, Tag::Other).is_none(),
            "allocate({huge}) must fail"
        );
    }
    for size in [8, 48, 200, 5000] {
        let p = alloc_ok(b, size, Tag::Table);
        // SAFETY: fresh block of `size` bytes.
        unsafe { fill(p, size, 7) };
        for huge in [usize::MAX, MAX_SIZE + 1, isize::MAX as usize] {
            // SAFETY: `p` is a live block of `size` bytes.
            let r = unsafe { b.resize(p, size, huge) };
            assert!(r.is_none(), "resize to {huge} must fail");
            // SAFETY: the failed resize left `p` live and untouched.
            unsafe { verify(p, size, 7, "failed resize touched the block") };
        }
        // The block is still owned by us and still resizable and freeable.
        // SAFETY: `p` is a live block of `size` bytes.
        let q = unsafe { b.resize(p, size, size + 100) }.expect("resize after failure");
        // SAFETY: `q` keeps the first `size` bytes.
        unsafe {
            verify(q, size, 7, "resize after a failure");
            b.deallocate(q, size + 100);
        }
    }
}

/// Clause 1: frees never fail — many blocks freed in an arbitrary order, after which the backend
/// still serves requests.
pub fn frees_never_fail<B: Backend + ?Sized>(b: &mut B) {
    let mut rng = Rng::new(42);
    for _ in 0..3 {
        let mut live: Vec<_> = (0..2000)
            .map(|_| {
                let s = rng.lua_size(4096);
                (alloc_ok(b, s, Tag::String), s)
            })
            .collect();
        while !live.is_empty() {
            let (p, s) = live.swap_remove(rng.below(live.len()));
            // SAFETY: live block of `s` bytes.
            unsafe { b.deallocate(p, s) };
        }
    }
    let p = alloc_ok(b, 40, Tag::Other);
    // SAFETY: live block of 40 bytes.
    unsafe { b.deallocate(p, 40) };
}

/// `owns` is never wrong when it answers: its own live blocks are not `Foreign`, and memory that
/// is not its block is not `Owned`.
pub fn ownership_is_never_wrong<B: Backend + ?Sized>(b: &mut B) {
    let mut live = Vec::new();
    for size in [1, 16, 64, 500, 5000, 200_000] {
        let p = alloc_ok(b, size, Tag::Other);
        assert_ne!(
            b.owns(p),
            Ownership::Foreign,
            "owns: own block of {size} B said foreign"
        );
        live.push((p, size));
    }
    let on_stack = [0u8; 64];
    let on_heap = Box::new([0u8; 64]);
    for p in [
        NonNull::from(&on_stack).cast::<u8>(),
        NonNull::from(&*on_heap).cast::<u8>(),
    ] {
        assert_ne!(
            b.owns(p),
            Ownership::Owned,
            "owns: foreign pointer {p:p} said owned"
        );
    }
    for (p, size) in live {
        // SAFETY: live block of `size` bytes.
        unsafe { b.deallocate(p, size) };
    }
}

/// `trim` leaves every live block live and unchanged: blocks of many sizes, half of them freed,
/// then a trim, then every survivor checked, resized and freed, and the backend still serves.
pub fn trim_keeps_live_blocks<B: Backend + ?Sized>(b: &mut B) {
    let mut live = Vec::new();
    for (i, size) in probe_sizes().into_iter().enumerate() {
        let p = alloc_ok(b, size, Tag::Other);
        // SAFETY: a fresh block of `size` bytes.
        unsafe { fill(p, size, i as u64) };
        live.push((p, size, i as u64));
    }
    let mut kept = Vec::new();
    for (j, (p, size, seed)) in live.into_iter().enumerate() {
        if j % 2 == 0 {
            // SAFETY: live block of `size` bytes, not used again.
            unsafe { b.deallocate(p, size) };
        } else {
            kept.push((p, size, seed));
        }
    }
    b.trim();
    b.trim();
    for (p, size, seed) in kept {
        // SAFETY: a live block of `size` bytes filled with `seed`'s pattern.
        unsafe { verify(p, size, seed, "trim: a live block changed") };
        // SAFETY: live block of `size` bytes; on success the old pointer is not used again.
        let (q, n) = match unsafe { b.resize(p, size, size + 1) } {
            Some(q) => (q, size + 1),
            None => (p, size),
        };
        // SAFETY: the resize kept the first `size` bytes.
        unsafe { verify(q, size, seed, "trim: resize after trim lost the prefix") };
        // SAFETY: live block of `n` bytes.
        unsafe { b.deallocate(q, n) };
    }
    let p = alloc_ok(b, 64, Tag::Table);
    // SAFETY: live block of 64 bytes.
    unsafe { b.deallocate(p, 64) };
}

/// The [`ExactOwnership`](crate::ExactOwnership) clause: every live block, of every size the
/// kit probes, is `Owned`; memory that is not a block of this backend (the stack, a Rust heap
/// allocation, a block of plain `malloc`) is `Foreign`; never `Unknown`. Checked again after
/// blocks around them were freed, and after resizes moved them.
pub fn ownership_is_exact<B: crate::ExactOwnership + ?Sized>(b: &mut B) {
    let mut live = Vec::new();
    for size in probe_sizes().into_iter().step_by(3) {
        live.push((alloc_ok(b, size, Tag::Other), size));
    }
    let on_stack = [0u8; 64];
    let on_heap = Box::new([0u8; 64]);
    // SAFETY: malloc has no preconditions; the block is freed below.
    let from_malloc = unsafe { libc_malloc(64) };
    let mut foreign = vec![
        NonNull::from(&on_stack).cast::<u8>(),
        NonNull::from(&*on_heap).cast::<u8>(),
    ];
    foreign.extend(NonNull::new(from_malloc.cast::<u8>()));
    let check = |b: &B, live: &[(NonNull<u8>, usize)]| {
        for &(p, size) in live {
            assert_eq!(
                b.owns(p),
                Ownership::Owned,
                "owns: own live block of {size} B not Owned"
            );
        }
        for &p in &foreign {
            assert_eq!(
                b.owns(p),
                Ownership::Foreign,
                "owns: foreign pointer {p:p} not Foreign"
            );
        }
    };
    check(b, &live);
    // Free every other block, resize the rest (which may move them), and ask again.
    let mut kept = Vec::new();
    for (i, (p, size)) in live.into_iter().enumerate() {
        if i % 2 == 0 {
            // SAFETY: live block of `size` bytes, not used again.
            unsafe { b.deallocate(p, size) };
        } else {
            let new = size * 2 + 8;
            // SAFETY: live block of `size` bytes; on success the old pointer is not used again.
            match unsafe { b.resize(p, size, new) } {
                Some(q) => kept.push((q, new)),
                None => kept.push((p, size)),
            }
        }
    }
    check(b, &kept);
    for (p, size) in kept {
        // SAFETY: live block of `size` bytes.
        unsafe { b.deallocate(p, size) };
    }
    // SAFETY: `from_malloc` came from malloc and is freed once.
    unsafe { libc_free(from_malloc) };
}

unsafe extern "C" {
    #[link_name = "malloc"]
    fn libc_malloc(size: usize) -> *mut c_void;
    #[link_name = "free"]
    fn libc_free(p: *mut c_void);
}

/// One step of a random operation sequence.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Allocate a block of this size with this tag.
    Alloc(usize, Tag),
    /// Resize the live block at this index (modulo the live count) to this size.
    Resize(usize, usize),
    /// Free the live block at this index (modulo the live count).
    Free(usize),
}

/// A model of what must be live: address, size and content seed of each block.
#[derive(Default, Debug)]
pub struct Model {
    /// Live blocks, in allocation order.
    pub live: Vec<(NonNull<u8>, usize, u64)>,
    next_seed: u64,
}

impl Model {
    /// Bytes the caller holds.
    pub fn live_bytes(&self) -> usize {
        self.live.iter().map(|b| b.1).sum()
    }

    /// Applies `op` to `b`, checking every contract clause that the step touches, and returns
    /// whether the request was served (a failure is legal only where a limit could say so: the
    /// caller decides, through `may_fail`).
    pub fn step<B: Backend + ?Sized>(&mut self, b: &mut B, op: Step, may_fail: bool) -> bool {
        match op {
            Step::Alloc(size, tag) => match b.allocate(size, tag) {
                Some(p) => {
                    assert_eq!(p.as_ptr() as usize % ALIGN, 0, "alignment");
                    self.next_seed += 1;
                    // SAFETY: fresh block of `size` bytes.
                    unsafe { fill(p, size, self.next_seed) };
                    self.live.push((p, size, self.next_seed));
                    true
                }
                None => {
                    assert!(may_fail, "allocate({size}) failed");
                    false
                }
            },
            Step::Resize(i, new) if !self.live.is_empty() => {
                let i = i % self.live.len();
                let (p, size, seed) = self.live[i];
                // SAFETY: `p` is a live block of `size` bytes.
                match unsafe { b.resize(p, size, new) } {
                    Some(q) => {
                        assert_eq!(q.as_ptr() as usize % ALIGN, 0, "alignment");
                        // SAFETY: `q` keeps min(size, new) bytes of the old content.
                        unsafe { verify(q, size.min(new), seed, "resize keeps the prefix") };
                        // SAFETY: `q` has `new` writable bytes.
                        unsafe { fill(q, new, seed) };
                        self.live[i] = (q, new, seed);
                        true
                    }
                    None => {
                        assert!(may_fail, "resize({size} -> {new}) failed");
                        // SAFETY: the failed resize left `p` live and untouched.
                        unsafe { verify(p, size, seed, "failed resize touched the block") };
                        false
                    }
                }
            }
            Step::Free(i) if !self.live.is_empty() => {
                let (p, size, seed) = self.live.swap_remove(i % self.live.len());
                // SAFETY: live block of `size` bytes, freed once.
                unsafe {
                    verify(p, size, seed, "content before free");
                    b.deallocate(p, size);
                }
                true
            }
            _ => true,
        }
    }

    /// Checks every live block's content.
    pub fn verify_all(&self) {
        for &(p, size, seed) in &self.live {
            // SAFETY: the model holds only live blocks with their sizes.
            unsafe { verify(p, size, seed, "live block content") };
        }
    }

    /// Frees every live block.
    pub fn free_all<B: Backend + ?Sized>(&mut self, b: &mut B) {
        for (p, size, seed) in self.live.drain(..) {
            // SAFETY: live blocks of `b` with their sizes, each freed once.
            unsafe {
                verify(p, size, seed, "content before free");
                b.deallocate(p, size);
            }
        }
    }
}

/// A random operation from `rng`, sizes from Lua's mix up to `max`.
pub fn random_step(rng: &mut Rng, max: usize) -> Step {
    match rng.below(10) {
        0..=4 => Step::Alloc(rng.lua_size(max), Tag::ALL[rng.below(8)]),
        5 | 6 => Step::Resize(rng.below(1 << 20), rng.lua_size(max)),
        _ => Step::Free(rng.below(1 << 20)),
    }
}

/// `n` random operations from `seed` against a [`Model`], all contents checked on free and every
/// 1024 steps; everything freed at the end.
pub fn random_run<B: Backend + ?Sized>(b: &mut B, seed: u64, n: usize) {
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    for step in 0..n {
        let op = random_step(&mut rng, 16 * 1024);
        model.step(b, op, false);
        // Bound the live set so long runs stay small.
        if model.live.len() > 4096 {
            model.step(b, Step::Free(rng.below(1 << 20)), false);
        }
        if step % 1024 == 0 {
            model.verify_all();
        }
    }
    model.verify_all();
    model.free_all(b);
}

/// The proptest strategy for operation sequences (sizes up to `max`).
pub fn ops(max: usize, len: usize) -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    let tag = (0..8usize).prop_map(|i| Tag::ALL[i]);
    let size = prop_oneof![8 => 1..=64usize, 3 => 65..=1024usize, 1 => 1025..=max.max(1026)];
    let op = prop_oneof![
        5 => (size.clone(), tag).prop_map(|(s, t)| Step::Alloc(s, t)),
        2 => (any::<usize>(), size).prop_map(|(i, s)| Step::Resize(i, s)),
        3 => any::<usize>().prop_map(Step::Free),
    ];
    proptest::collection::vec(op, 0..len)
}

/// The raw C allocation function, as Lua declares `lua_Alloc`.
pub type LuaAlloc = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize) -> *mut c_void;

/// Checks a raw `lua_Alloc` function against every clause of the osize/nsize contract, calling
/// it exactly as Lua does: free of NULL is a no-op returning NULL; `osize` is a type tag when
/// `ptr` is NULL (never taken for a size); grow and shrink keep the prefix; failure returns NULL
/// and leaves the block intact; alignment; no overlap. Leaves nothing allocated.
///
/// # Safety
///
/// `f` and `ud` form a valid allocation function pair as Lua requires (`ud` stays valid for the
/// call's duration and is used by nothing else meanwhile).
pub unsafe fn lua_alloc_contract(f: LuaAlloc, ud: *mut c_void) {
    let call = |p: *mut c_void, o: usize, n: usize| -> *mut c_void {
        // SAFETY: `f`/`ud` are a valid pair (caller); every `p` we pass is NULL or a live block
        // with `o` its size, as the contract requires.
        unsafe { f(ud, p, o, n) }
    };
    // Free of NULL, with any osize (tags and sizes alike), is a no-op returning NULL.
    for o in [0, 4, 5, 10, 64, usize::MAX] {
        assert!(
            call(std::ptr::null_mut(), o, 0).is_null(),
            "free(NULL, {o}) must return NULL"
        );
    }
    // New blocks: osize is a tag. Small sizes under every tag, and tags as big as the sizes.
    let mut live: HashMap<usize, (usize, u64)> = HashMap::new();
    let mut seed = 0;
    for n in 1..=40usize {
        for o in [0usize, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 64, 4096] {
            let p = call(std::ptr::null_mut(), o, n);
            assert!(!p.is_null(), "allocate({n}) with tag {o} failed");
            assert_eq!(p as usize % ALIGN, 0, "alignment of a new block");
            seed += 1;
            let nn = NonNull::new(p.cast::<u8>()).expect("checked non-null");
            // SAFETY: fresh block of `n` bytes.
            unsafe { fill(nn, n, seed) };
            assert!(
                live.insert(p as usize, (n, seed)).is_none(),
                "same address handed out twice"
            );
        }
    }
    let check_all = |live: &HashMap<usize, (usize, u64)>| {
        for (&p, &(n, s)) in live {
            let nn = NonNull::new(p as *mut u8).expect("live blocks are non-null");
            // SAFETY: live block of `n` bytes.
            unsafe { verify(nn, n, s, "tag taken for a size, or blocks overlap") };
        }
    };
    check_all(&live);
    // Grow and shrink every block, keeping the prefix.
    let blocks: Vec<_> = live.drain().collect();
    for (p, (n, s)) in blocks {
        let big = n * 37 + 100;
        let q = call(p as *mut c_void, n, big);
        assert!(!q.is_null(), "grow {n} -> {big} failed");
        assert_eq!(q as usize % ALIGN, 0, "alignment after grow");
        let qn = NonNull::new(q.cast::<u8>()).expect("checked non-null");
        // SAFETY: `q` keeps `n` bytes of the old content and has `big` bytes.
        unsafe {
            verify(qn, n, s, "grow keeps the prefix");
            fill(qn, big, s);
        }
        let small = (n / 2).max(1);
        let r = call(q, big, small);
        assert!(!r.is_null(), "a shrink must not fail");
        let rn = NonNull::new(r.cast::<u8>()).expect("checked non-null");
        // SAFETY: `r` keeps `small` bytes.
        unsafe { verify(rn, small, s, "shrink keeps the prefix") };
        live.insert(r as usize, (small, s));
    }
    check_all(&live);
    // Failure: NULL, block untouched, still freeable.
    let (&p, &(n, s)) = live.iter().next().expect("blocks are live");
    for huge in [usize::MAX, MAX_SIZE + 1] {
        assert!(
            call(std::ptr::null_mut(), 5, huge).is_null(),
            "allocate({huge}) must fail"
        );
        assert!(
            call(p as *mut c_void, n, huge).is_null(),
            "resize to {huge} must fail"
        );
    }
    check_all(&live);
    let _ = s;
    // Frees return NULL.
    for (p, (n, _)) in live.drain() {
        assert!(
            call(p as *mut c_void, n, 0).is_null(),
            "free must return NULL"
        );
    }
}

/// Generates one `#[test]` per contract clause for the backend built by `$make` (an expression
/// evaluated afresh for each test), plus a 10^5-operation random run and a proptest. Written
/// `conformance_tests!(exact: $make)` for a backend that declares
/// [`ExactOwnership`](crate::ExactOwnership), it also checks that clause (and fails to compile
/// for a backend that does not declare it).
#[macro_export]
macro_rules! conformance_tests {
    (exact: $make:expr) => {
        $crate::conformance_tests!($make);

        #[test]
        fn declared_exact_ownership_holds() {
            let mut b = $make;
            $crate::conformance::ownership_is_exact(&mut b);
        }
    };
    ($make:expr) => {
        $crate::conformance_tests!(@one alignment, $make);
        $crate::conformance_tests!(@one grow_keeps_prefix, $make);
        $crate::conformance_tests!(@one shrink_keeps_prefix, $make);
        $crate::conformance_tests!(@one no_overlap, $make);
        $crate::conformance_tests!(@one tag_is_not_a_size, $make);
        $crate::conformance_tests!(@one failure_leaves_block_intact, $make);
        $crate::conformance_tests!(@one frees_never_fail, $make);
        $crate::conformance_tests!(@one ownership_is_never_wrong, $make);
        $crate::conformance_tests!(@one trim_keeps_live_blocks, $make);

        #[test]
        fn random_run_100k_ops() {
            let mut b = $make;
            $crate::conformance::random_run(&mut b, 0x1a_2b_3c, 100_000);
        }

        $crate::conformance::proptest::proptest! {
            #![proptest_config($crate::conformance::proptest::prelude::ProptestConfig::with_cases(64))]
            #[test]
            fn random_sequences_match_the_model(ops in $crate::conformance::ops(70_000, 300)) {
                let mut b = $make;
                let mut model = $crate::conformance::Model::default();
                for op in ops {
                    model.step(&mut b, op, false);
                }
                model.verify_all();
                model.free_all(&mut b);
            }
        }
    };
    (@one $name:ident, $make:expr) => {
        #[test]
        fn $name() {
            let mut b = $make;
            $crate::conformance::$name(&mut b);
        }
    };
}
