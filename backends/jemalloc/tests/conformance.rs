//! The conformance kit on the jemalloc backend, plus what is particular to it: grow in place
//! through `xallocx`, sized free, 16-byte alignment of jemalloc's tiny class, statistics.
use lmem_backend::conformance::{fill, verify};
use lmem_backend::{ALIGN, Backend, Ownership, Tag};
use lmem_jemalloc::Jemalloc;

lmem_backend::conformance_tests!(Jemalloc::new());

/// A block whose size class has room (20 B lives in the 32 B class; 20 000 B in the 20 480 B
/// class) grows in place — same address, no copy — and keeps its content.
#[test]
fn grow_within_the_size_class_stays_in_place() {
    let mut b = Jemalloc::new();
    for (size, new) in [(20usize, 30usize), (17, 32), (100, 112), (20_000, 20_400)] {
        let p = b.allocate(size, Tag::Table).unwrap();
        // SAFETY: live block of `size` bytes.
        let usable = unsafe { b.usable_size(p, size) };
        assert!(
            usable >= new,
            "{size} B block has {usable} usable bytes, expected room for {new}"
        );
        // SAFETY: fresh block of `size` bytes.
        unsafe { fill(p, size, size as u64) };
        // SAFETY: `p` is a live block of `size` bytes.
        let q = unsafe { b.resize(p, size, new) }.unwrap();
        assert_eq!(
            q, p,
            "grow {size} -> {new} within its class moved the block"
        );
        // SAFETY: `q` keeps the first `size` bytes and has `new` bytes.
        unsafe {
            verify(q, size, size as u64, "in-place grow keeps the content");
            fill(q, new, 1);
            b.deallocate(q, new);
        }
    }
    assert!(b.uses_sized_free());
}

/// A grow past the size class moves the block (jemalloc's small classes cannot grow in place)
/// and keeps the prefix; the moved block is freed with its new size.
#[test]
fn grow_past_the_size_class_moves_and_keeps_content() {
    let mut b = Jemalloc::new();
    let p = b.allocate(32, Tag::String).unwrap();
    let guard = b.allocate(32, Tag::String).unwrap();
    // SAFETY: fresh blocks of 32 bytes.
    unsafe {
        fill(p, 32, 5);
        fill(guard, 32, 6);
    }
    // SAFETY: `p` is a live block of 32 bytes.
    let q = unsafe { b.resize(p, 32, 4000) }.unwrap();
    assert_eq!(q.as_ptr() as usize % ALIGN, 0);
    // SAFETY: `q` keeps 32 bytes; `guard` is untouched.
    unsafe {
        verify(q, 32, 5, "moved grow keeps the prefix");
        verify(guard, 32, 6, "neighbour untouched");
        b.deallocate(q, 4000);
        b.deallocate(guard, 32);
    }
}

/// Shrinks free memory: a large block shrunk to a small size reports a small usable size
/// afterwards (it moved to a small class or gave back its tail), and sized free stays on.
#[test]
fn shrink_gives_memory_back() {
    let mut b = Jemalloc::new();
    let p = b.allocate(256 * 1024, Tag::Other).unwrap();
    // SAFETY: fresh block.
    unsafe { fill(p, 256 * 1024, 9) };
    // SAFETY: live block of 256 KiB.
    let q = unsafe { b.resize(p, 256 * 1024, 100) }.unwrap();
    // SAFETY: `q` is a live block of 100 bytes.
    unsafe {
        verify(q, 100, 9, "shrink keeps the prefix");
        assert!(
            b.usable_size(q, 100) < 4096,
            "shrunk block still holds its old pages"
        );
        b.deallocate(q, 100);
    }
    assert!(b.uses_sized_free());
}

/// jemalloc cannot tell its blocks from other memory: `owns` says Unknown, never a guess.
#[test]
fn ownership_is_unknown() {
    let mut b = Jemalloc::new();
    let p = b.allocate(64, Tag::Other).unwrap();
    assert_eq!(b.owns(p), Ownership::Unknown);
    let boxed = Box::new(0u64);
    assert_eq!(
        b.owns(std::ptr::NonNull::from(&*boxed).cast()),
        Ownership::Unknown
    );
    // SAFETY: live block of 64 bytes.
    unsafe { b.deallocate(p, 64) };
}

/// Blocks of one value may be used and freed from another thread: the backend is `Send`.
#[test]
fn a_backend_moves_between_threads() {
    let mut b = Jemalloc::new();
    let p = b.allocate(48, Tag::Thread).unwrap();
    // SAFETY: fresh block of 48 bytes.
    unsafe { fill(p, 48, 3) };
    let addr = p.as_ptr() as usize;
    std::thread::spawn(move || {
        let p = std::ptr::NonNull::new(addr as *mut u8).unwrap();
        // SAFETY: the block moved with its backend; still live with 48 bytes.
        unsafe {
            verify(p, 48, 3, "block after moving threads");
            b.deallocate(p, 48);
        }
    })
    .join()
    .unwrap();
}

/// With the `stats` feature, jemalloc's process-wide figures are there and see a big block.
#[cfg(feature = "stats")]
#[test]
fn stats_are_process_wide_figures() {
    let mut b = Jemalloc::new();
    let before = b.stats();
    let p = b.allocate(64 << 20, Tag::Other).unwrap();
    let during = b.stats();
    let (a0, a1) = (before.allocated.unwrap(), during.allocated.unwrap());
    assert!(a1 >= a0 + (32 << 20), "allocated went {a0} -> {a1}");
    assert!(during.reserved.is_some());
    // SAFETY: live block of 64 MiB.
    unsafe { b.deallocate(p, 64 << 20) };
}

/// Without the `stats` feature there is nothing to report.
#[cfg(not(feature = "stats"))]
#[test]
fn stats_are_empty_without_the_feature() {
    assert_eq!(
        Jemalloc::new().stats(),
        lmem_backend::BackendStats::default()
    );
}
