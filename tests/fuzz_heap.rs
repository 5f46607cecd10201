//! Fuzzing the heap on stable: deterministic, proptest-driven hostile operation sequences for
//! the core heap on every backend compiled in. It runs in `cargo test`; raise `PROPTEST_CASES`
//! to search longer (`PROPTEST_CASES=2000 cargo test --test fuzz_heap`).
//!
//! Arbitrary operation sequences (sizes from 0 to `usize::MAX`, vectors whose `n · size`
//! overflows, limits, fault plans, an emergency hook that frees a reserve block, a GC-step hook)
//! run through `Heap<FaultInjection<Checker<B>>>` (strict) and, so that absurd sizes reach the
//! backend itself, through `Heap<FaultInjection<B>>`. Checked after every step: no panic, the
//! pointer is 16-aligned and keeps its contents, the live bytes equal a model's, failures are
//! counted exactly, errors are the ones Lua would give, the limit holds, shrinks and frees never
//! fail; at the end 0 live bytes and a clean checker.

use lmem::backends::{self, Visit};
use lmem::{
    ALIGN, Backend, Checker, Collect, DebtConvention, FaultInjection, FaultPlan, Heap, MAX_SIZE,
    MIN_VECTOR, MemError, Tag,
};
use lmem_backend::conformance::{fill, verify};
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};
use std::rc::Rc;
mod common;
use common::{ABSURD, ABSURD_FLOOR, cases, pick, tag};

// ---------------------------------------------------------------------------------------------
// Sizes and operations.

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 1usize..=64,
        3 => 65usize..=1024,
        2 => 1025usize..=70_000,
        1 => Just(0usize),
        2 => prop::sample::select(ABSURD.to_vec()),
    ]
}

/// Element counts for vectors: small ones, and ones whose product with any element size
/// overflows or passes `MAX_SIZE`.
fn count() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=300,
        1 => 301usize..=9000,
        2 => prop::sample::select(vec![
            usize::MAX,
            usize::MAX / 2,
            usize::MAX / 4 + 1,
            usize::MAX / 8 + 1,
            usize::MAX / 24 + 1,
            MAX_SIZE / 8,
            MAX_SIZE / 8 + 1,
            MAX_SIZE / 24 + 1,
            MAX_SIZE / 4 + 1,
            isize::MAX as usize,
            1 << 61,
            1 << 49,
        ]),
    ]
}

/// Element types of vectors (all at most 16-aligned, as the heap requires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    U8,
    U32,
    U64,
    Wide,
}

/// A 24-byte element: `n · 24` overflows at other `n` than the powers of two do.
type Wide = [u64; 3];

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::U8 => 1,
            Elem::U32 => 4,
            Elem::U64 => 8,
            Elem::Wide => size_of::<Wide>(),
        }
    }
}

/// Runs `$body` with `$t` bound to the element type of `$elem`.
macro_rules! with_elem {
    ($elem:expr, $t:ident => $body:expr) => {
        match $elem {
            Elem::U8 => {
                type $t = u8;
                $body
            }
            Elem::U32 => {
                type $t = u32;
                $body
            }
            Elem::U64 => {
                type $t = u64;
                $body
            }
            Elem::Wide => {
                type $t = Wide;
                $body
            }
        }
    };
}

fn elem() -> impl Strategy<Value = Elem> {
    prop::sample::select(vec![Elem::U8, Elem::U32, Elem::U64, Elem::Wide])
}

#[derive(Clone, Debug)]
enum Op {
    /// `try_malloc(size, tag)`.
    Malloc(usize, Tag),
    /// `lua_alloc(NULL, type, nsize)`: the type may be any number.
    LuaNew(usize, usize),
    /// `try_realloc(block, osize, nsize)`; `nsize == 0` frees.
    Realloc(usize, usize),
    /// `lua_alloc(block, osize, nsize)`.
    LuaRealloc(usize, usize),
    /// `free`/`free_array`.
    Free(usize),
    /// `try_new_vector::<elem>(n)`.
    NewVector(Elem, usize, Tag),
    /// `try_realloc_vector` to `n` elements (a plain block is a vector of bytes).
    ReallocVector(usize, usize),
    /// `try_grow_vector` with the vector full (or one short of it) and this limit; grows a new
    /// vector from null when the block picked is not a vector.
    GrowVector(usize, Elem, usize, bool),
    /// `try_shrink_vector` to `k/16` of the capacity.
    ShrinkVector(usize, u8),
    /// `set_limit`.
    Limit(Option<usize>),
    /// A new fault plan.
    Plan(FaultPlan),
    /// Sets aside a block that the emergency hook frees.
    Reserve(usize),
    /// `set_gc_threshold`.
    GcThreshold(usize),
}

fn plan() -> impl Strategy<Value = FaultPlan> {
    prop_oneof![
        3 => Just(FaultPlan::Never),
        1 => (1u64..40).prop_map(FaultPlan::At),
        1 => (1u64..200).prop_map(FaultPlan::From),
        1 => (0usize..200_000).prop_map(FaultPlan::Above),
        1 => (0.0f64..0.6, any::<u64>()).prop_map(|(p, seed)| FaultPlan::Random { p, seed }),
    ]
}

fn limit() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(0)),
        3 => (1usize..400_000).prop_map(Some),
        1 => prop::sample::select(vec![Some(usize::MAX), Some(usize::MAX - 1), Some(MAX_SIZE)]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let vlimit = prop_oneof![
        5 => 0usize..=600,
        1 => prop::sample::select(vec![usize::MAX, MAX_SIZE, isize::MAX as usize, 1 << 40]),
    ];
    prop_oneof![
        10 => (size(), tag()).prop_map(|(s, t)| Op::Malloc(s, t)),
        3 => (prop_oneof![0usize..=12, Just(usize::MAX)], size())
            .prop_map(|(t, s)| Op::LuaNew(t, s)),
        6 => (any::<usize>(), size()).prop_map(|(i, s)| Op::Realloc(i, s)),
        2 => (any::<usize>(), size()).prop_map(|(i, s)| Op::LuaRealloc(i, s)),
        8 => any::<usize>().prop_map(Op::Free),
        3 => (elem(), count(), tag()).prop_map(|(e, n, t)| Op::NewVector(e, n, t)),
        3 => (any::<usize>(), count()).prop_map(|(i, n)| Op::ReallocVector(i, n)),
        4 => (any::<usize>(), elem(), vlimit, any::<bool>())
            .prop_map(|(i, e, l, full)| Op::GrowVector(i, e, l, full)),
        2 => (any::<usize>(), 0u8..16).prop_map(|(i, k)| Op::ShrinkVector(i, k)),
        1 => limit().prop_map(Op::Limit),
        1 => plan().prop_map(Op::Plan),
        1 => (1usize..100_000).prop_map(Op::Reserve),
        1 => (0usize..100_000).prop_map(Op::GcThreshold),
    ]
}

/// What a case sets up besides its operations.
#[derive(Clone, Debug)]
struct Setup {
    convention: DebtConvention,
    gc_hook: bool,
    emergency_hook: bool,
    static_type: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(c, g, e, s)| Setup {
        convention: if c {
            DebtConvention::Lua55
        } else {
            DebtConvention::Lua54
        },
        gc_hook: g,
        emergency_hook: e,
        static_type: s,
    })
}

// ---------------------------------------------------------------------------------------------
// The model run.

/// A live block as the test sees it.
#[derive(Clone, Copy, Debug)]
struct Block {
    p: NonNull<u8>,
    /// Bytes (for a vector: capacity · element size).
    size: usize,
    /// `Some` for vectors made by the vector functions.
    elem: Option<Elem>,
    /// Seed of the pattern its bytes hold.
    seed: u64,
}

impl Block {
    fn cap(&self) -> usize {
        self.size / self.elem.map_or(1, Elem::size)
    }
}

/// The reserve block the emergency hook frees, shared between the hook and the test.
type Reserve = Rc<RefCell<Option<(usize, usize)>>>;

/// Drives one heap through `ops` and checks it against a model after every step.
struct Run<'h, B: Backend> {
    heap: &'h mut Heap<FaultInjection<B>>,
    live: Vec<Block>,
    reserve: Reserve,
    seed: u64,
    /// Whether shrinks may fail (only when the fault plan fails shrinks too).
    shrinks_may_fail: bool,
    /// Whether a backend may refuse ordinary sizes (never, unless a plan says so).
    plan_active: bool,
    /// Whether a GC-step hook is installed (then no step is ever left due).
    gc_hook: bool,
}

impl<B: Backend> Run<'_, B> {
    fn model_live(&self) -> usize {
        let reserve = self.reserve.borrow().map_or(0, |(_, s)| s);
        self.live.iter().map(|b| b.size).sum::<usize>() + reserve
    }

    fn new_seed(&mut self) -> u64 {
        self.seed += 1;
        self.seed
    }

    /// Checks a fresh or moved block and writes its pattern.
    fn adopt(&mut self, p: *mut u8, size: usize, elem: Option<Elem>, keep: Option<(u64, usize)>) {
        let p = NonNull::new(p).expect("a successful request of > 0 bytes is not null");
        assert_eq!(
            p.as_ptr() as usize % ALIGN,
            0,
            "block {p:p} is not 16-aligned"
        );
        if let Some((seed, prefix)) = keep {
            // SAFETY: the block has at least `size >= prefix` bytes, the first `prefix` kept.
            unsafe { verify(p, prefix, seed, "a resize keeps the prefix") };
        }
        let seed = self.new_seed();
        // SAFETY: `p` has `size` writable bytes (a successful request for `size`).
        unsafe { fill(p, size, seed) };
        self.live.push(Block {
            p,
            size,
            elem,
            seed,
        });
    }

    /// Takes the block `i` picks out of the live list, its contents verified.
    fn take(&mut self, i: &usize) -> Option<Block> {
        if self.live.is_empty() {
            return None;
        }
        let b = self.live.swap_remove(pick(i, self.live.len()));
        // SAFETY: `b.p` is live with `b.size` bytes holding the pattern of `b.seed`.
        unsafe { verify(b.p, b.size, b.seed, "a live block keeps its contents") };
        Some(b)
    }

    /// Checks a failed request: the heap is as it was, the failure counted when it reached the
    /// allocator, and the error is the one Lua would raise.
    fn failed(&self, e: &MemError, before: &Snapshot, requested: usize, extra: usize) {
        // The live bytes are checked against the model after the step (an emergency hook may
        // have freed its reserve meanwhile).
        let after = Snapshot::of(self.heap);
        match e {
            MemError::OutOfMemory { requested: r } => {
                assert_eq!(*r, requested);
                assert_eq!(after.failures, before.failures + 1);
                assert!(
                    self.plan_active || requested >= ABSURD_FLOOR,
                    "{}: spurious out of memory for {requested} B",
                    self.heap.backend().name()
                );
                assert_eq!(e.to_string(), "not enough memory");
            }
            MemError::LimitExceeded {
                requested: r,
                live,
                limit,
            } => {
                assert_eq!((*r, *live), (requested, after.live));
                assert_eq!(Some(*limit), before.limit);
                assert!(
                    live.checked_add(extra).is_none_or(|x| x > *limit),
                    "limit error for {extra} more B with {live} of {limit} live"
                );
                assert_eq!(after.failures, before.failures + 1);
                assert_eq!(e.to_string(), "not enough memory");
            }
            MemError::BlockTooBig { .. } | MemError::TooMany { .. } => {
                assert_eq!(after.failures, before.failures, "{e} never asks a backend");
            }
        }
    }

    fn step(&mut self, op: &Op) {
        let before = Snapshot::of(self.heap);
        let reserve_before = self.reserve.borrow().is_some();
        match *op {
            Op::Malloc(size, tag) => match self.heap.try_malloc(size, tag) {
                Ok(p) if size == 0 => assert!(p.is_null(), "malloc(0) is null"),
                Ok(p) => self.adopt(p, size, None, None),
                Err(e) => self.failed(&e, &before, size, size),
            },
            Op::LuaNew(ty, size) => {
                // SAFETY: a null block: `ty` is read as the type of a new object.
                let p = unsafe { self.heap.lua_alloc(ptr::null_mut(), ty, size) };
                if !p.is_null() {
                    assert_ne!(size, 0);
                    self.adopt(p, size, None, None);
                } else if size > 0 {
                    assert_eq!(Snapshot::of(self.heap).failures, before.failures + 1);
                }
            }
            Op::Realloc(ref i, nsize) | Op::LuaRealloc(ref i, nsize) => {
                let Some(b) = self.take(i) else { return };
                let lua = matches!(op, Op::LuaRealloc(..));
                let r = if lua {
                    // SAFETY: `b.p` is live with `b.size` bytes; on success it is replaced.
                    let q = unsafe { self.heap.lua_alloc(b.p.as_ptr(), b.size, nsize) };
                    if q.is_null() && nsize > 0 {
                        Err(None)
                    } else {
                        Ok(q)
                    }
                } else {
                    // SAFETY: as above.
                    unsafe { self.heap.try_realloc(b.p.as_ptr(), b.size, nsize) }.map_err(Some)
                };
                // The result is a plain block (no longer a vector, whatever it was).
                self.resized(b, nsize, r, &before, None);
            }
            Op::Free(ref i) => {
                let Some(b) = self.take(i) else { return };
                match b.elem {
                    None => {
                        // SAFETY: `b.p` is live with `b.size` bytes; not used again.
                        unsafe { self.heap.free(b.p.as_ptr(), b.size) }
                    }
                    Some(e) => with_elem!(e, T => {
                        // SAFETY: a live vector with room for exactly `cap` elements of `T`.
                        unsafe { self.heap.free_array(b.p.as_ptr().cast::<T>(), b.cap()) }
                    }),
                }
                assert_eq!(Snapshot::of(self.heap).live, before.live - b.size);
            }
            Op::NewVector(e, n, tag) => {
                let r = with_elem!(e, T => self.heap.try_new_vector::<T>(n, tag).map(|p| p.cast::<u8>()));
                match (r, n.checked_mul(e.size()).filter(|&b| b <= MAX_SIZE)) {
                    (Ok(p), Some(0)) => assert!(p.is_null()),
                    (Ok(p), Some(bytes)) => self.adopt(p, bytes, Some(e), None),
                    (Err(err), None) => {
                        assert_eq!(err, MemError::BlockTooBig { n, size: e.size() });
                        assert_eq!(err.to_string(), "memory allocation error: block too big");
                        self.failed(&err, &before, 0, 0);
                    }
                    (Err(err), Some(bytes)) => self.failed(&err, &before, bytes, bytes),
                    (Ok(_), None) => panic!("{n} × {} B accepted", e.size()),
                }
            }
            Op::ReallocVector(ref i, n) => {
                let Some(b) = self.take(i) else { return };
                let e = b.elem.unwrap_or(Elem::U8);
                let r = with_elem!(e, T => {
                    // SAFETY: a live vector with room for exactly `cap` elements of `T` (a plain
                    // block is a vector of `size` bytes); replaced on success.
                    unsafe { self.heap.try_realloc_vector::<T>(b.p.as_ptr().cast(), b.cap(), n) }
                        .map(|p| p.cast::<u8>())
                });
                match n.checked_mul(e.size()).filter(|&x| x <= MAX_SIZE) {
                    Some(bytes) => self.resized(b, bytes, r.map_err(Some), &before, Some(e)),
                    None => {
                        let err = r.expect_err("an overflowing vector size is refused");
                        assert_eq!(err, MemError::BlockTooBig { n, size: e.size() });
                        self.failed(&err, &before, 0, 0);
                        self.live.push(b);
                    }
                }
            }
            Op::GrowVector(ref i, e, limit, full) => {
                let picked = (!self.live.is_empty())
                    .then(|| pick(i, self.live.len()))
                    .filter(|&k| self.live[k].elem.is_some());
                let (b, e) = match picked {
                    Some(_) => {
                        let b = self.take(i).expect("picked above");
                        (Some(b), b.elem.expect("a vector"))
                    }
                    None => (None, e),
                };
                let (v, cap) = b.map_or((ptr::null_mut(), 0), |b| (b.p.as_ptr(), b.cap()));
                let nelems = if full { cap } else { cap.saturating_sub(1) };
                let mut size = cap;
                let r = with_elem!(e, T => {
                    // SAFETY: `v` is null with size 0 or a live vector with room for exactly
                    // `cap` elements of `T`; `nelems <= cap`; replaced on success.
                    unsafe {
                        self.heap.try_grow_vector::<T>(v.cast(), nelems, &mut size, limit, "items")
                    }
                    .map(|p| p.cast::<u8>())
                });
                let clamp = limit.min(MAX_SIZE / e.size());
                let expected = if nelems < cap {
                    Ok(cap)
                } else if cap >= clamp / 2 {
                    if cap >= clamp { Err(clamp) } else { Ok(clamp) }
                } else {
                    Ok((cap * 2).max(MIN_VECTOR).min(clamp))
                };
                match (r, expected) {
                    (Ok(p), Ok(new)) => {
                        assert_eq!(size, new, "growaux's new size");
                        if new == cap {
                            assert_eq!(p, v, "a vector with room comes back as it was");
                        }
                        let keep = b.map(|b| (b.seed, b.size));
                        self.adopt(p, new * e.size(), Some(e), keep);
                    }
                    (Err(err), Err(clamp)) => {
                        assert_eq!(
                            err,
                            MemError::TooMany {
                                what: "items",
                                limit: clamp
                            }
                        );
                        assert_eq!(
                            err.to_string(),
                            format!("too many items (limit is {clamp})")
                        );
                        assert_eq!(size, cap);
                        self.failed(&err, &before, 0, 0);
                        self.live.extend(b);
                    }
                    (Err(err), Ok(new)) => {
                        assert_eq!(size, cap, "the size changes only on success");
                        let bytes = new * e.size();
                        self.failed(&err, &before, bytes, bytes - cap * e.size());
                        self.live.extend(b);
                    }
                    (Ok(_), Err(clamp)) => panic!("grew past the limit {clamp}"),
                }
            }
            Op::ShrinkVector(ref i, k) => {
                let Some(b) = self.take(i) else { return };
                let e = b.elem.unwrap_or(Elem::U8);
                let cap = b.cap();
                let final_n = cap * k as usize / 16;
                let mut size = cap;
                let r = with_elem!(e, T => {
                    // SAFETY: a live vector with room for `cap` elements; `final_n <= cap`.
                    unsafe { self.heap.try_shrink_vector::<T>(b.p.as_ptr().cast(), &mut size, final_n) }
                        .map(|p| p.cast::<u8>())
                });
                if r.is_ok() {
                    assert_eq!(size, final_n);
                } else {
                    assert_eq!(size, cap);
                }
                self.resized(b, final_n * e.size(), r.map_err(Some), &before, Some(e));
            }
            Op::Limit(l) => self.heap.set_limit(l),
            Op::Plan(p) => {
                self.heap.backend_mut().set_plan(p);
                self.plan_active = p != FaultPlan::Never;
            }
            Op::Reserve(size) => {
                if !reserve_before {
                    match self.heap.try_malloc(size, Tag::Other) {
                        Ok(p) => *self.reserve.borrow_mut() = Some((p as usize, size)),
                        Err(e) => self.failed(&e, &before, size, size),
                    }
                }
            }
            Op::GcThreshold(bytes) => self.heap.set_gc_threshold(bytes.max(1)),
        }
        self.check(&before, reserve_before);
    }

    /// The end of a resize of `b` to `nsize` bytes (0: a free) with result `r`.
    fn resized(
        &mut self,
        b: Block,
        nsize: usize,
        r: Result<*mut u8, Option<MemError>>,
        before: &Snapshot,
        elem: Option<Elem>,
    ) {
        match r {
            Ok(q) if nsize == 0 => assert!(q.is_null(), "a resize to 0 frees"),
            Ok(q) => self.adopt(q, nsize, elem, Some((b.seed, b.size.min(nsize)))),
            Err(e) => {
                assert!(
                    nsize > b.size || self.shrinks_may_fail,
                    "{}: a shrink from {} to {nsize} failed",
                    self.heap.backend().name(),
                    b.size
                );
                if let Some(e) = e {
                    self.failed(&e, before, nsize, nsize.saturating_sub(b.size));
                }
                // SAFETY: a failed resize leaves the block live and untouched.
                unsafe { verify(b.p, b.size, b.seed, "a failed resize leaves the block") };
                self.live.push(b);
            }
        }
    }

    /// The invariants after every step.
    fn check(&self, before: &Snapshot, reserve_before: bool) {
        let after = Snapshot::of(self.heap);
        assert_eq!(after.live, self.model_live(), "live bytes follow the model");
        let collected = reserve_before && self.reserve.borrow().is_none();
        assert_eq!(
            after.emergencies,
            before.emergencies + collected as u64,
            "an emergency counts exactly when the hook freed something"
        );
        if let Some(limit) = after.limit
            && after.live > before.live
        {
            assert!(after.live <= limit, "grew to {} past {limit}", after.live);
        }
        if self.gc_hook {
            assert!(!self.heap.gc_step_due(), "the GC-step hook paid its debt");
        }
        let s = self.heap.stats();
        assert!(s.peak >= s.live);
    }

    /// Frees everything, as `lua_close` does.
    fn close(&mut self) {
        for b in std::mem::take(&mut self.live) {
            // SAFETY: live with its size and pattern; freed once.
            unsafe {
                verify(b.p, b.size, b.seed, "contents at close");
                self.heap.free(b.p.as_ptr(), b.size);
            }
        }
        if let Some((p, size)) = self.reserve.borrow_mut().take() {
            // SAFETY: the reserve block is live with `size` bytes and freed once.
            unsafe { self.heap.free(p as *mut u8, size) };
        }
        assert_eq!(self.heap.total_bytes(), 0, "0 live bytes at the end");
    }
}

#[derive(Debug)]
struct Snapshot {
    live: usize,
    failures: u64,
    emergencies: u64,
    limit: Option<usize>,
}

impl Snapshot {
    fn of<B: Backend>(h: &Heap<B>) -> Snapshot {
        let s = h.stats();
        Snapshot {
            live: s.live,
            failures: s.failures,
            emergencies: s.emergencies,
            limit: h.limit(),
        }
    }
}

/// Runs `ops` on a heap over `FaultInjection<B>` set up as `setup` says, then closes it.
fn run_ops<B: Backend>(
    backend: B,
    ops: &[Op],
    setup: &Setup,
    fail_shrinks: bool,
) -> FaultInjection<B> {
    let mut heap =
        Heap::new(FaultInjection::new(backend, FaultPlan::Never).fail_shrinks(fail_shrinks));
    heap.set_debt_convention(setup.convention);
    let reserve: Reserve = Rc::default();
    if setup.emergency_hook {
        let r = reserve.clone();
        heap.set_emergency_hook(Some(Box::new(move |h, _| {
            let taken = r.borrow_mut().take();
            match taken {
                Some((p, size)) => {
                    // SAFETY: the reserve block is live with `size` bytes; the test forgets it.
                    unsafe { h.free(p as *mut u8, size) };
                    Collect::Collected
                }
                None => Collect::CannotCollect,
            }
        })));
    }
    let steps = Rc::new(Cell::new(0u64));
    if setup.gc_hook {
        let n = steps.clone();
        heap.set_gc_threshold(4096);
        heap.set_gc_step_hook(Some(Box::new(move |h| {
            n.set(n.get() + 1);
            h.set_gc_threshold(1 + (n.get() as usize % 7) * 1000);
        })));
    }
    let mut run = Run {
        heap: &mut heap,
        live: Vec::new(),
        reserve,
        seed: 0,
        shrinks_may_fail: fail_shrinks,
        plan_active: false,
        gc_hook: setup.gc_hook,
    };
    for op in ops {
        run.step(op);
    }
    run.close();
    heap.into_backend()
}

/// Runs `ops` over `Checker::strict(backend)` and checks the checker is clean at the end.
fn run_checked<B: Backend>(backend: B, ops: &[Op], setup: &Setup) {
    let fi = run_ops(Checker::strict(backend), ops, setup, false);
    let checker = fi.inner();
    assert!(checker.is_clean(), "{}", checker.report());
    assert_eq!(checker.live_bytes(), 0);
}

/// The same run at the backend's static type.
struct Checked<'a>(&'a [Op], &'a Setup);

impl Visit for Checked<'_> {
    type Output = ();
    fn visit<B: Backend + 'static>(self, backend: B) {
        run_checked(backend, self.0, self.1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(40)))]

    #[test]
    fn heap_ops_checked_on_every_backend(
        ops in prop::collection::vec(op(), 1..160),
        setup in setup(),
    ) {
        for name in backends::names() {
            if setup.static_type {
                backends::with_backend(name, Checked(&ops, &setup)).expect("compiled in");
            } else {
                run_checked(backends::AnyBackend::by_name(name).expect("compiled in"), &ops, &setup);
            }
        }
    }

    #[test]
    fn heap_ops_raw_on_every_backend(
        ops in prop::collection::vec(op(), 1..160),
        setup in setup(),
        fail_shrinks in any::<bool>(),
    ) {
        // No checker in between: every absurd size reaches the backend itself.
        for name in backends::names() {
            run_ops(backends::AnyBackend::by_name(name).expect("compiled in"), &ops, &setup, fail_shrinks);
        }
    }
}

/// Every absurd size through every entry point on every backend, deterministically: the exact
/// error, the heap untouched, a live block intact.
#[test]
fn absurd_sizes_on_every_backend_every_entry_point() {
    for name in backends::names() {
        for checked in [false, true] {
            let b = backends::AnyBackend::by_name(name).expect("compiled in");
            let b: Box<dyn Backend> = if checked {
                Box::new(Checker::strict(b))
            } else {
                Box::new(b)
            };
            let mut h = Heap::new(b);
            let p = h.try_malloc(100, Tag::Table).unwrap();
            // SAFETY: `p` has 100 writable bytes.
            unsafe { fill(NonNull::new(p).unwrap(), 100, 7) };
            let mut failures = 0;
            for size in ABSURD {
                let e = h.try_malloc(size, Tag::String).unwrap_err();
                assert_eq!(
                    e,
                    MemError::OutOfMemory { requested: size },
                    "{name} {size}"
                );
                // SAFETY: `p` is live with 100 bytes; the failed grow leaves it so.
                let e = unsafe { h.try_realloc(p, 100, size) }.unwrap_err();
                assert_eq!(
                    e,
                    MemError::OutOfMemory { requested: size },
                    "{name} {size}"
                );
                // SAFETY: as above, through the lua_Alloc contract.
                assert!(unsafe { h.lua_alloc(p, 100, size) }.is_null());
                // SAFETY: a new block: 5 is the type (table).
                assert!(unsafe { h.lua_alloc(ptr::null_mut(), 5, size) }.is_null());
                failures += 4;
                h.set_limit(Some(1000));
                let e = h.try_malloc(size, Tag::String).unwrap_err();
                assert!(matches!(
                    e,
                    MemError::LimitExceeded {
                        limit: 1000,
                        live: 100,
                        ..
                    }
                ));
                h.set_limit(None);
                failures += 1;
                for n in [size, size / 2 + 1] {
                    let too_big = |e: MemError, s| {
                        let fits = n.checked_mul(s).is_some_and(|x| x <= MAX_SIZE);
                        assert!(fits || e == MemError::BlockTooBig { n, size: s }, "{e:?}");
                        fits as u64
                    };
                    failures += too_big(h.try_new_vector::<u64>(n, Tag::Other).unwrap_err(), 8);
                    failures += too_big(h.try_new_vector::<Wide>(n, Tag::Other).unwrap_err(), 24);
                    // SAFETY: `p` is a vector of 100 bytes; a failure leaves it so.
                    let e = unsafe { h.try_realloc_vector::<u8>(p, 100, n) }.unwrap_err();
                    failures += too_big(e, 1);
                }
                assert_eq!(h.stats().live, 100, "{name}: nothing changed");
                assert_eq!(h.stats().failures, failures, "{name}: {size}");
            }
            // SAFETY: still 100 bytes of pattern 7.
            unsafe { verify(NonNull::new(p).unwrap(), 100, 7, "after absurd requests") };
            // SAFETY: live with 100 bytes.
            unsafe { h.free(p, 100) };
            assert_eq!(h.stats().live, 0);
        }
    }
}
