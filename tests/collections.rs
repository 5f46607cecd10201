//! Rust collections in the VM's heap through `allocator_api2`.

use allocator_api2::vec::Vec;
use lmem::backends::System;
use lmem::{Checker, Heap, SharedHeap};

#[test]
fn a_vec_lives_in_the_accounted_heap() {
    let shared = SharedHeap::new(Heap::new(Checker::strict(System::new())));
    {
        let mut v: Vec<u64, _> = Vec::new_in(&shared);
        for i in 0..10_000 {
            v.push(i);
        }
        assert!(shared.with(|h| h.stats().live) >= 10_000 * 8);
        v.truncate(10);
        v.shrink_to_fit();
        assert_eq!(shared.with(|h| h.stats().live), 80);
        assert_eq!(v.iter().sum::<u64>(), 45);
        let empty: Vec<(), _> = Vec::new_in(&shared);
        drop(empty);
    }
    let heap = shared.into_inner();
    assert_eq!(heap.stats().live, 0);
    assert!(heap.stats().resizes > 0, "growth went through realloc");
    assert!(heap.backend().is_clean(), "{}", heap.backend().report());
}

#[test]
fn the_heap_limit_applies_to_collections() {
    let mut heap = Heap::new(System::new());
    heap.set_limit(Some(4096));
    let shared = SharedHeap::new(heap);
    let mut v: Vec<u8, _> = Vec::new_in(&shared);
    assert!(v.try_reserve(4000).is_ok());
    assert!(
        v.try_reserve(5000).is_err(),
        "over the limit: an error, not an abort"
    );
    drop(v);
    assert_eq!(shared.with(|h| h.stats().live), 0);
}

#[test]
fn over_aligned_layouts_are_refused() {
    use allocator_api2::alloc::{Allocator, Layout};
    let shared = SharedHeap::new(Heap::new(System::new()));
    assert!(
        (&shared)
            .allocate(Layout::from_size_align(64, 64).unwrap())
            .is_err()
    );
    let ok = (&shared)
        .allocate(Layout::from_size_align(64, 16).unwrap())
        .unwrap();
    // SAFETY: allocated just above with this layout.
    unsafe { (&shared).deallocate(ok.cast(), Layout::from_size_align(64, 16).unwrap()) };
}
