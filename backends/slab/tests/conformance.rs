//! The conformance kit on the slab backend, plus a long random run over a large live set (many
//! pages per class, so partial pages, page changes and page release all happen).
use lmem_backend::conformance::{Model, Rng, Step, random_step};
use lmem_slab::Slab;

lmem_backend::conformance_tests!(exact: lmem_slab::Slab::new());

/// 200 000 random operations with up to 60 000 live blocks (a few MiB over hundreds of pages),
/// contents checked on every free and periodically in full; then the heap drains to nothing.
#[test]
fn random_run_large_live_set() {
    let mut b = Slab::new();
    let mut rng = Rng::new(0xdead_beef_0bad_cafe);
    let mut model = Model::default();
    for step in 0..200_000usize {
        // Grow for the first half, then shrink: the live set rises to the cap and drains.
        let op = match step < 100_000 {
            true if rng.below(10) < 3 => Step::Alloc(rng.lua_size(4096), lmem_backend::Tag::Table),
            _ => random_step(&mut rng, 16 * 1024),
        };
        model.step(&mut b, op, false);
        if model.live.len() > 60_000 || (step >= 150_000 && !model.live.is_empty()) {
            model.step(&mut b, Step::Free(rng.below(1 << 20)), false);
        }
        if step % 20_000 == 0 {
            model.verify_all();
        }
    }
    model.verify_all();
    model.free_all(&mut b);
    let s = lmem_backend::Backend::stats(&b);
    assert_eq!(s.blocks, Some(0));
    assert_eq!(s.allocated, Some(0));
    assert!(b.cached_blocks() <= lmem_slab::HOT_SLOTS);
    // Cached blocks may still hold pages; given back, only current pages stay.
    b.trim();
    assert_eq!(b.cached_blocks(), 0);
    assert!(
        b.page_count() <= lmem_slab::CLASS_COUNT,
        "only current pages may stay"
    );
}
