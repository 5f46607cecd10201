//! `lmem`: benchmarks, reports and allocation traces for lmem's backends.
//!
//! ```text
//! lmem bench [options]             workloads, states and trim on stock, backends and peers
//! lmem trace record|replay|info    allocation traces
//! lmem stress [options]            many states on many threads, with faults and hot swaps
//! lmem report report.json          render a report again (report.html, markdown)
//! lmem backends                    compiled backends and installed peers
//! lmem completions SHELL           a completion script for bash, zsh, fish, …
//! lmem lua [lmem-lua args]         the lmem-lua interpreter itself
//! ```
//!
//! Exit status: 0 on success, 1 when the work ran and something in it failed, 2 on a bad
//! command line or unreadable input.

use lmem_tool::cli::{self, Command};
use lmem_tool::{self as tool, ToolError};
use std::os::unix::ffi::OsStringExt;

fn main() {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The interpreter gets its arguments untouched (bytes, not UTF-8), as `lmem-lua` would:
    // clap never sees them.
    if raw.get(1).is_some_and(|a| a == "lua") {
        let mut argv: Vec<Vec<u8>> = raw.into_iter().map(OsStringExt::into_vec).collect();
        argv.remove(1);
        argv[0] = b"lmem-lua".to_vec();
        std::process::exit(lmem_lua::standalone::main_with_args(&argv));
    }
    // A child of the states scenario: not a subcommand the help or completions show.
    let result = if raw.get(1).is_some_and(|a| a == "__states") {
        cli::parse_states_child(raw.into_iter().skip(1)).and_then(tool::states::child)
    } else {
        cli::parse(raw).and_then(run)
    };
    if let Err(e) = result {
        eprintln!("lmem: {e}");
        std::process::exit(e.exit_code());
    }
}

fn run(cli: cli::Cli) -> Result<(), ToolError> {
    match cli.command {
        Command::Bench(a) => tool::bench::run(a),
        Command::Trace(t) => tool::trace_cmd::run(t),
        Command::Stress(a) => tool::stress_cmd::run(a),
        Command::Report(a) => tool::report::render_cmd(a),
        Command::Backends => tool::backends_cmd(),
        Command::Completions { shell } => cli::completions(shell),
        // `main` runs `lmem lua` before parsing, so this is not reached; were it, the same.
        Command::Lua { args } => {
            let mut argv = vec![b"lmem-lua".to_vec()];
            argv.extend(args.into_iter().map(OsStringExt::into_vec));
            std::process::exit(lmem_lua::standalone::main_with_args(&argv));
        }
    }
}
