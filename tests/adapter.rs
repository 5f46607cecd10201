//! The `lua_Alloc` adapter driven through the raw C function pointer as Lua calls it, and hot
//! swap behind a live function pointer.

use lmem::backends::System;
use lmem::{
    Backend, Checker, FaultInjection, FaultPlan, Heap, LuaAlloc, LuaAllocator, Monitor, Registry,
    Swap, SwapError, Tag,
};
use lmem_backend::conformance::lua_alloc_contract;
use std::ffi::c_void;
use std::ptr::null_mut;

/// Calls `f` as Lua would: `f(ud, ptr, osize, nsize)`.
fn call(f: LuaAlloc, ud: *mut c_void, p: *mut c_void, o: usize, n: usize) -> *mut c_void {
    // SAFETY: every caller passes null or a live block with its size, for this `ud`.
    unsafe { f(ud, p, o, n) }
}

#[test]
fn the_contract_holds_through_the_c_function_pointer() {
    let a = LuaAllocator::new(Heap::new(System::new()));
    // SAFETY: `a` lives for the whole call and nothing else uses it.
    unsafe { lua_alloc_contract(a.function(), a.ud()) };
    // SAFETY: no allocation is running.
    let heap = unsafe { a.heap() };
    assert_eq!(heap.stats().live, 0);
    assert!(
        heap.stats().by_tag[Tag::String.index()].count >= 40,
        "osize 4 was read as a tag"
    );
}

#[test]
fn the_contract_holds_on_every_wrapper_through_the_adapter() {
    fn check<B: Backend>(b: B) {
        let a = LuaAllocator::new(Heap::new(b));
        // SAFETY: `a` lives for the whole call and nothing else uses it.
        unsafe { lua_alloc_contract(a.function(), a.ud()) };
        // SAFETY: no allocation is running.
        assert_eq!(unsafe { a.heap() }.stats().live, 0);
    }
    check(Checker::strict(System::new()));
    check(Monitor::new(System::new()));
    check(lmem::Tracking::new(System::new()));
    check(Registry::new(System::new()));
    check(Swap::new(Box::new(System::new())));
}

#[test]
fn a_panic_becomes_null_and_never_unwinds_into_c() {
    // A strict Checker panics on a bad free; through the adapter that must come out as NULL.
    let a = LuaAllocator::new(Heap::new(Checker::strict(System::new())));
    let (f, ud) = a.raw();
    let p = call(f, ud, null_mut(), 0, 32);
    assert!(!p.is_null());
    let mut local = [0u8; 32];
    let r = call(f, ud, local.as_mut_ptr().cast(), 32, 64);
    assert!(r.is_null(), "the checker's panic must become NULL");
    assert!(call(f, ud, p, 32, 0).is_null());
}

#[test]
fn out_of_memory_is_null_and_the_block_survives() {
    let a = LuaAllocator::new(Heap::new(FaultInjection::new(
        System::new(),
        FaultPlan::From(2),
    )));
    let (f, ud) = a.raw();
    let p = call(f, ud, null_mut(), 5, 16).cast::<u8>();
    // SAFETY: 16 writable bytes.
    unsafe { p.write_bytes(0x42, 16) };
    assert!(call(f, ud, null_mut(), 5, 16).is_null());
    assert!(call(f, ud, p.cast(), 16, 1 << 20).is_null());
    // SAFETY: the failed grow left the block as it was.
    let kept = unsafe { std::slice::from_raw_parts(p, 16) };
    assert!(kept.iter().all(|&b| b == 0x42));
    // A shrink still works, and the free.
    let q = call(f, ud, p.cast(), 16, 8);
    assert!(!q.is_null());
    assert!(call(f, ud, q, 8, 0).is_null());
    // SAFETY: no allocation is running.
    let stats = unsafe { a.heap() }.stats().clone();
    assert_eq!((stats.live, stats.failures), (0, 2));
}

#[test]
fn the_limit_through_the_adapter() {
    let a = LuaAllocator::new(Heap::new(System::new()));
    // SAFETY: no allocation is running and no other reference to the heap lives.
    unsafe { a.heap_mut() }.set_limit(Some(1000));
    let (f, ud) = a.raw();
    let p = call(f, ud, null_mut(), 0, 900);
    assert!(call(f, ud, null_mut(), 0, 200).is_null());
    let q = call(f, ud, p, 900, 100);
    assert!(!q.is_null(), "a shrink never fails");
    assert!(call(f, ud, q, 100, 0).is_null());
}

fn fill(p: *mut c_void, n: usize, v: u8) {
    // SAFETY: callers pass live blocks of `n` bytes.
    unsafe { p.cast::<u8>().write_bytes(v, n) }
}

fn holds(p: *mut c_void, n: usize, v: u8) -> bool {
    // SAFETY: callers pass live blocks of `n` bytes.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }
        .iter()
        .all(|&b| b == v)
}

#[test]
fn hot_swap_mid_sequence_through_the_raw_pointer() {
    // Monitor answers ownership exactly; the chain ends on a Registry-wrapped System.
    let a = LuaAllocator::new(Heap::new(Swap::new(Box::new(Monitor::new(System::new())))));
    let (f, ud) = a.raw();
    let old: Vec<_> = (0..50)
        .map(|i| (call(f, ud, null_mut(), 5, 16 + i), 16 + i))
        .collect();
    for &(p, n) in &old {
        fill(p, n, 1);
    }
    // SAFETY: no allocation is running; no other reference to the heap lives.
    let swap = unsafe { a.heap_mut() }.backend_mut();
    swap.swap_to(Box::new(Checker::strict(System::new())))
        .unwrap();
    assert_eq!(swap.current_name(), "checker(system)");
    assert_eq!(swap.retired_names(), ["monitor(system)"]);
    // The same function pointer: new blocks from the new backend, old ones still served by the
    // old one (a strict Checker would panic -> NULL on a foreign block).
    let new: Vec<_> = (0..50)
        .map(|i| (call(f, ud, null_mut(), 4, 8 + i), 8 + i))
        .collect();
    for &(p, n) in &new {
        fill(p, n, 2);
    }
    let mut old2 = Vec::new();
    for (p, n) in old {
        let q = call(f, ud, p, n, n * 3);
        assert!(
            !q.is_null(),
            "a retired backend's block resizes in that backend"
        );
        assert!(holds(q, n, 1));
        old2.push((q, n * 3));
    }
    // SAFETY: as above.
    let swap = unsafe { a.heap_mut() }.backend_mut();
    swap.swap_to(Box::new(Registry::new(System::new())))
        .unwrap();
    assert_eq!(swap.retired_names().len(), 2);
    let third = call(f, ud, null_mut(), 6, 40);
    for (p, n) in old2 {
        assert!(call(f, ud, p, n, 0).is_null());
    }
    // SAFETY: as above.
    let swap = unsafe { a.heap().backend() };
    assert_eq!(
        swap.retired_names(),
        ["checker(system)"],
        "monitor dropped at 0 live bytes"
    );
    for (p, n) in new {
        assert!(holds(p, n, 2));
        assert!(call(f, ud, p, n, 0).is_null());
    }
    // SAFETY: as above.
    assert!(unsafe { a.heap().backend() }.retired_names().is_empty());
    assert!(call(f, ud, third, 40, 0).is_null());
    // SAFETY: as above.
    let heap = unsafe { a.heap() };
    assert_eq!(heap.stats().live, 0);
    assert_eq!(heap.backend().swaps(), 2);
}

#[test]
fn a_swap_that_could_misroute_is_refused() {
    let mut s = Swap::new(Box::new(System::new()));
    let p = s.allocate(32, Tag::Other).unwrap();
    // System cannot tell its blocks; neither can another System.
    let err = s.swap_to(Box::new(System::new())).unwrap_err();
    assert!(matches!(&err, SwapError::AmbiguousOwnership { blind, .. } if blind.len() == 2));
    assert!(err.to_string().contains("cannot swap to system"), "{err}");
    assert_eq!(s.swaps(), 0, "a refused swap changes nothing");
    // An exact backend is fine; after that, another blind one is refused while System lives.
    s.swap_to(Box::new(Registry::new(System::new()))).unwrap();
    assert!(s.swap_to(Box::new(System::new())).is_err());
    // SAFETY: `p` is live with 32 bytes; it is routed to the retired System.
    unsafe { s.deallocate(p, 32) };
    assert!(
        s.retired_names().is_empty(),
        "System dropped with its last block"
    );
    s.swap_to(Box::new(System::new()))
        .expect("no blind member is live any more");
}

#[test]
fn scheduled_swaps_happen_after_n_allocations() {
    let a = LuaAllocator::new(Heap::new(Swap::new(Box::new(System::new()))));
    // SAFETY: no allocation is running; no other reference to the heap lives.
    let swap = unsafe { a.heap_mut() }.backend_mut();
    swap.schedule(3, Box::new(Monitor::new(System::new())))
        .unwrap();
    swap.schedule(5, Box::new(Checker::strict(System::new())))
        .unwrap();
    assert!(
        swap.schedule(9, Box::new(System::new())).is_err(),
        "a second blind member"
    );
    let (f, ud) = a.raw();
    let blocks: Vec<_> = (0..8).map(|_| call(f, ud, null_mut(), 0, 24)).collect();
    // SAFETY: no allocation is running.
    let swap = unsafe { a.heap() }.backend();
    assert_eq!(swap.swaps(), 2);
    assert_eq!(swap.current_name(), "checker(system)");
    for p in blocks {
        assert!(call(f, ud, p, 24, 0).is_null());
    }
    // SAFETY: as above.
    assert!(unsafe { a.heap() }.backend().retired_names().is_empty());
}

#[test]
fn swap_targets_made_exact_are_never_refused() {
    assert!(!lmem::tells_ownership(&System::new()));
    assert!(lmem::tells_ownership(&lmem::with_exact_ownership(
        Box::new(System::new())
    )));
    let mut s = Swap::new(Box::new(System::new()));
    let mut live = Vec::new();
    for round in 0..4 {
        live.push((s.allocate(64, Tag::Other).unwrap(), 64));
        s.swap_to(lmem::with_exact_ownership(Box::new(System::new())))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert_eq!(s.retired_names().len(), 4);
    for (p, n) in live {
        // SAFETY: live blocks with their sizes, each routed to the member that made it.
        unsafe { s.deallocate(p, n) };
    }
    assert!(s.retired_names().is_empty());
}
