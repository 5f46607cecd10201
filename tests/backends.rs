//! The backends compiled in by feature, reached by name as a host would (`--backend NAME`):
//! each serves the `lua_Alloc` contract through the adapter and a heap, and each name maps to
//! the backend it says.

use lmem::backends::{ALL_NAMES, by_name, is_compiled, names};
use lmem::{Heap, LuaAllocator};
use lmem_backend::conformance::lua_alloc_contract;

#[test]
fn names_and_features_agree() {
    assert!(names().contains(&"system"));
    for name in ALL_NAMES {
        assert_eq!(by_name(name).is_some(), is_compiled(name), "{name}");
        if let Some(b) = by_name(name) {
            assert_eq!(b.name(), name);
        }
    }
    assert!(by_name("nope").is_none());
    assert!(!is_compiled("nope"));
}

#[test]
fn every_compiled_backend_serves_the_lua_alloc_contract() {
    for name in names() {
        let alloc = LuaAllocator::new(Heap::new(by_name(name).unwrap()));
        // SAFETY: `alloc` lives across the call and nothing else uses it.
        unsafe { lua_alloc_contract(alloc.function(), alloc.ud()) };
        // SAFETY: no allocation is running.
        assert_eq!(unsafe { alloc.heap() }.stats().live, 0, "{name}");
    }
}

#[test]
fn with_backend_runs_at_the_static_type() {
    struct Probe;
    impl lmem::backends::Visit for Probe {
        type Output = (String, usize);
        fn visit<B: lmem::Backend + 'static>(self, backend: B) -> (String, usize) {
            let mut heap = Heap::new(backend);
            let p = heap.try_malloc(100, lmem::Tag::Table).unwrap();
            let live = heap.stats().live;
            // SAFETY: live block of 100 bytes.
            unsafe { heap.free(p, 100) };
            (heap.backend().name().to_string(), live)
        }
    }
    for name in names() {
        let (got, live) = lmem::backends::with_backend(name, Probe).unwrap();
        assert_eq!((got.as_str(), live), (name, 100));
    }
    assert!(lmem::backends::with_backend("nope", Probe).is_none());
}

#[test]
fn any_backend_keeps_each_kind_and_its_contract() {
    use lmem::backends::AnyBackend;
    use lmem::{Backend, Ownership, Swap};
    use lmem_backend::conformance as kit;
    for name in ALL_NAMES {
        assert_eq!(
            AnyBackend::by_name(name).is_some(),
            is_compiled(name),
            "{name}"
        );
    }
    assert!(AnyBackend::by_name("nope").is_none());
    for name in names() {
        let mut b = AnyBackend::by_name(name).unwrap();
        assert_eq!(b.name(), name);
        // Compiled-in kinds are called through the enum, not a box.
        assert!(!matches!(b, AnyBackend::Dyn(_)), "{name}");
        kit::alignment(&mut b);
        kit::grow_keeps_prefix(&mut b);
        kit::shrink_keeps_prefix(&mut b);
        kit::no_overlap(&mut b);
        kit::tag_is_not_a_size(&mut b);
        kit::failure_leaves_block_intact(&mut b);
        kit::frees_never_fail(&mut b);
        kit::ownership_is_never_wrong(&mut b);
        kit::random_run(&mut b, 0xa11, 20_000);
        // Made exact for a swap: the same kind when it tells its blocks, a registry otherwise.
        let exact = lmem::with_exact_ownership(AnyBackend::by_name(name).unwrap());
        assert!(lmem::tells_ownership(&exact), "{name}");
        assert_eq!(
            matches!(exact, AnyBackend::Dyn(_)),
            !lmem::tells_ownership(&AnyBackend::by_name(name).unwrap()),
            "{name}"
        );
    }
    // A boxed backend goes behind the indirect call, and still works in a swap chain.
    let boxed: AnyBackend = by_name("system").unwrap().into();
    assert!(matches!(boxed, AnyBackend::Dyn(_)));
    let mut s = Swap::new(boxed);
    let p = s.allocate(48, lmem::Tag::Table).unwrap();
    for name in names() {
        s.swap_to(lmem::with_exact_ownership(
            AnyBackend::by_name(name).unwrap(),
        ))
        .unwrap();
        let q = s.allocate(64, lmem::Tag::String).unwrap();
        assert_eq!(s.owns(q), Ownership::Owned);
        // SAFETY: live block of 64, freed once.
        unsafe { s.deallocate(q, 64) };
    }
    // SAFETY: the first block, still live in the retired system backend.
    unsafe { s.deallocate(p, 48) };
    assert!(s.retired_names().is_empty());
}
