//! The allocation function driven through the raw C function pointer as Lua calls it: the typed
//! [`LuaAllocator`], and the [`Allocator`] whose pair changes (details, swaps, settling) between
//! calls, as `lua_setallocf` would hand it to Lua.

use lmem::backends::System;
use lmem::{
    Allocator, Backend, Checker, Detailed, ExactBackend, FaultInjection, FaultPlan, Install, Layer,
    LuaAlloc, LuaAllocator, Monitor, Registry, Swap, Tag,
};
use lmem_backend::conformance::lua_alloc_contract;
use std::ffi::c_void;
use std::ptr::null_mut;

/// Calls `f` as Lua would: `f(ud, ptr, osize, nsize)`.
fn call(f: LuaAlloc, ud: *mut c_void, p: *mut c_void, o: usize, n: usize) -> *mut c_void {
    // SAFETY: every caller passes null or a live block with its size, for this `ud`.
    unsafe { f(ud, p, o, n) }
}

/// What Lua holds: the pair, replaced when the host hands it a new one.
struct Lua(LuaAlloc, *mut c_void);

impl Lua {
    fn of(a: &Allocator) -> Lua {
        Lua(a.function(), a.ud())
    }
    /// `lua_setallocf`.
    fn setallocf(&mut self, i: Option<Install>) {
        if let Some(i) = i {
            *self = Lua(i.function, i.ud);
        }
    }
    fn call(&self, p: *mut c_void, o: usize, n: usize) -> *mut c_void {
        call(self.0, self.1, p, o, n)
    }
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
fn the_contract_holds_through_the_c_function_pointer() {
    let a = LuaAllocator::new(Layer::<_, Detailed>::with_accounting(System::new()));
    // SAFETY: `a` lives for the whole call and nothing else uses it.
    unsafe { lua_alloc_contract(a.function(), a.ud()) };
    // SAFETY: no allocation is running.
    let layer = unsafe { a.enter() };
    assert_eq!(layer.stats().live, 0);
    assert!(
        layer.stats().by_tag[Tag::String.index()].count >= 40,
        "osize 4 was read as a tag"
    );
}

#[test]
fn the_contract_holds_on_every_wrapper_through_the_function() {
    fn check<B: Backend>(b: B) {
        let a = LuaAllocator::new(Layer::new(b));
        // SAFETY: `a` lives for the whole call and nothing else uses it.
        unsafe { lua_alloc_contract(a.function(), a.ud()) };
        // SAFETY: no allocation is running.
        assert_eq!(unsafe { a.enter() }.live(), 0);
    }
    check(Checker::strict(System::new()));
    check(Monitor::new(System::new()));
    check(lmem::Tracking::new(System::new()));
    check(Registry::new(System::new()));
    check(Swap::new(System::new()));
}

#[test]
fn a_panic_becomes_null_and_never_unwinds_into_c() {
    // A strict Checker panics on a bad free; through the function that must come out as NULL.
    let a = LuaAllocator::new(Layer::new(Checker::strict(System::new())));
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
    let a = LuaAllocator::new(Layer::new(FaultInjection::new(
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
    let stats = unsafe { a.enter() }.stats();
    assert_eq!((stats.live, stats.failures), (0, 2));
}

#[test]
fn the_limit_through_the_function() {
    let a = Allocator::new("system").unwrap();
    // SAFETY: no allocation is running.
    unsafe { a.enter() }.set_limit(Some(1000));
    let lua = Lua::of(&a);
    let p = lua.call(null_mut(), 0, 900);
    assert!(lua.call(null_mut(), 0, 200).is_null());
    let q = lua.call(p, 900, 100);
    assert!(!q.is_null(), "a shrink never fails");
    assert!(lua.call(q, 100, 0).is_null());
    // SAFETY: no allocation is running.
    let s = unsafe { a.enter() };
    assert_eq!((s.live(), s.stats().failures), (0, 1));
}

#[test]
fn only_one_guard_at_a_time() {
    let a = Allocator::new("system").unwrap();
    // SAFETY: no allocation is running.
    let s = unsafe { a.enter() };
    // SAFETY: as above (the second session is refused before it could alias the first).
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { a.enter() }));
    assert!(second.is_err(), "a second session must be refused");
    drop(s);
    // SAFETY: no allocation is running, and the first session is gone.
    drop(unsafe { a.enter() });
}

/// The lean path: no details, and the pair is monomorphic for the backend (two allocators of
/// one backend share the function, two backends do not).
#[test]
fn the_lean_path_counts_only_live_bytes_under_the_checker() {
    let a = Allocator::from_backend(Box::new(Checker::strict(System::new())) as Box<dyn Backend>);
    let lua = Lua::of(&a);
    // SAFETY: `a` lives for the whole call and nothing else uses it.
    unsafe { lua_alloc_contract(lua.0, lua.1) };
    let p = lua.call(null_mut(), 5, 56);
    // SAFETY: no allocation is running.
    let s = unsafe { a.enter() };
    assert_eq!(s.live(), 56);
    assert!(!s.is_detailed() && !s.stats().detailed && s.stats().peak == 0);
    drop(s);
    assert!(lua.call(p, 56, 0).is_null());
    let (x, y) = (
        Allocator::new("system").unwrap(),
        Allocator::new("system").unwrap(),
    );
    assert_eq!(x.function() as usize, y.function() as usize);
    assert_ne!(x.ud(), y.ud());
}

#[test]
fn details_on_request_count_from_then_on() {
    let a = Allocator::new("system").unwrap();
    let mut lua = Lua::of(&a);
    let early = lua.call(null_mut(), 4, 100);
    // SAFETY: no allocation is running.
    let install = unsafe { a.enter() }.count_details();
    assert!(install.is_some(), "details need another function");
    lua.setallocf(install);
    assert_eq!(lua.0 as usize, a.function() as usize);
    let t = lua.call(null_mut(), 5, 56);
    // SAFETY: no allocation is running.
    let mut s = unsafe { a.enter() };
    assert!(s.count_details().is_none(), "already counting");
    let st = s.stats();
    assert!(st.detailed);
    assert_eq!((st.live, st.uncounted, st.allocations()), (156, 100, 1));
    assert_eq!(st.by_tag[Tag::Table.index()].count, 1);
    assert_eq!(st.peak, 156);
    drop(s);
    // The block made before counting is freed through the new function like any other.
    assert!(lua.call(early, 100, 0).is_null());
    assert!(lua.call(t, 56, 0).is_null());
    // SAFETY: no allocation is running.
    assert_eq!(unsafe { a.enter() }.live(), 0);
}

#[test]
fn hot_swap_through_setallocf_routes_every_block_home_under_the_checker() {
    // The first backend is a strict checker (it panics -> NULL on a block it did not make); the
    // next one too, exact by its type.
    let first: Box<dyn Backend> = Box::new(Checker::strict(System::new()));
    let a = Allocator::from_backend(first);
    let mut lua = Lua::of(&a);
    let old: Vec<_> = (0..50)
        .map(|i| (lua.call(null_mut(), 5, 16 + i), 16 + i))
        .collect();
    for &(p, n) in &old {
        fill(p, n, 1);
    }
    // SAFETY: no allocation is running.
    let mut s = unsafe { a.enter() };
    let install = s.swap_to(ExactBackend::new(Checker::strict(System::new())));
    assert!(
        install.is_some(),
        "the lean function cannot route: a new pair"
    );
    assert!(s.is_routing());
    assert_eq!(s.backend(), "checker(system)");
    drop(s);
    lua.setallocf(install);
    let new: Vec<_> = (0..50)
        .map(|i| (lua.call(null_mut(), 4, 8 + i), 8 + i))
        .collect();
    for &(p, n) in &new {
        fill(p, n, 2);
    }
    let mut old2 = Vec::new();
    for (p, n) in old {
        let q = lua.call(p, n, n * 3);
        assert!(
            !q.is_null(),
            "a retired backend's block resizes in that backend"
        );
        assert!(holds(q, n, 1));
        old2.push((q, n * 3));
    }
    // A second swap while routing keeps the routing function.
    // SAFETY: no allocation is running.
    let mut s = unsafe { a.enter() };
    assert!(
        s.swap_to(ExactBackend::new(Registry::new(System::new())))
            .is_none()
    );
    assert_eq!(s.swaps(), 2);
    drop(s);
    let third = lua.call(null_mut(), 6, 40);
    for (p, n) in old2 {
        assert!(lua.call(p, n, 0).is_null());
    }
    for (p, n) in new {
        assert!(holds(p, n, 2));
        assert!(lua.call(p, n, 0).is_null());
    }
    // Every retired backend has drained: settle hands Lua the lean function of the one in use.
    // SAFETY: no allocation is running.
    let mut s = unsafe { a.enter() };
    assert_eq!(s.live(), 40);
    let back = s.settle();
    assert!(back.is_some(), "drained: back to the lean path");
    assert!(!s.is_routing());
    assert_eq!(s.swaps(), 2, "the count survives settling");
    assert!(s.settle().is_none());
    drop(s);
    lua.setallocf(back);
    assert!(lua.call(third, 40, 0).is_null());
    // SAFETY: no allocation is running.
    assert_eq!(unsafe { a.enter() }.live(), 0);
}

#[test]
fn the_return_to_the_lean_path_waits_for_the_last_old_block() {
    for name in lmem::backends::names() {
        let a = Allocator::new(name).unwrap();
        let lean = a.function() as usize;
        let mut lua = Lua::of(&a);
        let old = lua.call(null_mut(), 5, 64);
        let target = if lmem::backends::is_compiled("slab") {
            "slab"
        } else {
            "system"
        };
        // SAFETY: no allocation is running.
        let i = unsafe { a.enter() }.swap_to_name(target).unwrap();
        lua.setallocf(i);
        assert_ne!(
            lua.0 as usize, lean,
            "{name}: routing while the old block lives"
        );
        let new = lua.call(null_mut(), 5, 64);
        // SAFETY: no allocation is running.
        let early = unsafe { a.enter() }.settle();
        assert!(early.is_none(), "{name}: one old block left");
        assert!(lua.call(old, 64, 0).is_null());
        // SAFETY: no allocation is running.
        let back = unsafe { a.enter() }.settle();
        lua.setallocf(back);
        // SAFETY: as above.
        assert!(!unsafe { a.enter() }.is_routing(), "{name}");
        assert!(lua.call(new, 64, 0).is_null());
        // SAFETY: as above.
        assert_eq!(unsafe { a.enter() }.live(), 0, "{name}");
    }
}

#[test]
fn scheduled_swaps_happen_after_n_allocations() {
    let a = Allocator::new("system").unwrap();
    // SAFETY: no allocation is running (no state yet: the pair is read afterwards).
    let mut s = unsafe { a.enter() };
    let _ = s.schedule(3, ExactBackend::new(Monitor::new(System::new())));
    let _ = s.schedule(5, ExactBackend::new(Checker::strict(System::new())));
    drop(s);
    let lua = Lua::of(&a);
    let blocks: Vec<_> = (0..8).map(|_| lua.call(null_mut(), 0, 24)).collect();
    // SAFETY: no allocation is running.
    let mut s = unsafe { a.enter() };
    assert_eq!(s.swaps(), 2);
    assert_eq!(s.backend(), "checker(system)");
    assert!(s.settle().is_none(), "blocks of the first two remain");
    drop(s);
    for p in blocks {
        assert!(lua.call(p, 24, 0).is_null());
    }
    // SAFETY: no allocation is running.
    let mut s = unsafe { a.enter() };
    assert!(s.settle().is_some());
    assert_eq!((s.live(), s.swaps()), (0, 2));
}

#[test]
fn any_number_of_swap_targets_by_name_are_accepted() {
    // Every swap target is exact by its type (a Registry where the backend cannot tell), so a
    // chain of blind backends is never built and never refused.
    let mut s = Swap::new(System::new());
    let mut live = Vec::new();
    for _ in 0..4 {
        live.push((s.allocate(64, Tag::Other).unwrap(), 64));
        s.swap_to(ExactBackend::by_name("system").unwrap());
    }
    assert_eq!(s.retired_names().len(), 4);
    for (p, n) in live {
        // SAFETY: live blocks with their sizes, each routed to the member that made it.
        unsafe { s.deallocate(p, n) };
    }
    assert!(s.retired_names().is_empty());
}

#[test]
fn taking_over_a_running_pair_frees_its_blocks_through_it() {
    // Another allocator's pair (a strict checker behind an lmem function) stands for a stock
    // interpreter's `l_alloc`: it made two blocks before the take-over.
    let theirs = LuaAllocator::new(Layer::new(Checker::strict(System::new())));
    let (tf, tud) = theirs.raw();
    let a1 = call(tf, tud, null_mut(), 5, 100);
    let a2 = call(tf, tud, null_mut(), 4, 20);
    // SAFETY: the pair outlives the allocator below and keeps the contract.
    let foreign = unsafe { lmem::ForeignAlloc::new(tf, tud) };
    let a = Allocator::take_over(lmem::AnyBackend::new(foreign), 120);
    let mut lua = Lua::of(&a);
    // SAFETY: no allocation is running.
    lua.setallocf(unsafe { a.enter() }.swap_to_name("system").unwrap());
    let mine = lua.call(null_mut(), 5, 64);
    let a1 = lua.call(a1, 100, 200);
    assert!(!a1.is_null(), "their block resized by them");
    assert!(lua.call(a2, 20, 0).is_null());
    assert!(lua.call(a1, 200, 0).is_null());
    // SAFETY: no allocation is running.
    let theirs_live = unsafe { theirs.enter() }.live();
    assert_eq!(theirs_live, 0, "every block went back to them");
    // SAFETY: as above.
    let mut s = unsafe { a.enter() };
    assert_eq!(s.live(), 64);
    let back = s.settle();
    assert!(
        back.is_some(),
        "their blocks are gone: the lean path of the new backend"
    );
    drop(s);
    lua.setallocf(back);
    assert!(lua.call(mine, 64, 0).is_null());
}
