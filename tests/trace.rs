//! Allocation traces: record through a heap, read back with every check, replay on backends.

use lmem::backends::System;
use lmem::trace::{Event, Header, Op, Recorder, Trace, TraceError, replay};
use lmem::{Backend, Checker, Heap, Tag};
use lmem_backend::conformance::{Rng, Step as RandomStep, random_step};
use proptest::prelude::*;
use std::io::{self, Write};

/// Runs `n` random operations from `seed` through `heap` (with a few impossible requests, so
/// that failures are recorded too) and frees everything at the end, as `lua_close` does.
fn random_workload<B: Backend>(heap: &mut Heap<B>, seed: u64, n: usize) {
    let mut rng = Rng::new(seed);
    let mut live: Vec<(*mut u8, usize)> = Vec::new();
    for step in 0..n {
        if step % 97 == 13 {
            // An impossible allocation and an impossible grow: recorded as failed.
            assert!(heap.try_malloc(usize::MAX / 2, Tag::Other).is_err());
            if let Some(&(p, size)) = live.first() {
                // SAFETY: `p` is a live block of `size` bytes; the failed grow leaves it live.
                assert!(unsafe { heap.try_realloc(p, size, usize::MAX / 2) }.is_err());
            }
        }
        match random_step(&mut rng, 16 * 1024) {
            RandomStep::Alloc(size, tag) => {
                let p = heap.try_malloc(size, tag).unwrap();
                live.push((p, size));
            }
            RandomStep::Resize(i, new) if !live.is_empty() => {
                let i = i % live.len();
                let (p, size) = live[i];
                // SAFETY: live block of `size` bytes; replaced by the result.
                let q = unsafe { heap.try_realloc(p, size, new) }.unwrap();
                live[i] = (q, new);
            }
            RandomStep::Free(i) if !live.is_empty() => {
                let (p, size) = live.swap_remove(i % live.len());
                // SAFETY: live block of `size` bytes, freed once.
                unsafe { heap.free(p, size) };
            }
            _ => {}
        }
    }
    for (p, size) in live {
        // SAFETY: live blocks with their sizes, each freed once.
        unsafe { heap.free(p, size) };
    }
}

/// Records `random_workload` and returns the file and the recording heap's stats.
fn record(seed: u64, n: usize) -> (Vec<u8>, lmem::Stats) {
    let rec = Recorder::new(System::new(), Vec::new(), &Header::new(504, "random"));
    let mut heap = Heap::new(rec);
    random_workload(&mut heap, seed, n);
    let stats = heap.stats();
    let (_, written) = heap.into_backend().finish_into_parts();
    let (bytes, events) = written.expect("recording to a Vec cannot fail");
    let trace = Trace::from_bytes(&bytes).unwrap();
    assert_eq!(trace.len() as u64, events);
    (bytes, stats)
}

/// A small valid trace of every kind of event, built by hand through a recorder.
fn small_trace() -> Vec<u8> {
    let rec = Recorder::new(System::new(), Vec::new(), &Header::new(504, "t"));
    let mut heap = Heap::new(rec);
    let a = heap.try_malloc(40, Tag::Table).unwrap();
    // SAFETY: each block is live with the size passed, and freed once.
    unsafe {
        let a = heap.try_realloc(a, 40, 100).unwrap();
        let b = heap.try_malloc(10, Tag::String).unwrap();
        heap.free(a, 100);
        let c = heap.try_malloc(24, Tag::Other).unwrap();
        heap.free(b, 10);
        heap.free(c, 24);
    }
    let (bytes, events) = heap.into_backend().finish_into_parts().1.unwrap();
    assert_eq!(events, 7);
    bytes
}

const HEADER: &[u8] = b"LMEMTRC\x01\xF8\x03\x01t";

#[test]
fn the_format_is_what_the_module_docs_say_byte_by_byte() {
    let mut expected = HEADER.to_vec();
    expected.extend([
        0x08, 40, // alloc table 40 -> id 0
        0x01, 0, 40, 100, // resize id 0 40 -> 100
        0x00, 10, // alloc string 10 -> id 1
        0x02, 0, 100, // free id 0 (100 B)
        0x38, 24, // alloc other 24 -> id 0 again (most recently freed)
        0x02, 1, 10, // free id 1
        0x02, 0, 24, // free id 0
        0x03, 7, // end: 7 events
    ]);
    assert_eq!(small_trace(), expected);
    let t = Trace::from_bytes(&expected).unwrap();
    assert_eq!(t.header(), &Header::new(504, "t"));
    assert_eq!(t.block_ids(), 2);
    assert_eq!(
        t.events()[4],
        Event {
            size: 24,
            id: 0,
            op: Op::Alloc(Tag::Other),
            failed: false
        }
    );
    let s = t.summary();
    assert_eq!((s.allocations, s.resizes, s.frees), (3, 1, 3));
    assert_eq!((s.peak_live_bytes, s.peak_live_blocks), (110, 2));
    assert_eq!(s.by_tag[Tag::Table.index()].bytes, 40);
    assert_eq!(s.histogram.total(), 3);
    assert_eq!(s.live_bytes_at_end, 0);
    assert!(s.to_string().contains("table"));
}

#[test]
fn round_trip_replays_the_recording_exactly() {
    let (bytes, recorded) = record(0x7ace, 20_000);
    let trace = Trace::read(&bytes[..]).unwrap();
    assert_eq!(trace.header().lua_version, 504);
    assert_eq!(trace.header().label, "random");

    // Writing it back gives the same bytes.
    let mut again = Vec::new();
    trace.write_to(&mut again).unwrap();
    assert_eq!(again, bytes);

    let s = trace.summary();
    assert_eq!(s.allocations, recorded.allocations());
    assert_eq!((s.resizes, s.frees), (recorded.resizes, recorded.frees));
    assert_eq!(s.peak_live_bytes, recorded.peak as u64);
    assert_eq!(s.failed_allocations + s.failed_resizes, recorded.failures);
    assert!(s.failed_allocations > 0 && s.failed_resizes > 0);
    assert_eq!(s.by_tag, recorded.by_tag);
    assert_eq!(s.histogram, recorded.histogram);

    let mut system = Heap::new(System::new());
    let r = replay(&trace, &mut system);
    let mut checked = Heap::new(Checker::strict(System::new()));
    let rc = replay(&trace, &mut checked);
    assert!(
        checked.backend().is_clean(),
        "{}",
        checked.backend().report()
    );
    for (r, heap) in [(&r, system.stats()), (&rc, checked.stats())] {
        assert_eq!(r.allocations, recorded.allocations());
        assert_eq!((r.resizes, r.frees), (recorded.resizes, recorded.frees));
        assert_eq!(r.peak_bytes, recorded.peak);
        assert_eq!(r.by_tag, recorded.by_tag);
        assert_eq!((r.failures, r.orphaned, r.freed_at_end), (0, 0, 0));
        assert_eq!(r.skipped_failed, recorded.failures);
        assert_eq!(r.ops + r.skipped_failed, trace.len() as u64);
        assert_eq!(heap.live, 0, "a replay leaves nothing live");
        assert!(r.ns_per_op() > 0.0);
        assert!(r.to_string().contains("ns/op"));
    }
    assert_eq!(rc.backend, "checker(system)");
}

#[test]
fn replay_frees_what_the_trace_leaves_live_and_survives_failures() {
    // A recording that never frees its last blocks.
    let rec = Recorder::new(System::new(), Vec::new(), &Header::default());
    let mut heap = Heap::new(rec);
    let a = heap.try_malloc(1000, Tag::Table).unwrap();
    let b = heap.try_malloc(5000, Tag::String).unwrap();
    // SAFETY: `a` is live with 1000 bytes.
    let a = unsafe { heap.try_realloc(a, 1000, 3000) }.unwrap();
    let (mut system, written) = heap.into_backend().finish_into_parts();
    // The recording is finished; give the blocks back to the backend that made them.
    // SAFETY: live blocks of `system` with their sizes, freed once.
    unsafe {
        system.deallocate(std::ptr::NonNull::new(a).unwrap(), 3000);
        system.deallocate(std::ptr::NonNull::new(b).unwrap(), 5000);
    }
    let trace = Trace::from_bytes(&written.unwrap().0).unwrap();
    assert_eq!(trace.summary().live_blocks_at_end, 2);

    let mut h = Heap::new(Checker::strict(System::new()));
    let r = replay(&trace, &mut h);
    assert_eq!((r.ops, r.freed_at_end), (3, 2));
    assert!(h.backend().is_clean());

    // A limit the recording did not have: the 5000 B string fails, the table's grow fails.
    let mut h = Heap::new(Checker::strict(System::new()));
    h.set_limit(Some(2000));
    let r = replay(&trace, &mut h);
    assert_eq!((r.failures, r.allocations, r.freed_at_end), (2, 1, 1));
    assert_eq!(h.total_bytes(), 0);
    assert!(h.backend().is_clean());
}

/// Asserts `bytes` fails to read with an error `matches` accepts, and that the message says
/// where.
fn rejects(bytes: &[u8], check: impl Fn(&TraceError) -> bool, needle: &str) {
    match Trace::from_bytes(bytes) {
        Ok(_) => panic!("accepted {bytes:x?}"),
        Err(e) => {
            assert!(check(&e), "unexpected error {e:?} for {bytes:x?}");
            let msg = e.to_string();
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
        }
    }
}

fn with_events(events: &[u8]) -> Vec<u8> {
    let mut v = HEADER.to_vec();
    v.extend_from_slice(events);
    v
}

#[test]
fn every_error_variant_is_reported_with_its_place() {
    use TraceError::*;
    rejects(
        b"XMEMTRC\x01\0\0\x03\0",
        |e| matches!(e, BadMagic { .. }),
        "LMEMTRC",
    );
    rejects(
        b"\x7fELF",
        |e| matches!(e, BadMagic { .. }),
        "not an lmem trace",
    );
    rejects(
        b"LMEMTRC\x02\0\0\x03\0",
        |e| matches!(e, UnsupportedVersion { version: 2 }),
        "version 2",
    );
    rejects(
        b"LMEMTRC\x01\xff\xff\xff\xff\x7f\0\x03\0",
        |e| matches!(e, BadHeader { offset: 8, .. }),
        "byte 8",
    );
    rejects(
        b"LMEMTRC\x01\0\x81\x40",
        |e| matches!(e, BadHeader { offset: 9, .. }),
        "label longer",
    );
    rejects(
        b"LMEMTRC\x01\0\x02\xff\xfe\x03\0",
        |e| matches!(e, BadHeader { offset: 10, .. }),
        "UTF-8",
    );
    rejects(
        &with_events(&[0x08, 40]),
        |e| {
            matches!(
                e,
                Truncated {
                    events: 1,
                    offset: 14,
                    ..
                }
            )
        },
        "after 1 complete events",
    );
    rejects(
        &with_events(&[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]),
        |e| matches!(e, VarintOverflow { offset: 13, .. }),
        "byte 13",
    );
    for bad in [0x40, 0x80, 0x06, 0x0A, 0x09, 0x07, 0x0B] {
        rejects(
            &with_events(&[bad, 0, 0, 0]),
            |e| matches!(e, BadOp { offset: 12, event: 0, byte } if *byte == bad),
            "bad operation byte",
        );
    }
    rejects(
        &with_events(&[0x08, 0, 0x03, 1]),
        |e| matches!(e, ZeroSize { offset: 12, .. }),
        "0 bytes",
    );
    rejects(
        &with_events(&[0x08, 8, 0x01, 0, 8, 0, 0x03, 2]),
        |e| {
            matches!(
                e,
                ZeroSize {
                    offset: 14,
                    event: 1
                }
            )
        },
        "0 bytes",
    );
    rejects(
        &with_events(&[0x08, 8, 0x02, 1, 8]),
        |e| {
            matches!(
                e,
                IdOutOfRange {
                    id: 1,
                    assigned: 1,
                    event: 1,
                    ..
                }
            )
        },
        "unknown block id 1",
    );
    rejects(
        &with_events(&[
            0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1,
        ]),
        |e| matches!(e, IdOutOfRange { id: u64::MAX, .. }),
        "unknown block id",
    );
    rejects(
        &with_events(&[0x08, 8, 0x02, 0, 8, 0x02, 0, 8]),
        |e| {
            matches!(
                e,
                NotLive {
                    id: 0,
                    event: 2,
                    op: "free",
                    ..
                }
            )
        },
        "not live",
    );
    rejects(
        &with_events(&[0x08, 8, 0x02, 0, 8, 0x01, 0, 8, 16]),
        |e| matches!(e, NotLive { op: "resize", .. }),
        "resize of block 0",
    );
    rejects(
        &with_events(&[0x08, 8, 0x02, 0, 9]),
        |e| {
            matches!(
                e,
                SizeMismatch {
                    recorded: 8,
                    given: 9,
                    op: "free",
                    ..
                }
            )
        },
        "osize 9, but its size is 8",
    );
    // A failed resize leaves the old size: freeing with the new one is a mismatch.
    rejects(
        &with_events(&[0x08, 8, 0x05, 0, 8, 99, 0x02, 0, 99]),
        |e| {
            matches!(
                e,
                SizeMismatch {
                    recorded: 8,
                    given: 99,
                    event: 2,
                    ..
                }
            )
        },
        "event 2",
    );
    rejects(
        &with_events(&[0x08, 8, 0x03, 2]),
        |e| {
            matches!(
                e,
                CountMismatch {
                    recorded: 2,
                    read: 1,
                    offset: 14
                }
            )
        },
        "counts 2 events",
    );
    rejects(
        &with_events(&[0x08, 8, 0x03, 1, 0]),
        |e| {
            matches!(
                e,
                TrailingGarbage {
                    offset: 16,
                    bytes: 1
                }
            )
        },
        "after the end marker",
    );
    struct Broken;
    impl io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let e = Trace::read(Broken).unwrap_err();
    assert!(matches!(e, Io(_)) && e.to_string().contains("disk on fire"));
    // `TooManyBlocks` needs 2^32 live blocks: not crafted here.

    // And the valid versions of the same shapes are accepted.
    let ok = Trace::from_bytes(&with_events(&[
        0x3C, 9, 0x08, 8, 0x05, 0, 8, 99, 0x02, 0, 8, 0x03, 4,
    ]))
    .unwrap();
    assert_eq!(ok.events()[0].id, Event::NO_ID);
    assert!(ok.events()[0].failed && ok.events()[2].failed);
    // Non-minimal varints are accepted.
    assert!(Trace::from_bytes(&with_events(&[0x08, 0x88, 0x00, 0x02, 0, 8, 0x03, 2])).is_ok());
}

#[test]
fn truncation_at_every_offset_is_reported_as_truncation() {
    for bytes in [small_trace(), record(1, 300).0] {
        for cut in 0..bytes.len() {
            match Trace::from_bytes(&bytes[..cut]) {
                Err(TraceError::Truncated { offset, .. }) => {
                    assert!(offset <= cut as u64, "offset {offset} past the cut {cut}")
                }
                other => panic!("cut at {cut} of {}: {other:?}", bytes.len()),
            }
        }
        assert!(Trace::from_bytes(&bytes).is_ok());
    }
}

/// A writer that fails once `budget` bytes have been written.
struct FailAfter {
    budget: usize,
    written: usize,
}

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written >= self.budget {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf.len().min(self.budget - self.written);
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn io_errors_while_recording_are_reported_by_finish() {
    // The whole file's size, so that the last budget fails only on the end marker.
    let full = {
        let mut heap = Heap::new(Recorder::new(
            System::new(),
            Vec::new(),
            &Header::new(0, "x"),
        ));
        random_workload(&mut heap, 1, 30_000);
        heap.into_backend().finish_into_parts().1.unwrap().0.len()
    };
    assert!(full > 100_000);
    for budget in [0, 5, 100, 70_000, full - 1] {
        let out = FailAfter { budget, written: 0 };
        let mut heap = Heap::new(Recorder::new(System::new(), out, &Header::new(0, "x")));
        random_workload(&mut heap, 1, 30_000);
        assert_eq!(
            heap.total_bytes(),
            0,
            "the heap works on, whatever the writer does"
        );
        let failed_early = heap.backend().error().is_some();
        let err = heap.into_backend().finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "budget {budget}");
        // Output is buffered (64 KiB): small budgets fail while recording, the last at finish.
        assert_eq!(failed_early, budget < 1000, "budget {budget}");
    }
    // A writer that does not fail gives the count back.
    let out = FailAfter {
        budget: usize::MAX,
        written: 0,
    };
    let mut heap = Heap::new(Recorder::new(System::new(), out, &Header::default()));
    random_workload(&mut heap, 3, 1000);
    let (_, events) = heap.into_backend().finish().unwrap();
    assert!(events > 1000);
}

#[test]
fn fixtures_replay_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lmemtrace"))
        .collect();
    files.sort();
    if files.is_empty() {
        eprintln!(
            "skipped: no tests/fixtures/*.lmemtrace yet (record one with `lmem trace record`)"
        );
        return;
    }
    for path in files {
        let file = std::fs::File::open(&path).unwrap();
        let trace = Trace::read(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!trace.is_empty(), "{}: no events", path.display());
        let s = trace.summary();
        let mut heap = Heap::new(Checker::strict(System::new()));
        let r = replay(&trace, &mut heap);
        assert!(heap.backend().is_clean(), "{}", heap.backend().report());
        assert_eq!(r.allocations, s.allocations, "{}", path.display());
        assert_eq!(r.peak_bytes as u64, s.peak_live_bytes, "{}", path.display());
        let mut again = Vec::new();
        trace.write_to(&mut again).unwrap();
        assert_eq!(again, std::fs::read(&path).unwrap(), "{}", path.display());
    }
}

/// Reads `bytes`; when they pass, replays them on a small limited heap, which must end clean.
fn read_and_replay(bytes: &[u8]) {
    if let Ok(trace) = Trace::from_bytes(bytes) {
        let s = trace.summary();
        assert!(s.frees <= s.allocations);
        let mut heap = Heap::new(Checker::strict(System::new()));
        heap.set_limit(Some(16 << 20));
        replay(&trace, &mut heap);
        assert_eq!(heap.total_bytes(), 0);
        assert!(heap.backend().is_clean());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        with_header in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes = if with_header { with_events(&body) } else { body };
        read_and_replay(&bytes);
    }

    #[test]
    fn flipped_bytes_never_panic(
        seed in 0u64..8,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = record(seed, 60).0;
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        read_and_replay(&bytes);
    }
}
