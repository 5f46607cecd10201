//! RSS per state with many live states on one thread, without Lua: each simulated state makes
//! the allocations of a fresh Lua 5.4 state with its standard libraries and a small script
//! (about 30 KiB live in ~600 small blocks of 16–256 B plus a few of 1–4 KiB, with some
//! temporary blocks freed on the way and one block grown by resizes), and N of them stay alive at
//! once. Every (mode, N) is measured in a fresh child process: RSS from `/proc/self/statm` after
//! the N states, less RSS before the first, divided by N.
//!
//! ```sh
//! cargo run --release -p lmem-mimalloc --example states -- [--runs 5] [--n 2000,10000]
//!     [--modes glibc,preload,heap,shared]
//! ```
//!
//! Modes: `glibc` (the `system` backend: malloc/free), `preload` (the same with Debian's
//! `libmimalloc.so.2` in `LD_PRELOAD`, if it is installed), `heap` (`Mimalloc::new()`, one
//! mimalloc heap per state) and `shared` (`Mimalloc::shared()`, the states of a thread on one
//! heap). Runs are interleaved; the table gives medians and each mode's ratio to `glibc` of the
//! same run. `MIMALLOC_*` environment variables reach the children, so mimalloc's options can be
//! tried without a rebuild (for example `MIMALLOC_ALLOW_THP=0`).
use lmem_backend::rng::Rng;
use lmem_backend::{Backend, Tag};
use lmem_mimalloc::Mimalloc;
use lmem_system::System;
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::process::Command;
use std::ptr::NonNull;

const PRELOAD: &str = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

/// Resident bytes of this process.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}

/// `AnonHugePages` of this process (transparent huge pages), in KiB, if the kernel says.
fn anon_huge_kib() -> usize {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A small block's size, skewed to small as Lua's are (strings, closures, upvalues, table
/// headers): 65% 16–32 B, 27% 33–64, 6% 65–128, 2% 129–256.
fn small_size(rng: &mut Rng) -> usize {
    let r = rng.below(100);
    let (lo, hi) = match r {
        0..65 => (16, 32),
        65..92 => (33, 64),
        92..98 => (65, 128),
        _ => (129, 256),
    };
    lo + rng.below(hi - lo + 1)
}

/// Writes the first bytes of a block, as the object's constructor would.
fn touch(p: NonNull<u8>, size: usize) {
    // SAFETY: `p` is a fresh block of at least `size` bytes.
    unsafe { std::ptr::write_bytes(p.as_ptr(), 0xa5, size.min(64)) };
}

/// One state's life up to "script loaded": returns the live bytes it holds. `scratch` is reused
/// across states for the temporary blocks (cleared on return).
fn simulate<B: Backend>(b: &mut B, seed: u64, scratch: &mut Vec<(NonNull<u8>, usize)>) -> usize {
    let mut rng = Rng::new(seed);
    let mut live = 0;
    // The string table, grown by doubling as interned strings arrive (128 B … 1 KiB).
    let mut strt = 128;
    let mut strt_p = b.allocate(strt, Tag::Other).expect("memory");
    touch(strt_p, strt);
    for i in 0..600 {
        let size = small_size(&mut rng);
        let p = b.allocate(size, Tag::ALL[i % 8]).expect("memory");
        touch(p, size);
        live += size;
        // Garbage on the way (parser buffers, temporary strings), freed by the GC later.
        if i % 2 == 0 {
            let t = small_size(&mut rng);
            let q = b.allocate(t, Tag::String).expect("memory");
            touch(q, t);
            scratch.push((q, t));
        }
        if i % 150 == 149 && strt < 1024 {
            // SAFETY: `strt_p` is live with `strt` bytes.
            strt_p = unsafe { b.resize(strt_p, strt, strt * 2) }.expect("memory");
            strt *= 2;
        }
        if i % 100 == 99 {
            for (q, t) in scratch.drain(..) {
                // SAFETY: a live temporary block of `t` bytes, freed once.
                unsafe { b.deallocate(q, t) };
            }
        }
    }
    live += strt;
    // The globals' and a library's hash parts, the Lua stack.
    for size in [2048, 4096, 1024] {
        let p = b.allocate(size, Tag::Table).expect("memory");
        touch(p, size);
        live += size;
    }
    for (q, t) in scratch.drain(..) {
        // SAFETY: a live temporary block of `t` bytes, freed once.
        unsafe { b.deallocate(q, t) };
    }
    live
}

/// Measures `n` states made by `make`, all alive at the end; prints one result line.
fn child<B: Backend>(n: usize, mut make: impl FnMut() -> B) {
    let mut states: Vec<B> = Vec::with_capacity(n);
    // Touch the vector's memory now, so it is in the "before" figure.
    states
        .spare_capacity_mut()
        .fill_with(MaybeUninit::<B>::uninit);
    // SAFETY: writing zero bytes into the spare capacity (MaybeUninit) is always allowed.
    unsafe {
        std::ptr::write_bytes(
            states.spare_capacity_mut().as_mut_ptr(),
            0,
            states.capacity(),
        )
    };
    let mut scratch = Vec::with_capacity(4096);
    // Warm the allocator up (its own start-up memory is not per-state).
    {
        let mut warm = make();
        let _ = simulate(&mut warm, u64::MAX, &mut scratch);
    }
    let before = rss();
    let mut live = 0;
    for i in 0..n {
        let mut b = make();
        live += simulate(&mut b, i as u64, &mut scratch);
        states.push(b);
    }
    let after = rss();
    println!(
        "result {} {} {} {}",
        after.saturating_sub(before),
        live,
        anon_huge_kib(),
        n
    );
    // The process ends here: closing the states is not what is measured (and a shared-heap
    // state that still holds blocks finds them by visiting the whole shared heap).
    std::mem::forget(states);
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn arg_list(args: &[String], name: &str, default: &str) -> Vec<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str)
        .split(',')
        .map(str::to_owned)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let mode = args[1].as_str();
        let n: usize = args[2].parse().expect("N");
        match mode {
            "glibc" | "preload" => child(n, || System),
            "heap" => child(n, Mimalloc::new),
            "shared" => child(n, Mimalloc::shared),
            other => panic!("unknown mode {other}"),
        }
        return;
    }
    let runs: usize = arg_list(&args, "--runs", "5")[0].parse().expect("--runs");
    let ns: Vec<usize> = arg_list(&args, "--n", "2000,10000")
        .iter()
        .map(|s| s.parse().expect("--n"))
        .collect();
    let mut modes = arg_list(&args, "--modes", "glibc,preload,heap,shared");
    if !modes.iter().any(|m| m == "glibc") {
        modes.insert(0, "glibc".to_owned());
    }
    if !std::path::Path::new(PRELOAD).exists() {
        modes.retain(|m| m != "preload");
        eprintln!("{PRELOAD} not found: no preload mode (apt-get install libmimalloc2.0)");
    }
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "mimalloc {} (linked), {runs} runs, modes {}",
        lmem_mimalloc::mimalloc_version(),
        modes.join(",")
    );
    // (n, mode) -> per-run KiB per state, ratio to glibc of the same run, THP KiB.
    let mut per_state: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    let mut ratio: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    let mut thp: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    let mut live_kib = BTreeMap::new();
    for _ in 0..runs {
        for &n in &ns {
            let mut base = f64::NAN;
            for mode in &modes {
                let mut cmd = Command::new(&exe);
                cmd.args(["--child", mode, &n.to_string()]);
                if mode == "preload" {
                    cmd.env("LD_PRELOAD", PRELOAD);
                }
                let out = cmd.output().expect("run child");
                let text = String::from_utf8_lossy(&out.stdout);
                let line = text
                    .lines()
                    .find(|l| l.starts_with("result "))
                    .unwrap_or_else(|| {
                        panic!(
                            "child {mode} {n} failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        )
                    });
                let f: Vec<f64> = line[7..]
                    .split_whitespace()
                    .map(|x| x.parse().unwrap())
                    .collect();
                let kib = f[0] / n as f64 / 1024.0;
                if mode == "glibc" {
                    base = kib;
                }
                live_kib.insert(n, f[1] / n as f64 / 1024.0);
                let key = (n, mode.clone());
                per_state.entry(key.clone()).or_default().push(kib);
                ratio.entry(key.clone()).or_default().push(kib / base);
                thp.entry(key).or_default().push(f[2] / 1024.0);
            }
        }
    }
    println!("| N | mode | RSS per state (KiB) | × glibc | THP at end (MiB) |");
    println!("|---:|---|---:|---:|---:|");
    for &n in &ns {
        for mode in &modes {
            let key = (n, mode.clone());
            println!(
                "| {n} | {mode} | {:.1} | {:.2}× | {:.0} |",
                median(per_state.get_mut(&key).unwrap()),
                median(ratio.get_mut(&key).unwrap()),
                median(thp.get_mut(&key).unwrap()),
            );
        }
    }
    for (n, l) in live_kib {
        println!("N={n}: {l:.1} KiB requested live per state");
    }
}
