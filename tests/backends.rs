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
