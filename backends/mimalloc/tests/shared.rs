//! The conformance kit on `SharedMimalloc`, plus what is particular to it: many states on one
//! heap, each with exact ownership of its own blocks; drop and reset free only the state's own
//! blocks.
use lmem_backend::conformance::{fill, verify};
use lmem_backend::{ALIGN, Backend, Ownership, Tag};
use lmem_mimalloc::{Mimalloc, SharedMimalloc};
use std::ptr::NonNull;

lmem_backend::conformance_tests!(exact: Mimalloc::shared());

#[test]
fn blocks_are_16_aligned_at_every_size() {
    let mut m = SharedMimalloc::new();
    let mut live = Vec::new();
    for size in (1..=4096).chain([8191, 65_536, 1 << 20]) {
        let p = m.allocate(size, Tag::String).unwrap();
        assert_eq!(p.as_ptr() as usize % ALIGN, 0, "size {size}");
        // SAFETY: fresh block of `size` bytes.
        unsafe { fill(p, size, size as u64) };
        live.push((p, size));
    }
    for (p, size) in live {
        // SAFETY: live block of `size` bytes, written by `fill` above.
        unsafe {
            verify(p, size, size as u64, "content survives the neighbours");
            m.deallocate(p, size);
        }
    }
}

/// Three states on the thread's one heap, a per-state `Mimalloc` beside them: each owns exactly
/// its own blocks, at every size, whatever the order of their allocations.
#[test]
fn ownership_is_exact_between_states_of_one_heap() {
    let mut states: Vec<SharedMimalloc> = (0..3).map(|_| SharedMimalloc::new()).collect();
    assert_eq!(
        states[0].as_raw(),
        states[2].as_raw(),
        "one heap per thread"
    );
    let mut own = Mimalloc::new();
    let mut live: Vec<(usize, NonNull<u8>, usize)> = Vec::new();
    for round in 0..300 {
        for (i, s) in states.iter_mut().enumerate() {
            let size = [8, 24, 100, 1000, 5000, 70_000][(round + i) % 6];
            live.push((i, s.allocate(size, Tag::Table).unwrap(), size));
        }
    }
    let theirs = own.allocate(48, Tag::Other).unwrap();
    let boxed = Box::new([0u8; 64]);
    let on_stack = [0u8; 32];
    for &(i, p, size) in &live {
        for (j, s) in states.iter().enumerate() {
            let want = if i == j {
                Ownership::Owned
            } else {
                Ownership::Foreign
            };
            assert_eq!(
                s.owns(p),
                want,
                "block of state {i} ({size} B) seen from {j}"
            );
        }
        assert_eq!(
            own.owns(p),
            Ownership::Foreign,
            "the private heap claims a shared block"
        );
    }
    for s in &states {
        for p in [
            theirs,
            NonNull::from(&*boxed).cast::<u8>(),
            NonNull::from(&on_stack).cast::<u8>(),
            NonNull::from(&on_stack[1]),
        ] {
            assert_eq!(s.owns(p), Ownership::Foreign, "{p:p}");
        }
    }
    for (i, p, size) in live {
        // SAFETY: live block of state `i` with its size.
        unsafe { states[i].deallocate(p, size) };
    }
    // SAFETY: live block of `own`.
    unsafe { own.deallocate(theirs, 48) };
}

/// Dropping or resetting a state frees its live blocks and only those: the other state's blocks
/// keep their content, and the heap keeps working.
#[test]
fn drop_and_reset_free_only_the_states_own_blocks() {
    let mut a = SharedMimalloc::new();
    let mut b = SharedMimalloc::new();
    let mut c = SharedMimalloc::new();
    let mut kept = Vec::new();
    for i in 0..5000u64 {
        let size = 8 + (i as usize * 13) % 500;
        for m in [&mut a, &mut c] {
            let p = m.allocate(size, Tag::String).unwrap();
            // SAFETY: fresh block.
            unsafe { fill(p, size, !i) };
        }
        let q = b.allocate(size, Tag::String).unwrap();
        // SAFETY: fresh block.
        unsafe { fill(q, size, i) };
        kept.push((q, size, i));
    }
    assert_eq!(a.stats().blocks, Some(5000));
    drop(a);
    // SAFETY: the blocks of `c` are not used again.
    unsafe { c.reset() }.unwrap();
    assert_eq!(c.stats().blocks, Some(0));
    assert_eq!(c.stats().allocated, Some(0));
    assert_eq!(b.stats().blocks, Some(5000));
    for &(q, size, seed) in &kept {
        // SAFETY: live block of `b`.
        unsafe { verify(q, size, seed, "b's block after a's drop and c's reset") };
        assert_eq!(b.owns(q), Ownership::Owned);
        assert_eq!(c.owns(q), Ownership::Foreign);
    }
    let p = c.allocate(64, Tag::Other).unwrap();
    assert_eq!(c.owns(p), Ownership::Owned);
    for (q, size, _) in kept {
        // SAFETY: live block of `b`.
        unsafe { b.deallocate(q, size) };
    }
    // SAFETY: live block of `c`.
    unsafe { c.deallocate(p, 64) };
}

/// A state that leaks is cleaned up at drop: 40 states of 8 MiB each, all dropped with every
/// block live, do not add up to 320 MiB.
#[test]
fn dropping_a_state_frees_its_leaked_blocks() {
    fn rss() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
            * 4096
    }
    let before = rss();
    for round in 0..40u64 {
        let mut m = SharedMimalloc::new();
        let mut total = 0;
        let mut i = 0u64;
        while total < 8 << 20 {
            let size = if i.is_multiple_of(64) {
                16_000
            } else {
                16 + (i as usize % 48)
            };
            let p = m.allocate(size, Tag::Other).unwrap();
            // SAFETY: fresh block; written so the pages are resident.
            unsafe { fill(p, size, round + i) };
            total += size;
            i += 1;
        }
    }
    let grown = rss().saturating_sub(before);
    assert!(grown < 160 << 20, "RSS grew by {} MiB", grown >> 20);
}

/// `stats` counts this state's blocks and their bytes (headers included), across resizes.
#[test]
fn stats_follow_the_state() {
    let mut m = SharedMimalloc::new();
    let p = m.allocate(100, Tag::Table).unwrap();
    let q = m.allocate(10, Tag::Table).unwrap();
    assert_eq!(m.stats().blocks, Some(2));
    assert_eq!(m.stats().allocated, Some(116 + 32));
    // SAFETY: live block of 100 bytes; `fill` then `verify` its prefix.
    let p = unsafe {
        fill(p, 100, 7);
        let p = m.resize(p, 100, 3000).unwrap();
        verify(p, 100, 7, "grow keeps the prefix");
        assert!(m.usable_size(p, 3000) >= 3000);
        p
    };
    assert_eq!(m.stats().allocated, Some(3016 + 32));
    assert_eq!(m.owns(p), Ownership::Owned);
    // SAFETY: live blocks with their sizes.
    unsafe {
        m.deallocate(p, 3000);
        m.deallocate(q, 10);
    }
    assert_eq!(m.stats().blocks, Some(0));
    m.trim();
}

/// States on two threads use two heaps, and each thread's states work on their own.
#[test]
fn each_thread_has_its_own_shared_heap() {
    let here = SharedMimalloc::new().as_raw() as usize;
    let there = std::thread::spawn(|| {
        let mut m = SharedMimalloc::new();
        let p = m.allocate(40, Tag::String).unwrap();
        assert_eq!(m.owns(p), Ownership::Owned);
        // SAFETY: live block of 40 bytes.
        unsafe { m.deallocate(p, 40) };
        m.as_raw() as usize
    })
    .join()
    .unwrap();
    assert_ne!(here, there);
}

/// `SharedMimalloc` is tied to its thread: neither `Send` nor `Sync`.
#[test]
fn the_shared_backend_stays_on_its_thread() {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    #[allow(dead_code)]
    struct Invalid;
    impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
    <SharedMimalloc as AmbiguousIfSend<_>>::some_item();
}
