//! libFuzzer target: any bytes through the trace parser. An accepted trace must write back
//! canonically, read back equal and replay cleanly on every backend under a strict checker;
//! a rejected one must say where, within the input.
//!
//! `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run trace_parse`
#![no_main]

use libfuzzer_sys::fuzz_target;
use lmem::backends;
use lmem::trace::{Trace, replay};
use lmem::{Checker, Heap};

fuzz_target!(|data: &[u8]| {
    let trace = match Trace::from_bytes(data) {
        Ok(t) => t,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut canon = Vec::new();
    trace.write_to(&mut canon).expect("writing to a Vec");
    assert!(canon.len() <= data.len());
    let again = Trace::from_bytes(&canon).expect("a written trace reads back");
    assert_eq!(again, trace);
    let s = trace.summary();
    assert!(s.frees <= s.allocations);
    for name in backends::names() {
        let mut heap = Heap::new(Checker::strict(
            backends::by_name(name).expect("compiled in"),
        ));
        heap.set_limit(Some(16 << 20));
        let r = replay(&trace, &mut heap);
        assert_eq!(r.ops + r.skipped_failed, trace.len() as u64);
        assert_eq!(heap.total_bytes(), 0);
        assert!(heap.backend().is_clean(), "{}", heap.backend().report());
    }
});
