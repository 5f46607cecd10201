//! Trace replay per backend, on the recorded fixtures (`tests/fixtures/*.lmemtrace`): the same
//! real Lua allocation sequence performed through a fresh `Heap` over each backend, at the
//! backend's static type. Grouped `replay/<backend>`; one group per fixture when there are
//! several (`replay-<name>/<backend>`).
//!
//! Only the replay loop is timed (its own clock, `ReplayResult::elapsed_ns`), through
//! `iter_custom`: making the backend and freeing what the trace leaves live are not.

use criterion::{Criterion, criterion_group, criterion_main};
use lmem::trace::Trace;
use lmem_tool::trace_cmd::replay_on;
use std::path::Path;
use std::time::Duration;

fn fixtures() -> Vec<(String, Trace)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lmemtrace"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            let trace =
                Trace::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, trace)
        })
        .collect()
}

fn replay(c: &mut Criterion) {
    let all = fixtures();
    assert!(!all.is_empty(), "no tests/fixtures/*.lmemtrace");
    let several = all.len() > 1;
    for (name, trace) in &all {
        let group_name = if several {
            format!("replay-{name}")
        } else {
            "replay".to_owned()
        };
        let mut g = c.benchmark_group(group_name);
        g.throughput(criterion::Throughput::Elements(trace.len() as u64));
        for backend in lmem::backends::names() {
            g.bench_function(backend, |b| {
                b.iter_custom(|iters| {
                    let mut ns = 0u64;
                    for _ in 0..iters {
                        ns += replay_on(backend, trace).unwrap().elapsed_ns;
                    }
                    Duration::from_nanos(ns)
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = replay
}
criterion_main!(benches);
