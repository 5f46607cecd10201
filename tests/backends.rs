//! The backends compiled in by feature, reached by name as a host would (`--backend NAME`):
//! each serves the `lua_Alloc` contract through the lean allocation function, each name maps to
//! the backend it says, and the table's declared capabilities hold.

use lmem::backends::{ALL_NAMES, AnyBackend, IntoAny, Visit, declares_exact_ownership};
use lmem::backends::{is_compiled, names, with_backend};
use lmem::{Allocator, Backend, ExactBackend, Layer, LuaAllocator, Ownership, Swap, Tag};
use lmem_backend::conformance::{self as kit, lua_alloc_contract};

#[test]
fn names_and_features_agree() {
    assert!(names().contains(&"system"));
    for name in ALL_NAMES {
        assert_eq!(
            AnyBackend::by_name(name).is_some(),
            is_compiled(name),
            "{name}"
        );
        assert_eq!(Allocator::new(name).is_ok(), is_compiled(name), "{name}");
        if let Some(b) = AnyBackend::by_name(name) {
            assert_eq!(b.name(), name);
        }
    }
    assert!(AnyBackend::by_name("nope").is_none());
    let err = Allocator::new("nope").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown backend 'nope' (compiled in: system")
    );
    assert!(!is_compiled("nope"));
}

#[test]
fn every_compiled_backend_serves_the_lua_alloc_contract_on_the_lean_path() {
    for name in names() {
        let alloc = Allocator::new(name).unwrap();
        // SAFETY: `alloc` lives across the call and nothing else uses it.
        unsafe { lua_alloc_contract(alloc.function(), alloc.ud()) };
        // SAFETY: no allocation is running.
        let s = unsafe { alloc.enter() };
        assert_eq!(s.live(), 0, "{name}");
        assert!(
            !s.is_detailed(),
            "{name}: the default path counts no details"
        );
    }
}

#[test]
fn with_backend_runs_at_the_static_type() {
    struct Probe;
    impl Visit for Probe {
        type Output = (String, usize);
        fn visit<B: IntoAny>(self, backend: B) -> (String, usize) {
            let mut layer = Layer::new(backend);
            let p = layer.try_allocate(100, Tag::Table).unwrap();
            let live = layer.live();
            // SAFETY: live block of 100 bytes.
            unsafe { layer.deallocate(p, 100) };
            (layer.backend().name().to_string(), live)
        }
    }
    for name in names() {
        let (got, live) = with_backend(name, Probe).unwrap();
        assert_eq!((got.as_str(), live), (name, 100));
    }
    assert!(with_backend("nope", Probe).is_none());
}

#[test]
fn any_backend_keeps_each_kind_and_its_contract() {
    for name in names() {
        let mut b = AnyBackend::by_name(name).unwrap();
        assert_eq!(b.name(), name);
        assert_eq!(Some(b.exact_ownership()), declares_exact_ownership(name));
        kit::alignment(&mut b);
        kit::grow_keeps_prefix(&mut b);
        kit::shrink_keeps_prefix(&mut b);
        kit::no_overlap(&mut b);
        kit::tag_is_not_a_size(&mut b);
        kit::failure_leaves_block_intact(&mut b);
        kit::frees_never_fail(&mut b);
        kit::ownership_is_never_wrong(&mut b);
        kit::random_run(&mut b, 0xa11, 20_000);
        // Made exact for a swap: the same kind when it declares it, a registry otherwise; either
        // way its `owns` is exact.
        let exact = ExactBackend::by_name(name).unwrap();
        assert!(exact.as_any().exact_ownership(), "{name}");
        let mut any = exact.into_any();
        kit::ownership_is_never_wrong(&mut any);
        let p = any.allocate(40, Tag::Table).unwrap();
        assert_eq!(any.owns(p), Ownership::Owned, "{name}");
        let on_stack = 0u64;
        assert_eq!(
            any.owns(std::ptr::NonNull::from(&on_stack).cast()),
            Ownership::Foreign
        );
        // SAFETY: live block of 40 bytes.
        unsafe { any.deallocate(p, 40) };
    }
}

#[test]
fn a_chain_of_every_backend_routes_each_free_home() {
    // The first member may be any backend (here one behind a box); every later one is exact by
    // its type, so routing never has two members that cannot tell.
    let boxed: Box<dyn Backend> = Box::new(lmem::backends::System::new());
    let mut s = Swap::new(boxed);
    let p = s.allocate(48, Tag::Table).unwrap();
    for name in names() {
        s.swap_to(ExactBackend::by_name(name).unwrap());
        let q = s.allocate(64, Tag::String).unwrap();
        assert_eq!(s.owns(q), Ownership::Owned);
        // SAFETY: live block of 64, freed once.
        unsafe { s.deallocate(q, 64) };
    }
    assert_eq!(s.retired_names(), ["system"]);
    // SAFETY: the first block, still live in the retired first backend.
    unsafe { s.deallocate(p, 48) };
    assert!(s.retired_names().is_empty());
    assert!(s.is_settled());
}

#[test]
fn the_typed_allocator_serves_the_contract_for_every_backend() {
    struct Check;
    impl Visit for Check {
        type Output = ();
        fn visit<B: IntoAny>(self, backend: B) {
            let alloc = LuaAllocator::new(Layer::new(backend));
            // SAFETY: `alloc` lives across the call and nothing else uses it.
            unsafe { lua_alloc_contract(alloc.function(), alloc.ud()) };
            // SAFETY: no allocation is running.
            assert_eq!(unsafe { alloc.enter() }.live(), 0);
        }
    }
    for name in names() {
        with_backend(name, Check).unwrap();
    }
}
