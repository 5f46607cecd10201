//! Fuzzing the trace reader: recorded traces mutated structurally (insertions, deletions,
//! duplications, splices, truncations, end markers re-counted) through both parser entry points;
//! every file is either rejected with the place of the fault or replays cleanly.
//! `PROPTEST_CASES` raises the case count.

use lmem::backends::{self};
use lmem::trace::{Header, Recorder, Trace, TraceError, replay};
use lmem::{Backend, Checker, Heap, Tag};
use proptest::prelude::*;
use std::io::{self, Read};
use std::ptr::NonNull;
mod common;
use common::{cases, pick};

// ---------------------------------------------------------------------------------------------
// Traces: structural mutations of recorded traces.

/// A recorded trace of `n` random calls (with failed requests), from `seed`.
fn recorded(seed: u64, n: usize) -> Vec<u8> {
    let rec = Recorder::new(
        backends::System::new(),
        Vec::new(),
        &Header::new(504, "fuzz"),
    );
    let mut heap = Heap::new(rec);
    let mut rng = lmem::Rng::new(seed);
    let mut live: Vec<(*mut u8, usize)> = Vec::new();
    for step in 0..n {
        let size = 1 + rng.below(if step % 11 == 0 { 5000 } else { 100 });
        match rng.below(6) {
            0..=2 => live.push((heap.try_malloc(size, Tag::ALL[rng.below(8)]).unwrap(), size)),
            3 if !live.is_empty() => {
                let i = rng.below(live.len());
                let (p, old) = live[i];
                // SAFETY: live with `old` bytes; replaced.
                live[i] = (unsafe { heap.try_realloc(p, old, size) }.unwrap(), size);
            }
            4 if !live.is_empty() => {
                let (p, old) = live.swap_remove(rng.below(live.len()));
                // SAFETY: live with `old` bytes; freed once.
                unsafe { heap.free(p, old) };
            }
            _ => {
                assert!(heap.try_malloc(usize::MAX - step, Tag::Other).is_err());
            }
        }
    }
    // Some blocks are left live on purpose (a trace may end with live blocks); free them
    // through the backend after recording, so that nothing leaks.
    let (mut system, written) = heap.into_backend().finish_into_parts();
    for (p, size) in live {
        // SAFETY: a live system block of `size` bytes (the recorder forwards unchanged).
        unsafe { system.deallocate(NonNull::new(p).unwrap(), size) };
    }
    written.unwrap().0
}

/// The recorded corpus, plus `tests/fixtures/*.lmemtrace` when there are any.
fn corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..6).map(|s| recorded(s, 20 + 30 * s as usize)).collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lmemtrace"))
        .filter(|p| p.metadata().is_ok_and(|m| m.len() <= 1 << 20))
        .collect();
    files.sort();
    v.extend(
        files
            .into_iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|f| valid_prefix(&f, 3000)),
    );
    v
}

/// A valid trace made of the events in (about) the first `len` bytes of `file`, so that a large
/// recorded fixture is cheap enough to mutate and replay hundreds of times.
fn valid_prefix(file: &[u8], len: usize) -> Vec<u8> {
    for cut in len.min(file.len())..file.len() {
        let mut b = file[..cut].to_vec();
        b.extend([0x03, 0]);
        recount(&mut b);
        if Trace::from_bytes(&b).is_ok() {
            return b;
        }
    }
    file.to_vec()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    /// Replace the tail from here by the tail of another corpus entry from there.
    Splice(usize, usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<usize>(), 1usize..24).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        1 => (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(i, k, j)| Mutation::Splice(i, k, j)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation, corpus: &[Vec<u8>]) {
    let at = |i: &usize, len: usize| if len == 0 { 0 } else { pick(i, len + 1) };
    match m {
        Mutation::Flip(i, x) if !bytes.is_empty() => {
            let k = pick(i, bytes.len());
            bytes[k] ^= x;
        }
        Mutation::Insert(i, b) => {
            let k = at(i, bytes.len());
            bytes.splice(k..k, b.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let k = at(i, bytes.len()).min(bytes.len());
            let end = (k + n).min(bytes.len());
            bytes.drain(k..end);
        }
        Mutation::Duplicate(i, n) => {
            let k = at(i, bytes.len()).min(bytes.len());
            let end = (k + n).min(bytes.len());
            let copy = bytes[k..end].to_vec();
            bytes.splice(end..end, copy);
        }
        Mutation::Splice(i, k, j) => {
            let other = &corpus[k % corpus.len()];
            let cut = at(i, bytes.len()).min(bytes.len());
            let from = at(j, other.len()).min(other.len());
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
        }
        Mutation::Truncate(i) => {
            let k = at(i, bytes.len()).min(bytes.len());
            bytes.truncate(k);
        }
        Mutation::Flip(..) => {}
    }
}

/// A reader that hands out one byte per call, to exercise `Trace::read`'s buffering.
struct Dribble<'a>(&'a [u8]);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Where an error says the problem is, for the variants that say it.
fn error_offset(e: &TraceError) -> Option<u64> {
    match e {
        TraceError::BadHeader { offset, .. }
        | TraceError::Truncated { offset, .. }
        | TraceError::VarintOverflow { offset, .. }
        | TraceError::BadOp { offset, .. }
        | TraceError::ZeroSize { offset, .. }
        | TraceError::IdOutOfRange { offset, .. }
        | TraceError::NotLive { offset, .. }
        | TraceError::SizeMismatch { offset, .. }
        | TraceError::CountMismatch { offset, .. }
        | TraceError::TrailingGarbage { offset, .. } => Some(*offset),
        _ => None,
    }
}

/// Parses `bytes` both ways and checks everything a caller may rely on. Returns whether it was
/// accepted.
fn parse_and_check(bytes: &[u8]) -> bool {
    let fast = Trace::from_bytes(bytes);
    let slow = Trace::read(Dribble(bytes));
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "both entry points agree"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "both entry points agree"),
        _ => panic!("from_bytes {fast:?} but read {slow:?}"),
    }
    let trace = match fast {
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
            if let Some(off) = error_offset(&e) {
                assert!(
                    off <= bytes.len() as u64,
                    "{msg} (file of {} B)",
                    bytes.len()
                );
            }
            if let TraceError::TrailingGarbage { offset, bytes: n } = e {
                assert_eq!(offset + n, bytes.len() as u64);
            }
            return false;
        }
        Ok(t) => t,
    };
    // Written back: canonical, and read back equal.
    let mut canon = Vec::new();
    trace.write_to(&mut canon).unwrap();
    let again = Trace::from_bytes(&canon).expect("a written trace reads back");
    assert_eq!(again, trace);
    let mut twice = Vec::new();
    again.write_to(&mut twice).unwrap();
    assert_eq!(twice, canon, "writing is canonical");
    assert!(
        canon.len() <= bytes.len(),
        "the canonical form is the shortest"
    );
    let s = trace.summary();
    assert!(s.frees <= s.allocations);
    // Replayed on every backend under a strict checker and a limit: clean at the end.
    for name in backends::names() {
        let mut heap = Heap::new(Checker::strict(
            backends::AnyBackend::by_name(name).unwrap(),
        ));
        heap.set_limit(Some(8 << 20));
        let r = replay(&trace, &mut heap);
        assert_eq!(r.ops + r.skipped_failed, trace.len() as u64);
        assert_eq!(heap.total_bytes(), 0, "{name}");
        assert!(
            heap.backend().is_clean(),
            "{name}: {}",
            heap.backend().report()
        );
    }
    true
}

/// Rewrites the end marker's count when the reader says it is the only thing wrong, so that
/// mutated events get past the count check into the deeper ones.
fn recount(bytes: &mut Vec<u8>) {
    if let Err(TraceError::CountMismatch { offset, read, .. }) = Trace::from_bytes(bytes) {
        bytes.truncate(offset as usize + 1);
        let mut n = read;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                bytes.push(b);
                break;
            }
            bytes.push(b | 0x80);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(600)))]

    #[test]
    fn mutated_traces_are_rejected_with_a_place_or_replay_cleanly(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..5),
        fix_count in any::<bool>(),
    ) {
        thread_local! {
            static CORPUS: Vec<Vec<u8>> = corpus();
        }
        CORPUS.with(|corpus| {
            let mut bytes = corpus[pick(&which, corpus.len())].clone();
            for m in &mutations {
                mutate(&mut bytes, m, corpus);
            }
            if fix_count {
                recount(&mut bytes);
            }
            parse_and_check(&bytes);
        });
    }
}

/// The corpus itself is accepted, and mutations reach past the header (some are accepted, so
/// the property above checks replays, not only errors).
#[test]
fn corpus_reads_and_mutations_reach_the_events() {
    let corpus = corpus();
    for bytes in &corpus {
        assert!(parse_and_check(bytes));
    }
    let mut accepted = 0;
    for (k, bytes) in corpus.iter().enumerate() {
        for cut in (12..bytes.len()).step_by((bytes.len() / 150).max(3)) {
            let mut b = bytes.clone();
            // Delete one byte at `cut` and re-count: usually an error deep in the events, and
            // sometimes (a deleted free's id byte) a different valid trace.
            mutate(&mut b, &Mutation::Delete(cut * 7919 + k, 1), &corpus);
            recount(&mut b);
            accepted += parse_and_check(&b) as usize;
        }
    }
    assert!(accepted > 0);
}
