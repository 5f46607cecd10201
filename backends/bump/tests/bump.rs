//! What the bump backend promises beyond the common contract: the last block is reclaimed on free
//! and grown in its own space, the limit fails softly, `owns` is exact, `stats` add up.
//!
//! These tests share the global pool with each other, so none of them assumes which arena it
//! gets; the pool itself is tested in `pool.rs`.
use lmem_backend::conformance::{fill, verify};
use lmem_backend::{Backend, Ownership, Tag};
use lmem_bump::Bump;
use std::ptr::NonNull;

fn addr(p: NonNull<u8>) -> usize {
    p.as_ptr() as usize
}

fn alloc(b: &mut Bump, size: usize, seed: u64) -> NonNull<u8> {
    let p = b.allocate(size, Tag::Other).expect("allocation");
    assert_eq!(addr(p) % 16, 0, "alignment");
    // SAFETY: fresh block of `size` bytes.
    unsafe { fill(p, size, seed) };
    p
}

/// A state whose current chunk has at least `room` free bytes, so the test's blocks share it:
/// one block of `room` bytes is made and freed (it is the last, so its space comes back).
fn warm(room: usize) -> Bump {
    let mut b = Bump::new();
    let p = b.allocate(room, Tag::Other).expect("warm-up allocation");
    // SAFETY: `p` is the live block just made, of `room` bytes.
    unsafe { b.deallocate(p, room) };
    b
}

#[test]
fn freeing_the_last_block_reclaims_its_space() {
    let mut b = warm(64 * 1024);
    let reserved = b.stats().reserved;
    let a = alloc(&mut b, 100, 1);
    let x = alloc(&mut b, 40, 2);
    // SAFETY: `x` is live, 40 bytes, the most recent block.
    unsafe { b.deallocate(x, 40) };
    let y = alloc(&mut b, 40, 3);
    assert_eq!(
        x, y,
        "the next allocation takes the freed last block's space"
    );
    // Frees in reverse order of allocation reclaim everything.
    // SAFETY: `y` then `a` are live blocks with these sizes.
    unsafe {
        b.deallocate(y, 40);
        b.deallocate(a, 100);
    }
    let z = alloc(&mut b, 100, 4);
    assert_eq!(a, z, "LIFO frees give the space back");
    assert_eq!(b.stats().reserved, reserved, "no new chunk was needed");
    // SAFETY: live block of 100 bytes.
    unsafe { b.deallocate(z, 100) };
}

#[test]
fn freeing_in_the_middle_is_not_reclaimed_until_reset() {
    let mut b = warm(64 * 1024);
    let a = alloc(&mut b, 64, 1);
    let m = alloc(&mut b, 64, 2);
    let c = alloc(&mut b, 64, 3);
    // SAFETY: `m` is live, 64 bytes, not the last block.
    unsafe { b.deallocate(m, 64) };
    let d = alloc(&mut b, 64, 4);
    assert_ne!(d, m, "a block freed in the middle is not reused");
    assert_eq!(
        addr(d) + 64,
        addr(c),
        "the next block goes below the last one"
    );
    // SAFETY: `a` and `c` are live and untouched.
    unsafe {
        verify(a, 64, 1, "neighbour a");
        verify(c, 64, 3, "neighbour c");
    }
    let before = b.stats();
    // SAFETY: nothing is used after the reset.
    unsafe { b.reset() }.expect("bump supports reset");
    let after = b.stats();
    assert_eq!((after.blocks, after.allocated), (Some(0), Some(0)));
    assert!(
        after.reserved <= before.reserved,
        "reset keeps at most the newest chunk"
    );
}

#[test]
fn growing_the_last_block_reuses_its_space_and_moves_it_down() {
    let mut b = warm(64 * 1024);
    let reserved = b.stats().reserved;
    let a = alloc(&mut b, 48, 1);
    let x = alloc(&mut b, 100, 2);
    let end = addr(x) + 112; // 100 rounded up to 16
    // SAFETY: `x` is live, 100 bytes, the most recent block.
    let y = unsafe { b.resize(x, 100, 1000) }.expect("grow in place");
    assert!(
        addr(y) < addr(x),
        "bumpalo grows downwards: the last block moves down"
    );
    assert_eq!(
        addr(y) + 1008,
        end,
        "the grown block ends where it ended: its space is reused"
    );
    // SAFETY: `y` keeps the first 100 bytes and has 1000.
    unsafe {
        verify(y, 100, 2, "in-place grow keeps the prefix");
        fill(y, 1000, 5);
    }
    // No byte beyond the new size is used: the next block sits right below.
    let c = alloc(&mut b, 16, 3);
    assert_eq!(addr(c) + 16, addr(y), "no extra space used by the grow");
    assert_eq!(
        b.stats().reserved,
        reserved,
        "the grow stayed in the arena's chunk"
    );
    // A resize within the same 16-byte rounding keeps the pointer.
    // SAFETY: `c` is live, 16 bytes.
    let c2 = unsafe { b.resize(c, 16, 9) }.expect("same rounded size");
    let c2 = {
        assert_eq!(c, c2);
        // SAFETY: `c2` is live, 9 bytes.
        unsafe { b.resize(c2, 9, 16) }.expect("same rounded size")
    };
    assert_eq!(c, c2);
    // SAFETY: live blocks with these sizes; neighbours untouched.
    unsafe {
        verify(a, 48, 1, "neighbour below the grown block");
        verify(y, 1000, 5, "grown block");
        b.deallocate(c2, 16);
        b.deallocate(y, 1000);
        b.deallocate(a, 48);
    }
}

#[test]
fn growing_a_block_in_the_middle_copies_it() {
    let mut b = warm(64 * 1024);
    let x = alloc(&mut b, 64, 1);
    let n = alloc(&mut b, 32, 2);
    // SAFETY: `x` is live, 64 bytes, with a neighbour after it.
    let y = unsafe { b.resize(x, 64, 500) }.expect("grow by copy");
    assert_ne!(x, y);
    // SAFETY: live blocks with these sizes.
    unsafe {
        verify(y, 64, 1, "grow by copy keeps the prefix");
        verify(n, 32, 2, "neighbour");
        b.deallocate(y, 500);
        b.deallocate(n, 32);
    }
}

#[test]
fn shrinks_never_fail_and_the_last_block_gives_back_its_tail() {
    let mut b = warm(64 * 1024);
    let x = alloc(&mut b, 1000, 1);
    // SAFETY: `x` is live, 1000 bytes, the most recent block.
    let y = unsafe { b.resize(x, 1000, 100) }.expect("a shrink never fails");
    assert_eq!(
        addr(y),
        addr(x) + 1008 - 112,
        "the last block moves up by the freed tail"
    );
    // SAFETY: `y` keeps 100 bytes.
    unsafe { verify(y, 100, 1, "shrink keeps the prefix") };
    let c = alloc(&mut b, 16, 2);
    assert_eq!(addr(c) + 16, addr(y), "the freed tail is reused");
    // A block in the middle shrinks where it is.
    // SAFETY: `y` is live, 100 bytes, not the last block.
    let z = unsafe { b.resize(y, 100, 10) }.expect("a shrink never fails");
    assert_eq!(z, y);
    // SAFETY: live blocks with these sizes.
    unsafe {
        verify(z, 10, 1, "shrink in place keeps the prefix");
        b.deallocate(c, 16);
        b.deallocate(z, 10);
    }
}

#[test]
fn the_limit_fails_softly_and_failed_resizes_keep_the_block() {
    const LIMIT: usize = 64 * 1024;
    let mut b = Bump::with_limit(LIMIT);
    assert_eq!(b.limit(), Some(LIMIT));
    assert!(
        b.allocate(LIMIT + 1, Tag::Other).is_none(),
        "one block above the limit"
    );
    let mut live = Vec::new();
    for i in 0.. {
        match b.allocate(1000, Tag::Table) {
            Some(p) => {
                // SAFETY: fresh block of 1000 bytes.
                unsafe { fill(p, 1000, i) };
                live.push((p, 1000, i));
            }
            None => break,
        }
        assert!(i < 1000, "the limit never stopped the allocations");
    }
    let stats = b.stats();
    assert!(
        stats.reserved.unwrap() <= LIMIT,
        "reserved {:?} above the limit",
        stats.reserved
    );
    assert!(
        live.len() * 1008 >= LIMIT / 2,
        "only {} blocks fit under the limit",
        live.len()
    );
    // Growing a block (copy, or in place for the last) fails and leaves it intact.
    for idx in [0, live.len() - 1] {
        let (p, size, seed) = live[idx];
        // SAFETY: `p` is live with `size` bytes.
        let grown = unsafe { b.resize(p, size, 2 * LIMIT) };
        assert!(grown.is_none(), "grow past the limit");
        // SAFETY: the failed resize left `p` live and untouched.
        unsafe { verify(p, size, seed, "failed resize touched the block") };
    }
    // Shrinks still succeed at the limit.
    let (p, size, seed) = live[3];
    // SAFETY: `p` is live with `size` bytes.
    let q = unsafe { b.resize(p, size, 10) }.expect("a shrink never fails, even at the limit");
    // SAFETY: `q` keeps 10 bytes.
    unsafe { verify(q, 10, seed, "shrink at the limit") };
    live[3] = (q, 10, seed);
    for &(p, size, seed) in &live {
        // SAFETY: live blocks with these sizes.
        unsafe { verify(p, size, seed, "blocks after hitting the limit") };
    }
    // After a reset the state can allocate again, under the same limit.
    // SAFETY: none of `live` is used after the reset.
    unsafe { b.reset() }.expect("reset");
    let p = b.allocate(1000, Tag::Other).expect("room after reset");
    assert!(b.stats().reserved.unwrap() <= LIMIT);
    // SAFETY: live block of 1000 bytes.
    unsafe { b.deallocate(p, 1000) };
}

#[test]
fn a_zero_limit_refuses_everything() {
    let mut b = Bump::with_limit(0);
    assert!(b.allocate(1, Tag::Other).is_none());
    assert_eq!(b.stats().reserved, Some(0));
}

#[test]
fn owns_is_exact_for_own_and_foreign_blocks() {
    let mut b = Bump::new();
    let mut other = Bump::new();
    let first = alloc(&mut b, 24, 1);
    assert_eq!(b.owns(first), Ownership::Owned);
    // Enough blocks for several new chunks; every one is owned, old and new alike.
    let mut live = vec![(first, 24)];
    for i in 0..2000 {
        let size = 1 + (i * 37) % 3000;
        let p = alloc(&mut b, size, i as u64);
        assert_eq!(b.owns(p), Ownership::Owned, "new block {i}");
        live.push((p, size));
    }
    for &(p, _) in &live {
        assert_eq!(b.owns(p), Ownership::Owned, "old block");
        // The last byte of a block is inside too.
        assert_eq!(
            b.owns(NonNull::new(p.as_ptr().wrapping_add(15)).unwrap()),
            Ownership::Owned
        );
    }
    let theirs = alloc(&mut other, 24, 9);
    assert_eq!(b.owns(theirs), Ownership::Foreign, "another state's block");
    assert_eq!(
        other.owns(first),
        Ownership::Foreign,
        "another state's block"
    );
    let on_stack = [0u8; 32];
    let on_heap = Box::new([0u8; 32]);
    for p in [
        NonNull::from(&on_stack).cast::<u8>(),
        NonNull::from(&*on_heap).cast::<u8>(),
    ] {
        assert_eq!(b.owns(p), Ownership::Foreign, "a foreign pointer");
    }
    // A grown last block (moved down) is still found.
    let (p, size) = *live.last().unwrap();
    // SAFETY: `p` is the most recent block of `b`, with `size` bytes.
    let q = unsafe { b.resize(p, size, size + 64) }.expect("grow");
    assert_eq!(b.owns(q), Ownership::Owned, "grown block");
}

#[test]
fn stats_count_live_bytes_and_waste() {
    let mut b = warm(64 * 1024);
    let reserved = b.stats().reserved.unwrap();
    assert!(reserved >= 64 * 1024);
    let base = b.stats();
    assert_eq!(
        (base.allocated, base.blocks, base.wasted),
        (Some(0), Some(0), Some(reserved))
    );
    let x = alloc(&mut b, 10, 1);
    let y = alloc(&mut b, 20, 2);
    let z = alloc(&mut b, 30, 3);
    let s = b.stats();
    assert_eq!(s.blocks, Some(3));
    assert_eq!(
        s.allocated,
        Some(16 + 32 + 32),
        "allocated counts the 16-byte rounding"
    );
    assert_eq!(b.live_bytes(), 60);
    assert_eq!(
        s.wasted,
        Some(reserved - 60),
        "wasted = held - requested live bytes"
    );
    // A free in the middle: live goes down, the bytes stay held.
    // SAFETY: `y` is live, 20 bytes.
    unsafe { b.deallocate(y, 20) };
    let s = b.stats();
    assert_eq!(
        (s.blocks, s.allocated, s.reserved),
        (Some(2), Some(48), Some(reserved))
    );
    assert_eq!(s.wasted, Some(reserved - 40));
    // A resize moves the live count by the difference.
    // SAFETY: `z` is live, 30 bytes, the most recent block.
    let z = unsafe { b.resize(z, 30, 100) }.expect("grow");
    assert_eq!(b.live_bytes(), 110);
    assert_eq!(b.stats().allocated, Some(16 + 112));
    // SAFETY: live blocks with these sizes.
    unsafe {
        b.deallocate(z, 100);
        b.deallocate(x, 10);
    }
    let s = b.stats();
    assert_eq!(
        (s.blocks, s.allocated, s.wasted),
        (Some(0), Some(0), Some(reserved))
    );
}

#[test]
fn zero_bytes_is_a_real_block() {
    let mut b = Bump::new();
    let p = b.allocate(0, Tag::Other).expect("allocate(0)");
    assert_eq!(b.owns(p), Ownership::Owned);
    // SAFETY: live block of size 0 (usable: 16 bytes).
    assert_eq!(unsafe { b.usable_size(p, 0) }, 16);
    // SAFETY: live block of size 0.
    unsafe { b.deallocate(p, 0) };
}

#[test]
fn the_random_run_footprint_is_bounded() {
    // The kit's 10^5-operation run on one state: everything it allocates stays held (frees in the
    // middle are not reused), so this measures what that costs.
    let mut b = Bump::new();
    lmem_backend::conformance::random_run(&mut b, 0x1a_2b_3c, 100_000);
    let reserved = b.stats().reserved.unwrap();
    eprintln!("random_run(10^5): reserved {} KiB", reserved / 1024);
    assert!(reserved < 64 << 20, "10^5 ops held {reserved} bytes");
}
