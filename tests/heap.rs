//! The core heap: every error message, limit and hook path, growth and shrink rules, accounting.

use lmem::{Collect, DebtConvention, Heap, MemError, Tag, backends::System, wrap::FaultPlan};
use lmem::{FaultInjection, MIN_VECTOR};
use std::cell::Cell;
use std::rc::Rc;

fn heap() -> Heap<System> {
    Heap::new(System::new())
}

#[test]
fn messages_are_luas_own() {
    assert_eq!(
        MemError::OutOfMemory { requested: 1 }.to_string(),
        "not enough memory"
    );
    let limit = MemError::LimitExceeded {
        requested: 1,
        live: 2,
        limit: 3,
    };
    assert_eq!(limit.to_string(), "not enough memory");
    assert_eq!(
        MemError::BlockTooBig {
            n: usize::MAX,
            size: 8
        }
        .to_string(),
        "memory allocation error: block too big"
    );
    assert_eq!(
        MemError::TooMany {
            what: "constants",
            limit: 42
        }
        .to_string(),
        "too many constants (limit is 42)"
    );
}

#[test]
fn accounting_follows_every_successful_call_and_only_those() {
    let mut h = heap();
    let a = h.try_malloc(100, Tag::Table).unwrap();
    let b = h.try_malloc(30, Tag::String).unwrap();
    assert_eq!(h.stats().live, 130);
    // SAFETY: `a` is a live block of 100 bytes.
    let a = unsafe { h.try_realloc(a, 100, 400) }.unwrap();
    assert_eq!(h.stats().live, 430);
    assert_eq!(h.stats().peak, 430);
    // SAFETY: `a` is live with 400 bytes.
    let a = unsafe { h.try_realloc(a, 400, 10) }.unwrap();
    assert_eq!(h.stats().live, 40);
    assert_eq!(h.stats().peak, 430);
    // A failure changes nothing but the failure count.
    let before = h.stats().clone();
    // SAFETY: `b` is live with 30 bytes.
    let err = unsafe { h.try_realloc(b, 30, usize::MAX / 2) }.unwrap_err();
    assert_eq!(
        err,
        MemError::OutOfMemory {
            requested: usize::MAX / 2
        }
    );
    assert_eq!(h.stats().failures, before.failures + 1);
    assert_eq!(h.stats().live, before.live);
    assert_eq!(h.stats().resizes, before.resizes);
    // SAFETY: live blocks with their sizes.
    unsafe {
        h.free(a, 10);
        h.free(b, 30);
    }
    let s = h.stats();
    assert_eq!((s.live, s.allocations(), s.frees, s.resizes), (0, 2, 2, 2));
    assert_eq!(s.by_tag[Tag::Table.index()].count, 1);
    assert_eq!(s.by_tag[Tag::Table.index()].bytes, 100);
    assert_eq!(s.by_tag[Tag::String.index()].bytes, 30);
    assert_eq!(s.bytes_allocated(), 130 + 300);
    assert_eq!(s.histogram.coarse(), [1, 1, 0]);
    let report = s.to_string();
    assert!(
        report.contains("table") && report.contains("string"),
        "{report}"
    );
}

#[test]
fn realloc_of_null_allocates_and_of_zero_frees() {
    let mut h = heap();
    // SAFETY: null with osize 0.
    let p = unsafe { h.try_realloc(std::ptr::null_mut(), 0, 24) }.unwrap();
    assert!(!p.is_null());
    // SAFETY: `p` is live with 24 bytes.
    let q = unsafe { h.try_realloc(p, 24, 0) }.unwrap();
    assert!(q.is_null());
    // SAFETY: null with 0: nothing to do.
    let none = unsafe { h.try_realloc(std::ptr::null_mut(), 0, 0) };
    assert!(none.unwrap().is_null());
    assert_eq!(h.try_malloc(0, Tag::Other).unwrap(), std::ptr::null_mut());
    assert_eq!(h.stats().live, 0);
    assert_eq!(h.stats().allocations(), 1);
}

#[test]
fn lua_alloc_takes_osize_as_a_tag_for_new_blocks() {
    let mut h = heap();
    // SAFETY: ptr null: osize 5 is LUA_TTABLE.
    let p = unsafe { h.lua_alloc(std::ptr::null_mut(), 5, 56) };
    assert!(!p.is_null());
    assert_eq!(h.stats().live, 56, "the tag must not be counted as a size");
    assert_eq!(h.stats().by_tag[Tag::Table.index()].count, 1);
    // SAFETY: live block of 56 bytes; free of null is a no-op.
    unsafe {
        assert!(h.lua_alloc(p, 56, 0).is_null());
        assert!(h.lua_alloc(std::ptr::null_mut(), 7, 0).is_null());
    }
    assert_eq!(h.stats().live, 0);
    // SAFETY: null pointer, failure is NULL.
    assert!(unsafe { h.lua_alloc(std::ptr::null_mut(), 4, usize::MAX) }.is_null());
}

#[test]
fn the_limit_fails_growth_softly_and_never_a_shrink_or_free() {
    let mut h = heap();
    h.set_limit(Some(1000));
    let a = h.try_malloc(600, Tag::Other).unwrap();
    let err = h.try_malloc(500, Tag::Other).unwrap_err();
    assert_eq!(
        err,
        MemError::LimitExceeded {
            requested: 500,
            live: 600,
            limit: 1000
        }
    );
    assert_eq!(err.to_string(), "not enough memory");
    // SAFETY: `a` is live with 600 bytes.
    assert!(unsafe { h.try_realloc(a, 600, 1001) }.is_err());
    // SAFETY: as above; a grow within the limit works, a shrink always does.
    let a = unsafe { h.try_realloc(a, 600, 1000) }.unwrap();
    h.set_limit(Some(10));
    // SAFETY: `a` is live with 1000 bytes.
    let a = unsafe { h.try_realloc(a, 1000, 900) }.unwrap();
    assert_eq!(h.stats().live, 900);
    // SAFETY: live with 900 bytes.
    unsafe { h.free(a, 900) };
    let small = h.try_malloc(10, Tag::Other).unwrap();
    assert!(!small.is_null());
    // SAFETY: live with 10 bytes.
    unsafe { h.free(small, 10) };
    h.set_limit(Some(0));
    assert!(
        h.try_malloc(1, Tag::Other).is_err(),
        "limit 0 fails every allocation"
    );
    assert_eq!(h.limit(), Some(0));
    h.set_limit(None);
    assert_eq!(h.limit(), None);
}

#[test]
fn emergency_hook_runs_once_then_the_request_is_retried() {
    // The hook frees a block held aside, as Lua's emergency collection frees garbage.
    let mut h = heap();
    h.set_limit(Some(1000));
    let garbage = h.try_malloc(800, Tag::Table).unwrap() as usize;
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    h.set_emergency_hook(Some(Box::new(move |heap: &mut Heap<System>, size| {
        seen.set(seen.get() + 1);
        if seen.get() == 1 {
            assert_eq!(size, 500);
            // SAFETY: `garbage` is a live block of 800 bytes, freed once.
            unsafe { heap.free(garbage as *mut u8, 800) };
        }
        Collect::Collected
    })));
    let p = h
        .try_malloc(500, Tag::Other)
        .expect("the retry after collection succeeds");
    assert_eq!(calls.get(), 1);
    assert_eq!(h.stats().emergencies, 1);
    assert_eq!(h.stats().live, 500);
    // A second failure: the hook frees nothing this time, so the retry fails too.
    let err = h.try_malloc(600, Tag::Other).unwrap_err();
    assert_eq!(
        err,
        MemError::LimitExceeded {
            requested: 600,
            live: 500,
            limit: 1000
        }
    );
    assert_eq!(calls.get(), 2, "one hook call per failed request");
    assert_eq!(h.stats().failures, 1);
    // SAFETY: live with 500 bytes.
    unsafe { h.free(p, 500) };
}

#[test]
fn emergency_hook_can_decline() {
    let mut h = FaultInjection::new(System::new(), FaultPlan::At(1));
    let mut heap = Heap::new(&mut h);
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    heap.set_emergency_hook(Some(Box::new(move |_: &mut Heap<_>, _| {
        seen.set(seen.get() + 1);
        Collect::CannotCollect
    })));
    assert_eq!(
        heap.try_malloc(16, Tag::Other),
        Err(MemError::OutOfMemory { requested: 16 })
    );
    assert_eq!(calls.get(), 1);
    assert_eq!(heap.stats().emergencies, 0);
    let p = heap
        .try_malloc(16, Tag::Other)
        .expect("only the first request fails");
    // SAFETY: live with 16 bytes.
    unsafe { heap.free(p, 16) };
}

#[test]
fn emergency_retry_succeeds_after_a_transient_failure() {
    let mut heap = Heap::new(FaultInjection::new(System::new(), FaultPlan::At(1)));
    heap.set_emergency_hook(Some(Box::new(|_: &mut Heap<_>, _| Collect::Collected)));
    let p = heap
        .try_malloc(64, Tag::Other)
        .expect("the retry is the second request");
    assert_eq!(heap.backend().injected(), 1);
    assert_eq!(heap.stats().failures, 0);
    // SAFETY: live with 64 bytes.
    unsafe { heap.free(p, 64) };
}

#[test]
fn gc_step_hook_runs_when_the_debt_crosses_the_threshold() {
    let mut h = heap();
    let steps = Rc::new(Cell::new(0));
    let seen = steps.clone();
    h.set_gc_threshold(1000);
    h.set_gc_step_hook(Some(Box::new(move |heap: &mut Heap<System>| {
        seen.set(seen.get() + 1);
        heap.set_gc_threshold(1000); // pay the debt
    })));
    let mut blocks = Vec::new();
    for _ in 0..10 {
        blocks.push(h.try_malloc(300, Tag::Other).unwrap());
    }
    // 3000 bytes in steps of 300 with a 1000-byte threshold: a step after 1200, 2400.
    assert_eq!(steps.get(), 2);
    for p in blocks {
        // SAFETY: live with 300 bytes.
        unsafe { h.free(p, 300) };
    }
    assert_eq!(steps.get(), 2, "frees never trigger a step");
}

#[test]
fn gc_debt_in_both_conventions() {
    let mut h = heap();
    h.set_gc_threshold(100);
    assert_eq!(h.gc_debt(), -100);
    let p = h.try_malloc(40, Tag::Other).unwrap();
    assert_eq!(h.gc_debt(), -60);
    assert!(!h.gc_step_due());
    h.set_debt_convention(DebtConvention::Lua55);
    assert_eq!(h.gc_debt(), 60, "5.5 counts what may still be allocated");
    h.set_gc_debt(0);
    assert!(h.gc_step_due(), "5.5 steps at zero");
    h.set_debt_convention(DebtConvention::Lua54);
    assert!(!h.gc_step_due(), "5.4 steps above zero");
    // SAFETY: live with 40 bytes.
    unsafe { h.free(p, 40) };
    assert_eq!(h.gc_debt(), -40);
}

#[test]
fn grow_vector_follows_growaux() {
    let mut h = heap();
    let mut size = 0usize;
    let mut v: *mut u64 = std::ptr::null_mut();
    let mut sizes = Vec::new();
    for n in 0..37usize {
        // SAFETY: `v` has room for `size` u64s; `n <= size`.
        v = unsafe { h.try_grow_vector(v, n, &mut size, 100, "things") }.unwrap();
        // SAFETY: room for `size > n` elements.
        unsafe { v.add(n).write(n as u64) };
        if sizes.last() != Some(&size) {
            sizes.push(size);
        }
    }
    assert_eq!(sizes, [MIN_VECTOR, 8, 16, 32, 64]);
    for n in 0..37 {
        // SAFETY: written above; growth keeps the prefix.
        assert_eq!(unsafe { v.add(n).read() }, n as u64);
    }
    assert_eq!(h.stats().live, 64 * 8);
    // Near the limit: clamp to it, then fail with Lua's message, leaving `size` alone.
    let mut n = 37;
    while n < 100 {
        // SAFETY: as above.
        v = unsafe { h.try_grow_vector(v, n, &mut size, 100, "things") }.unwrap();
        n += 1;
    }
    assert_eq!(
        size, 100,
        "64 >= 100/2, so the vector is clamped to the limit"
    );
    // SAFETY: as above.
    let err = unsafe { h.try_grow_vector(v, 100, &mut size, 100, "things") }.unwrap_err();
    assert_eq!(err.to_string(), "too many things (limit is 100)");
    assert_eq!(size, 100);
    // Shrink to what is used.
    // SAFETY: room for 100; 60 <= 100.
    v = unsafe { h.try_shrink_vector(v, &mut size, 60) }.unwrap();
    assert_eq!(size, 60);
    assert_eq!(h.stats().live, 60 * 8);
    // SAFETY: still holds the first 37 values.
    assert_eq!(unsafe { v.add(36).read() }, 36);
    // SAFETY: room for exactly 60.
    unsafe { h.free_array(v, 60) };
    assert_eq!(h.stats().live, 0);
}

#[test]
fn grow_vector_keeps_size_when_the_allocation_fails() {
    let mut heap = Heap::new(FaultInjection::new(System::new(), FaultPlan::At(2)));
    let mut size = 0;
    // SAFETY: null with size 0.
    let v: *mut u32 =
        unsafe { heap.try_grow_vector(std::ptr::null_mut(), 0, &mut size, 1000, "x") }.unwrap();
    assert_eq!(size, MIN_VECTOR);
    // SAFETY: room for 4; 4 in use forces a grow, which fails.
    let err = unsafe { heap.try_grow_vector(v, 4, &mut size, 1000, "x") }.unwrap_err();
    assert!(err.is_out_of_memory());
    assert_eq!(size, MIN_VECTOR, "the size is updated only after success");
    // SAFETY: room for 4.
    unsafe { heap.free_array(v, size) };
}

#[test]
fn vector_sizes_are_overflow_checked() {
    let mut h = heap();
    let err = h
        .try_new_vector::<u64>(usize::MAX / 4, Tag::Other)
        .unwrap_err();
    assert_eq!(
        err,
        MemError::BlockTooBig {
            n: usize::MAX / 4,
            size: 8
        }
    );
    assert_eq!(err.to_string(), "memory allocation error: block too big");
    let err = h
        .try_new_vector::<[u8; 16]>(usize::MAX / 16 + 1, Tag::Other)
        .unwrap_err();
    assert!(matches!(err, MemError::BlockTooBig { .. }));
    let v = h.try_new_vector::<u32>(10, Tag::Other).unwrap();
    // SAFETY: room for 10; growing to an absurd count is refused before any call.
    let err = unsafe { h.try_realloc_vector(v, 10, usize::MAX / 2) }.unwrap_err();
    assert!(matches!(err, MemError::BlockTooBig { .. }));
    assert!(h.try_new_vector::<u8>(0, Tag::Other).unwrap().is_null());
    // SAFETY: room for 10.
    unsafe { h.free_array(v, 10) };
    assert_eq!(h.stats().live, 0);
    assert_eq!(
        h.stats().failures,
        0,
        "overflow is caught before the backend is asked"
    );
}

#[test]
fn grow_vector_limit_is_capped_by_what_a_block_can_hold() {
    let mut h = heap();
    let mut size = usize::MAX / 32; // pretend: a vector this big cannot double
    // SAFETY: the request is refused before `v` is touched (the limit check fails first).
    let err = unsafe {
        h.try_grow_vector::<[u8; 16]>(std::ptr::null_mut(), size, &mut size, usize::MAX, "items")
    }
    .unwrap_err();
    assert!(
        matches!(err, MemError::TooMany { what: "items", .. }),
        "{err:?}"
    );
}

#[test]
fn typed_objects() {
    #[derive(Debug, PartialEq)]
    struct Node {
        key: u64,
        next: usize,
    }
    let mut h = heap();
    let n = h.try_new_object::<Node>(Tag::Table).unwrap();
    // SAFETY: room for one Node.
    unsafe { n.write(Node { key: 7, next: 0 }) };
    assert_eq!(h.stats().live, size_of::<Node>());
    // SAFETY: initialised above.
    assert_eq!(unsafe { n.as_ref() }.key, 7);
    // SAFETY: made by try_new::<Node>.
    unsafe { h.free_object(n) };
    assert_eq!(h.stats().live, 0);
}

#[test]
fn raising_variants_go_through_the_error_handler() {
    fn throw(e: &MemError) -> ! {
        std::panic::panic_any(format!("lua error: {e}"))
    }
    let mut h = heap();
    h.set_error_handler(throw);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        h.malloc(usize::MAX, Tag::Other);
    }));
    let msg = r.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*msg, "lua error: not enough memory");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        h.new_vector::<u64>(usize::MAX, Tag::Other);
    }));
    let msg = r.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*msg, "lua error: memory allocation error: block too big");
    let p = h.malloc(32, Tag::Other);
    // SAFETY: live with 32 bytes.
    let p = unsafe { h.saferealloc(p, 32, 64) };
    // SAFETY: live with 64 bytes.
    unsafe { h.free(p, 64) };
    assert_eq!(h.stats().live, 0);
}
