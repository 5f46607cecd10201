//! Instruction-count probe for the core layer's overhead (run under callgrind):
//! `valgrind --tool=callgrind target/release/examples/overhead heap 1000000`
use lmem::backends::System;
use lmem::{Backend, Heap, Tag};
use std::hint::black_box;
use std::ptr::NonNull;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "heap".into());
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    match mode.as_str() {
        "raw" => {
            let mut b = System::new();
            for _ in 0..n {
                let p = b.allocate(black_box(48), Tag::Table).unwrap();
                // SAFETY: live block of 48 bytes.
                unsafe { b.deallocate(black_box(p), 48) };
            }
        }
        "basic" => {
            let mut h: Heap<System, lmem::Basic> = Heap::with_accounting(System::new());
            for _ in 0..n {
                let p = h.try_malloc(black_box(48), Tag::Table).unwrap();
                // SAFETY: live block of 48 bytes.
                unsafe { h.free(black_box(p), 48) };
            }
            black_box(h.stats());
        }
        _ => {
            let mut h = Heap::new(System::new());
            for _ in 0..n {
                let p = h.try_malloc(black_box(48), Tag::Table).unwrap();
                // SAFETY: live block of 48 bytes.
                unsafe { h.free(black_box(p), 48) };
            }
            black_box(h.stats());
        }
    }
    let _ = NonNull::<u8>::dangling();
}
