//! Bad input, row by row of `docs/bad-input.md`: each test feeds one kind of hostile input to
//! the core layer on every backend compiled in and checks the exact answer (Lua's message, the
//! heap untouched, the block intact). The command-line rows live in the host's tests.

use lmem::backends;
use lmem::trace::Trace;
use lmem::wrap::Complaint;
use lmem::{Backend, Checker, Heap, MAX_SIZE, MemError, Tag};
use std::ptr::{self, NonNull};

/// A heap over each backend compiled in, by name.
fn heaps() -> Vec<(&'static str, Heap<backends::AnyBackend>)> {
    backends::names()
        .into_iter()
        .map(|n| {
            (
                n,
                Heap::new(backends::AnyBackend::by_name(n).expect("compiled in")),
            )
        })
        .collect()
}

/// Runs `f` and returns the message it panicked with (the default error handler panics with
/// Lua's message).
fn raised(f: impl FnOnce()) -> String {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    match r.expect_err("expected a raised error").downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// A 100-byte block holding 0..100, for checking that failures leave it alone.
fn marked<B: Backend>(h: &mut Heap<B>) -> *mut u8 {
    let p = h.try_malloc(100, Tag::Table).unwrap();
    for i in 0..100 {
        // SAFETY: `p` has 100 writable bytes.
        unsafe { p.add(i).write(i as u8) };
    }
    p
}

fn intact(p: *mut u8) -> bool {
    // SAFETY: `p` is a live block of at least 100 bytes.
    (0..100).all(|i| unsafe { p.add(i).read() } == i as u8)
}

#[test]
fn n_times_size_overflow_is_block_too_big_before_any_backend_call() {
    for (name, mut h) in heaps() {
        let p = marked(&mut h);
        for (n, e) in [
            (
                usize::MAX,
                h.try_new_vector::<u64>(usize::MAX, Tag::Other).unwrap_err(),
            ),
            (
                usize::MAX / 8 + 1,
                h.try_new_vector::<u64>(usize::MAX / 8 + 1, Tag::Other)
                    .unwrap_err(),
            ),
            (
                MAX_SIZE / 24 + 1,
                h.try_new_vector::<[u64; 3]>(MAX_SIZE / 24 + 1, Tag::Other)
                    .unwrap_err(),
            ),
            (
                usize::MAX / 4 + 1,
                // SAFETY: `p` is a vector of 100 bytes; the request is refused before use.
                unsafe { h.try_realloc_vector::<u32>(p.cast(), 25, usize::MAX / 4 + 1) }
                    .unwrap_err(),
            ),
        ] {
            assert!(
                matches!(e, MemError::BlockTooBig { n: m, .. } if m == n),
                "{name}: {e:?}"
            );
            assert_eq!(e.to_string(), "memory allocation error: block too big");
            assert!(!e.is_out_of_memory(), "Lua raises it as a runtime error");
        }
        assert_eq!(
            raised(|| {
                h.new_vector::<u64>(usize::MAX / 8 + 1, Tag::Other);
            }),
            "memory allocation error: block too big"
        );
        let s = h.stats();
        assert_eq!(
            (s.live, s.failures),
            (100, 0),
            "{name}: no backend call was made"
        );
        assert!(intact(p));
        // SAFETY: live with 100 bytes.
        unsafe { h.free(p, 100) };
    }
}

#[test]
fn sizes_near_usize_max_are_not_enough_memory_and_null_through_lua_alloc() {
    let sizes = [
        usize::MAX,
        usize::MAX - 15,
        isize::MAX as usize,
        MAX_SIZE + 1,
        MAX_SIZE,
    ];
    for (name, mut h) in heaps() {
        for size in sizes {
            let e = h.try_malloc(size, Tag::String).unwrap_err();
            assert_eq!(e, MemError::OutOfMemory { requested: size }, "{name}");
            assert_eq!(e.to_string(), "not enough memory");
            assert!(e.is_out_of_memory());
            // SAFETY: a new block; 4 is the type (string), not a size.
            assert!(unsafe { h.lua_alloc(ptr::null_mut(), 4, size) }.is_null());
            assert_eq!(
                raised(|| {
                    h.malloc(size, Tag::String);
                }),
                "not enough memory"
            );
        }
        let s = h.stats();
        assert_eq!((s.live, s.failures), (0, 3 * sizes.len() as u64), "{name}");
    }
}

#[test]
fn limit_zero_fails_every_allocation_but_no_free_or_shrink() {
    for (name, mut h) in heaps() {
        let p = marked(&mut h);
        h.set_limit(Some(0));
        let e = h.try_malloc(1, Tag::Other).unwrap_err();
        assert_eq!(
            e,
            MemError::LimitExceeded {
                requested: 1,
                live: 100,
                limit: 0
            },
            "{name}"
        );
        assert_eq!(e.to_string(), "not enough memory");
        // SAFETY: a new block of type 5 (table).
        assert!(unsafe { h.lua_alloc(ptr::null_mut(), 5, 16) }.is_null());
        // SAFETY: `p` is live with 100 bytes; the failed grow leaves it.
        assert!(unsafe { h.try_realloc(p, 100, 101) }.is_err());
        assert!(intact(p));
        // Zero-size requests are not allocations: still fine.
        assert!(h.try_malloc(0, Tag::Other).unwrap().is_null());
        assert!(h.try_new_vector::<u64>(0, Tag::Other).unwrap().is_null());
        // A shrink and a free always succeed, whatever the limit.
        // SAFETY: live with 100 bytes.
        let p = unsafe { h.try_realloc(p, 100, 10) }.expect("a shrink never fails");
        // SAFETY: live with 10 bytes.
        unsafe { h.free(p, 10) };
        assert_eq!(h.stats().live, 0);
        assert_eq!(h.stats().failures, 3, "{name}");
    }
}

#[test]
fn resize_to_an_absurd_size_fails_and_leaves_the_block() {
    for (name, mut h) in heaps() {
        let p = marked(&mut h);
        for size in [
            usize::MAX,
            isize::MAX as usize,
            MAX_SIZE + 1,
            MAX_SIZE,
            1 << 48,
        ] {
            // SAFETY: `p` is live with 100 bytes; a failure leaves it so.
            let e = unsafe { h.try_realloc(p, 100, size) }.unwrap_err();
            assert_eq!(e, MemError::OutOfMemory { requested: size }, "{name}");
            assert_eq!(e.to_string(), "not enough memory");
            // SAFETY: as above, through the lua_Alloc contract: NULL, block kept.
            assert!(unsafe { h.lua_alloc(p, 100, size) }.is_null());
            assert!(intact(p), "{name}: the block is untouched");
        }
        h.set_limit(Some(1 << 20));
        // SAFETY: as above.
        let e = unsafe { h.try_realloc(p, 100, usize::MAX) }.unwrap_err();
        assert_eq!(
            e,
            MemError::LimitExceeded {
                requested: usize::MAX,
                live: 100,
                limit: 1 << 20
            }
        );
        assert_eq!(h.stats().live, 100);
        assert!(intact(p));
        // SAFETY: live with 100 bytes.
        unsafe { h.free(p, 100) };
    }
}

#[test]
fn checker_reports_double_free_foreign_pointer_and_wrong_osize_with_these_messages() {
    for name in backends::names() {
        let mut c = Checker::new(backends::AnyBackend::by_name(name).unwrap());
        let p = c.allocate(24, Tag::Other).unwrap();
        let addr = p.as_ptr() as usize;
        // SAFETY: `p` is live with 24 bytes; 20 is a deliberate lie, caught.
        unsafe { c.deallocate(p, 20) };
        // SAFETY: deliberately a double free: refused without touching memory.
        unsafe { c.deallocate(p, 24) };
        let mut local = [0u8; 32];
        let foreign = NonNull::from(&mut local).cast::<u8>();
        // SAFETY: deliberately foreign: refused without touching memory.
        unsafe { c.deallocate(foreign, 32) };
        // SAFETY: deliberately foreign, through resize: refused, `None`.
        assert!(unsafe { c.resize(foreign, 32, 64) }.is_none());
        let f = foreign.as_ptr() as usize;
        let expected = [
            format!("free of {addr:#x} with osize 20, but its size is 24"),
            format!("free of {addr:#x}, which is not a live block (double free or foreign)"),
            format!("free of {f:#x}, which is not a live block (double free or foreign)"),
            format!("resize of {f:#x}, which is not a live block (double free or foreign)"),
        ];
        let got: Vec<String> = c.complaints().iter().map(Complaint::to_string).collect();
        assert_eq!(got, expected, "{name}");
        assert_eq!(
            c.report(),
            expected
                .iter()
                .map(|m| format!("checker: {m}\n"))
                .collect::<String>()
        );
        assert!(c.leaks().is_empty(), "the lied-about block was freed whole");
    }
}

#[test]
fn strict_checker_panics_with_the_complaint() {
    let mut c = Checker::strict(backends::System::new());
    let p = c.allocate(24, Tag::Other).unwrap();
    let addr = p.as_ptr() as usize;
    let msg = raised(|| {
        // SAFETY: `p` is live; the wrong osize makes the strict checker panic before any free.
        unsafe { c.deallocate(p, 25) };
    });
    assert_eq!(
        msg,
        format!("checker: free of {addr:#x} with osize 25, but its size is 24")
    );
    // SAFETY: still live (the panic came before the free).
    unsafe { c.deallocate(p, 24) };
    assert!(c.is_clean());
}

#[test]
fn truncated_and_corrupt_traces_have_these_messages() {
    const H: &[u8] = b"LMEMTRC\x01\xF8\x03\x01t";
    let with = |events: &[u8]| [H, events].concat();
    for (bytes, msg) in [
        (
            b"LMEM".to_vec(),
            "truncated trace: file ends at byte 4 after 0 complete events, expected the magic",
        ),
        (
            b"GIF89a\x01\x00".to_vec(),
            "not an lmem trace: expected magic \"LMEMTRC\" at byte 0, found \"GIF89a\\u{1}\"",
        ),
        (
            with(&[0x08]),
            "truncated trace: file ends at byte 13 after 0 complete events, expected the size \
             of an alloc",
        ),
        (
            with(&[0x08, 40]),
            "truncated trace: file ends at byte 14 after 1 complete events, expected an event \
             or the end marker",
        ),
        (
            with(&[0x08, 40, 0x02, 0, 41, 0x03, 2]),
            "corrupt trace: free of block 0 with osize 41, but its size is 40, at byte 14 \
             (event 1)",
        ),
        (
            with(&[0x08, 40, 0x02, 0, 40, 0x02, 0, 40, 0x03, 3]),
            "corrupt trace: free of block 0, which is not live, at byte 17 (event 2)",
        ),
        (
            with(&[0x02, 7, 40, 0x03, 1]),
            "corrupt trace: unknown block id 7 at byte 12 (event 0); only 0 ids assigned so far",
        ),
        (
            with(&[0xC0]),
            "corrupt trace: bad operation byte 0xc0 at byte 12 (event 0)",
        ),
        (
            with(&[0x08, 40, 0x03, 5]),
            "corrupt trace: end marker at byte 14 counts 5 events, but 1 were read",
        ),
        (
            with(&[0x03, 0, 0xFF, 0xFF]),
            "corrupt trace: 2 bytes after the end marker, from byte 14",
        ),
    ] {
        let e = Trace::from_bytes(&bytes).unwrap_err();
        assert_eq!(e.to_string(), msg, "{bytes:x?}");
    }
}

/// Found by the fuzz harness (tests/fuzz_heap.rs): with a limit of 2 to 7 elements, `try_grow_vector` grew a small
/// vector to `MIN_VECTOR` (4) elements, past the limit (Lua's own `luaM_growaux_` has the same
/// arithmetic but only ever passes limits far above 8). The growth is now clamped to the limit.
#[test]
fn grow_vector_limit_below_twice_the_minimum() {
    for limit in 1..2 * lmem::MIN_VECTOR {
        let mut h = Heap::new(backends::System::new());
        let mut size = 0;
        // SAFETY: a null vector of size 0.
        let v =
            unsafe { h.try_grow_vector::<u64>(ptr::null_mut(), 0, &mut size, limit, "x") }.unwrap();
        assert!(size <= limit, "limit {limit}: grew to {size}");
        // SAFETY: room for `size` elements.
        unsafe { h.free_array(v, size) };
    }
}
