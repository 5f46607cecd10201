//! The conformance kit on the mimalloc backend, plus what is particular to it: one heap per
//! backend value, destroyed with the value; exact ownership; independent heaps on one thread.
use lmem_backend::conformance::{fill, verify};
use lmem_backend::{ALIGN, Backend, Ownership, Tag};
use lmem_mimalloc::Mimalloc;
use std::ptr::NonNull;

lmem_backend::conformance_tests!(exact: Mimalloc::new());

/// Resident set size of this process, from `/proc/self/statm`.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Dropping a backend with live blocks destroys its heap: the blocks are freed with it. Forty
/// states of 16 MiB each, all dropped with every block live, must not add up to 640 MiB.
#[test]
fn dropping_the_backend_frees_its_live_blocks() {
    let before = rss_bytes();
    for round in 0..40u64 {
        let mut m = Mimalloc::new();
        let mut total = 0;
        let mut i = 0u64;
        while total < 16 << 20 {
            // Lua's mix: mostly small blocks, some big ones.
            let size = if i.is_multiple_of(64) {
                64 * 1024
            } else {
                16 + (i as usize % 48)
            };
            let p = m.allocate(size, Tag::ALL[(i % 8) as usize]).unwrap();
            // SAFETY: fresh block of `size` bytes; written so the pages are resident.
            unsafe { fill(p, size, round + i) };
            total += size;
            i += 1;
        }
        assert!(m.stats().blocks.unwrap() as u64 >= i);
        drop(m); // every block still live
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 256 << 20,
        "RSS grew by {} MiB over 40 dropped heaps",
        grown >> 20
    );
}

/// `owns` is exact: Owned for every block of this heap (small, large, huge), Foreign for another
/// heap's blocks, for a `Box` and for the stack.
#[test]
fn ownership_is_exact() {
    let mut a = Mimalloc::new();
    let mut b = Mimalloc::new();
    let mut live_a = Vec::new();
    let mut live_b = Vec::new();
    for size in [1, 16, 24, 100, 1024, 1025, 8000, 70_000, 600_000, 5 << 20] {
        live_a.push((a.allocate(size, Tag::Other).unwrap(), size));
        live_b.push((b.allocate(size, Tag::Other).unwrap(), size));
    }
    for &(p, size) in &live_a {
        assert_eq!(a.owns(p), Ownership::Owned, "a's own block of {size} B");
        assert_eq!(
            b.owns(p),
            Ownership::Foreign,
            "a's block of {size} B seen from b"
        );
        // An interior address of the block is in the heap's page too.
        // SAFETY: `size / 2 < size`, inside the block.
        let mid = unsafe { p.add(size / 2) };
        assert_eq!(b.owns(mid), Ownership::Foreign);
    }
    for &(p, _) in &live_b {
        assert_eq!(b.owns(p), Ownership::Owned);
        assert_eq!(a.owns(p), Ownership::Foreign);
    }
    let boxed = Box::new([0u8; 64]);
    let big_box = vec![0u8; 1 << 20];
    let on_stack = [0u8; 16];
    for p in [
        NonNull::from(&*boxed).cast::<u8>(),
        NonNull::from(&big_box[0]),
        NonNull::from(&on_stack).cast::<u8>(),
    ] {
        assert_eq!(a.owns(p), Ownership::Foreign, "{p:p}");
    }
    for (p, size) in live_a {
        // SAFETY: live blocks of `a` with their sizes.
        unsafe { a.deallocate(p, size) };
    }
    for (p, size) in live_b {
        // SAFETY: live blocks of `b` with their sizes.
        unsafe { b.deallocate(p, size) };
    }
}

/// Two backends on one thread are independent heaps: interleaved use keeps every block intact,
/// and dropping one leaves the other's blocks live and the other still working.
#[test]
fn two_backends_on_one_thread_are_independent() {
    let mut a = Mimalloc::new();
    let mut b = Mimalloc::new();
    let mut blocks_b = Vec::new();
    for i in 0..5000u64 {
        let size = 8 + (i as usize * 7) % 200;
        let pa = a.allocate(size, Tag::String).unwrap();
        let pb = b.allocate(size, Tag::String).unwrap();
        // SAFETY: fresh blocks of `size` bytes.
        unsafe {
            fill(pa, size, i);
            fill(pb, size, !i);
        }
        blocks_b.push((pb, size, !i));
        if i.is_multiple_of(3) {
            // SAFETY: live block of `a`.
            unsafe { a.deallocate(pa, size) };
        }
    }
    let sb = b.stats();
    assert_eq!(sb.blocks, Some(5000), "b's heap counts only b's blocks");
    drop(a); // a's remaining blocks go with its heap
    for &(p, size, seed) in &blocks_b {
        assert_eq!(b.owns(p), Ownership::Owned);
        // SAFETY: b's blocks are still live.
        unsafe { verify(p, size, seed, "b's block after a was dropped") };
    }
    let p = b.allocate(300, Tag::Table).unwrap();
    assert_eq!(p.as_ptr() as usize % ALIGN, 0);
    // SAFETY: live blocks of `b` with their sizes.
    unsafe {
        b.deallocate(p, 300);
        for (p, size, _) in blocks_b {
            b.deallocate(p, size);
        }
    }
    assert_eq!(b.stats().blocks, Some(0));
}

/// A grow within the block's bin stays in place (what `mi_expand` would give), and content is
/// kept; a shrink to less than half moves to a smaller bin. (In `secure` mode blocks are padded
/// and have no spare room, so only the content is checked.)
#[test]
fn resize_in_place_within_the_bin() {
    let mut m = Mimalloc::new();
    let p = m.allocate(20, Tag::String).unwrap();
    // SAFETY: live block of 20 bytes.
    let usable = unsafe { m.usable_size(p, 20) };
    // Secure mode pads every block and reports exactly the requested size: no room to grow into.
    let padded = cfg!(feature = "secure");
    assert!(
        usable >= 24 || padded,
        "20 B block has {usable} usable bytes"
    );
    // SAFETY: fresh block.
    unsafe { fill(p, 20, 4) };
    // SAFETY: live block of 20 bytes.
    let q = unsafe { m.resize(p, 20, usable) }.unwrap();
    if !padded {
        assert_eq!(q, p, "grow within the bin moved the block");
    }
    // SAFETY: `q` keeps 20 bytes.
    unsafe { verify(q, 20, 4, "in-place grow keeps content") };
    // SAFETY: live block of `usable` bytes.
    let r = unsafe { m.resize(q, usable, 4096) }.unwrap();
    // SAFETY: `r` keeps 20 bytes (the rest of `usable` was never written).
    unsafe { verify(r, 20, 4, "moving grow keeps content") };
    // SAFETY: live block of 4096 bytes.
    let s = unsafe { m.resize(r, 4096, 16) }.unwrap();
    // SAFETY: `s` keeps 16 bytes.
    unsafe {
        verify(s, 16, 4, "shrink keeps content");
        assert!(
            m.usable_size(s, 16) < 4096 / 2,
            "a big shrink moved to a smaller bin"
        );
        m.deallocate(s, 16);
    }
}

/// `reset` releases every block at once and leaves a working, empty heap.
#[test]
fn reset_empties_the_heap() {
    let mut m = Mimalloc::new();
    for i in 0..1000 {
        let _ = m.allocate(32 + i % 100, Tag::Table).unwrap();
    }
    assert_eq!(m.stats().blocks, Some(1000));
    // SAFETY: the blocks above are never used again.
    unsafe { m.reset() }.unwrap();
    assert_eq!(m.stats().blocks, Some(0));
    let p = m.allocate(64, Tag::Other).unwrap();
    assert_eq!(m.owns(p), Ownership::Owned);
    // SAFETY: live block of 64 bytes.
    unsafe { m.deallocate(p, 64) };
}

/// The backend is tied to its thread: neither `Send` nor `Sync`.
#[test]
fn the_backend_stays_on_its_thread() {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    #[allow(dead_code)]
    struct Invalid;
    impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
    // Compiles only if `Mimalloc` is not `Send` (otherwise the call is ambiguous).
    <Mimalloc as AmbiguousIfSend<_>>::some_item();
}

/// After 32 MiB of small blocks are freed and the heap trimmed, RSS is well below its peak
/// (without `trim` both versions keep most of it for a while), and the heap still works.
#[test]
fn trim_gives_freed_pages_back() {
    let mut m = Mimalloc::new();
    let mut live = Vec::new();
    for i in 0..(32 << 20) / 64 {
        let p = m.allocate(64, Tag::String).unwrap();
        // SAFETY: fresh block of 64 bytes; written so its page is resident.
        unsafe { fill(p, 64, i as u64) };
        live.push(p);
    }
    let keep = m.allocate(100, Tag::Table).unwrap();
    let before = rss_bytes();
    for p in live {
        // SAFETY: live blocks of 64 bytes.
        unsafe { m.deallocate(p, 64) };
    }
    m.trim();
    let after = rss_bytes();
    assert!(
        before.saturating_sub(after) > 16 << 20,
        "trim gave back only {} KiB",
        before.saturating_sub(after) >> 10
    );
    assert_eq!(m.owns(keep), Ownership::Owned);
    assert_eq!(m.stats().blocks, Some(1));
    // SAFETY: live block of 100 bytes.
    unsafe { m.deallocate(keep, 100) };
}

/// The crate's default for mimalloc's options is in force (unless the environment sets it):
/// arena memory is committed on demand, which keeps transparent huge pages out of the heaps.
#[test]
fn arenas_are_committed_on_demand_by_default() {
    let _m = Mimalloc::new();
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: mi_option_get has no preconditions; 4 is `mi_option_arena_eager_commit`.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(4) }, 0);
    }
}
