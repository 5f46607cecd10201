//! `lmem`: benchmarks, reports and allocation traces for lmem's backends.
//!
//! ```text
//! lmem bench [options]             every workload × backend (+ LD_PRELOAD peers), with a report
//! lmem trace record|replay|info    allocation traces
//! lmem stress [options]            many states on many threads, with faults and hot swaps
//! lmem backends                    compiled backends and installed peers
//! lmem lua [lmem-lua args]         the lmem-lua interpreter itself
//! ```

use lmem_tool::{self as tool, ToolError};
use std::os::unix::ffi::OsStringExt;

const USAGE: &str = "\
usage: lmem <command> [args]
  bench      run every workload of lua/bench under every backend and peer; write a report
  trace      record, replay or summarise an allocation trace (lmem trace --help)
  stress     run many Lua states on many threads with faults and hot swaps; check nothing is lost
  backends   list the compiled backends and the LD_PRELOAD peers installed
  lua        run the lmem-lua interpreter (lmem lua [lmem options] [lua options] [script])";

fn main() {
    let raw: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    // The interpreter gets its arguments untouched (bytes, not UTF-8), as `lmem-lua` would.
    if raw.get(1).is_some_and(|a| a == b"lua") {
        let mut argv = raw;
        argv.remove(1);
        argv[0] = b"lmem-lua".to_vec();
        std::process::exit(lmem_lua::standalone::main_with_args(&argv));
    }
    let args: Vec<String> = raw
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let result: Result<(), ToolError> = match args.first().map(String::as_str) {
        Some("bench") => tool::bench::run(rest),
        Some("trace") => tool::trace_cmd::run(rest),
        Some("stress") => tool::stress_cmd::run(rest),
        Some("backends") => tool::backends_cmd(rest),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(tool::usage(format!("unknown command '{other}'\n{USAGE}"))),
        None => Err(tool::usage(USAGE)),
    };
    if let Err(e) = result {
        eprintln!("lmem: {e}");
        std::process::exit(e.exit_code());
    }
}
