//! The command line of `lmem`, declared with clap's derive: one struct per subcommand, value
//! parsers that name what they expected, and [`parse`], which turns clap's outcome into the
//! tool's conventions (help and version on stdout with status 0; a usage error on stderr as
//! `lmem: …` with status 2).
//!
//! `lmem lua …` is not parsed here: `main` hands everything after `lua` to the interpreter
//! untouched, as bytes. It is declared below only so that `--help` and the shell completions
//! list it.

use super::ToolError;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// `lmem`: benchmarks, reports, allocation traces and stress runs for lmem's backends.
#[derive(Debug, Parser)]
#[command(
    name = "lmem",
    version,
    about = "Benchmarks, reports, allocation traces and stress runs for lmem's allocator backends \
             on real Lua",
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark stock Lua, every backend and every peer (workloads, many states, trim); write a
    /// report.
    Bench(BenchArgs),
    /// Record, replay or summarise an allocation trace.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Run many Lua states on many threads with faults and hot swaps; check nothing is lost.
    Stress(StressArgs),
    /// Render a report.json again: report.html beside it (or in --out), markdown on stdout.
    Report(ReportArgs),
    /// List the compiled backends and the LD_PRELOAD peers installed.
    Backends,
    /// Print a shell completion script (lmem completions bash > /etc/bash_completion.d/lmem).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Run the lmem-lua interpreter: lmem lua LMEM-OPTIONS... LUA-OPTIONS... SCRIPT ARGS...
    ///
    /// Everything after `lua` goes to the interpreter untouched, as bytes; `lmem lua --help`
    /// is the interpreter's own help.
    #[command(disable_help_flag = true)]
    Lua {
        /// The lmem-lua command line.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
}

/// `lmem bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Configurations to run: lmem backends, and `stock` (Lua's own l_alloc, no lmem layer)
    /// (default: stock and every compiled backend).
    #[arg(long, value_name = "A,B", value_delimiter = ',', value_parser = config_name)]
    pub backends: Option<Vec<String>>,
    /// Workloads of lua/bench to run (default: all).
    #[arg(long, value_name = "X,Y", value_delimiter = ',', value_parser = non_empty)]
    pub workloads: Option<Vec<String>>,
    /// Runs of each workload x configuration, interleaved.
    #[arg(long, value_name = "N", default_value_t = super::bench::DEFAULT_RUNS, value_parser = positive_count)]
    pub runs: usize,
    /// Scale factor passed to each workload.
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = positive_number,
          allow_negative_numbers = true)]
    pub scale: f64,
    /// Leave out the LD_PRELOAD peers (stock Lua under mimalloc, jemalloc, tcmalloc).
    #[arg(long)]
    pub no_peers: bool,
    /// Print the report as JSON on stdout (the tables go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Where report.json and report.html go [default: target/lmem-report of the workspace].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the workloads are [default: lua/bench of the workspace].
    #[arg(long, value_name = "DIR")]
    pub bench_dir: Option<PathBuf>,
    /// Run this lmem-lua binary instead of `lmem lua` (this executable) for the workloads and
    /// the trim scenario.
    #[arg(long, value_name = "PATH", conflicts_with = "host")]
    pub lua: Option<PathBuf>,
    /// Run the workloads on this stock Lua interpreter instead (e.g. `lua5.4`): `stock` and the
    /// peers as it is, each backend as `LMEM_BACKEND=B lua5.4 -l lmem` through the `lmem` C
    /// module. Only backends with exact ownership (the module swaps at load), only the
    /// workloads scenario.
    #[arg(long, value_name = "PROGRAM")]
    pub host: Option<PathBuf>,
    /// The `lmem` C module that `--host` loads
    /// [default: host/module/target/release/liblmem.so of the workspace].
    #[arg(long, value_name = "FILE", requires = "host")]
    pub module: Option<PathBuf>,
    /// The scenarios to run: workloads (every workload of lua/bench, and the start-up RSS),
    /// states (many small states: footprint and state per request), trim (a spike of Lua data
    /// freed, collected, then lmem.trim()) [default: all three; workloads with --host].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_enum)]
    pub scenarios: Option<Vec<Scenario>>,
    /// States alive at once in the states scenario, one measurement per count (e.g.
    /// 2000,10000) [default: 2000 × --scale].
    #[arg(long, value_name = "N,M", value_delimiter = ',', value_parser = positive_count)]
    pub states: Option<Vec<usize>>,
    /// States made, run and closed per run of the state-per-request measurement
    /// [default: 5000 × --scale].
    #[arg(long, value_name = "N", value_parser = positive_count)]
    pub requests: Option<usize>,
    /// MiB of Lua data the trim scenario builds and frees [default: 200 × --scale].
    #[arg(long, value_name = "MIB", value_parser = positive_count)]
    pub spike_mib: Option<usize>,
}

/// A scenario of `lmem bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every workload of lua/bench, timed, and the start-up RSS.
    Workloads,
    /// Many small states: RSS per state, and states per second made, run and closed.
    States,
    /// A spike of Lua data freed, collected, then `lmem.trim()`: what RSS comes back.
    Trim,
}

/// `lmem __states`: a child of the states scenario of `lmem bench` (one measurement, as JSON
/// on stdout). Not a subcommand of [`Cli`], so that neither the help nor the completions show
/// it: `main` parses it apart, as it does `lmem lua`.
#[derive(Clone, Debug, Parser)]
#[command(name = "lmem __states")]
pub struct StatesChildArgs {
    /// The backend.
    #[arg(long, default_value = "system", value_parser = backend_name)]
    pub backend: String,
    /// Stock Lua instead (luaL_newstate, Lua's own l_alloc).
    #[arg(long)]
    pub stock: bool,
    /// What to measure.
    #[arg(value_enum)]
    pub mode: StatesMode,
    /// How many states.
    #[arg(value_parser = positive_count)]
    pub count: usize,
}

/// What one child of the states scenario measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatesMode {
    /// `count` states alive at once.
    Footprint,
    /// `count` states made, run and closed one after another.
    Requests,
}

/// `lmem report`.
#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// The report.json `lmem bench` wrote.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where report.html goes [default: the directory of FILE].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `lmem trace …`.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Run a script under lmem-lua and record every call of its allocation function.
    Record(RecordArgs),
    /// Replay a trace on every backend (or those given) and print ns per operation.
    Replay(ReplayArgs),
    /// Summarise a trace: its header, event counts and the mix of Lua types.
    Info {
        /// The trace file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `lmem trace record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Where the trace goes.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// The backend the script runs on.
    #[arg(long, value_name = "NAME", default_value = "system", value_parser = backend_name)]
    pub backend: String,
    /// Run this lmem-lua binary instead of `lmem lua` (this executable).
    #[arg(long, value_name = "PATH")]
    pub lua: Option<PathBuf>,
    /// The script, then its arguments (passed on untouched).
    #[arg(required = true, trailing_var_arg = true, value_name = "SCRIPT [ARGS]")]
    pub command: Vec<OsString>,
}

/// `lmem trace replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A backend to replay on; repeat or list them (default: every compiled one).
    #[arg(long = "backend", visible_alias = "backends", value_name = "NAME",
          value_delimiter = ',', value_parser = backend_name)]
    pub backends: Vec<String>,
    /// Replays per backend, round-robin.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = positive_count)]
    pub runs: usize,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `lmem stress`.
#[derive(Debug, Args)]
pub struct StressArgs {
    /// Worker threads [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = positive_count)]
    pub threads: Option<usize>,
    /// Stop after S seconds [default: 30].
    #[arg(long, value_name = "S", value_parser = positive_number, allow_negative_numbers = true,
          conflicts_with = "states")]
    pub seconds: Option<f64>,
    /// Stop after N states in all (instead of a time).
    #[arg(long, value_name = "N", value_parser = positive_count)]
    pub states: Option<usize>,
    /// Probability that an allocation fails (0 for none) [default: 0.0005].
    #[arg(long, value_name = "P", value_parser = probability, allow_negative_numbers = true)]
    pub fault_rate: Option<f64>,
    /// Hot swaps scheduled per state, at most [default: 2].
    #[arg(long, value_name = "N")]
    pub swaps: Option<u32>,
    /// Workload scale factor [default: 0.02].
    #[arg(long, value_name = "F", value_parser = positive_number, allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// Backends to draw from (default: all compiled in).
    #[arg(long, value_name = "A,B", value_delimiter = ',', value_parser = backend_name)]
    pub backends: Option<Vec<String>>,
    /// Workloads of lua/bench to draw from (default: all).
    #[arg(long, value_name = "X,Y", value_delimiter = ',', value_parser = non_empty)]
    pub workloads: Option<Vec<String>>,
    /// Seed of everything random.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Also measure 1 thread against N threads (no faults, no swaps).
    #[arg(long)]
    pub scaling: bool,
}

/// Parses the command line (`argv[0]` first). Help and `--version` are printed on stdout and
/// exit with 0, as clap does; a bad command line comes back as [`ToolError::Usage`] with clap's
/// message (which names the bad option or value and shows the usage).
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Cli, ToolError> {
    Cli::try_parse_from(argv).map_err(usage_error)
}

/// clap's error as a [`ToolError::Usage`]; help and version are printed and exit at once.
fn usage_error(e: clap::Error) -> ToolError {
    if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // --help, --version (status 0), or no command at all (the help, status 2).
        e.exit();
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    ToolError::Usage(text.trim_end().to_owned())
}

/// Parses the command line of `lmem __states` (after `__states`), with [`parse`]'s conventions.
pub fn parse_states_child(
    args: impl IntoIterator<Item = OsString>,
) -> Result<StatesChildArgs, ToolError> {
    StatesChildArgs::try_parse_from(args).map_err(usage_error)
}

/// Writes the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), ToolError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lmem", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script).map_err(ToolError::Stdout)
}

/// The backends compiled in, by name.
pub fn compiled_backends() -> Vec<String> {
    lmem::backends::names()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn backend_name(s: &str) -> Result<String, String> {
    let known = lmem::backends::names();
    if known.contains(&s.trim()) {
        Ok(s.trim().to_owned())
    } else {
        Err(format!(
            "unknown backend '{s}' (compiled in: {})",
            known.join(", ")
        ))
    }
}

/// A configuration of `lmem bench`: a backend, or `stock`.
fn config_name(s: &str) -> Result<String, String> {
    if s.trim() == "stock" {
        return Ok("stock".to_owned());
    }
    backend_name(s).map_err(|e| format!("{e}, or stock"))
}

fn non_empty(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        Err("expected a name".to_owned())
    } else {
        Ok(t.to_owned())
    }
}

fn positive_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive count".to_owned()),
    }
}

fn positive_number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("expected a positive number".to_owned()),
    }
}

fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("expected a probability, 0 to 1".to_owned()),
    }
}

/// Checks that every name in `given` is in `known`.
pub fn check_names(
    what: &'static str,
    given: &[String],
    known: &[String],
) -> Result<(), ToolError> {
    match given.iter().find(|g| !known.contains(g)) {
        Some(g) => Err(ToolError::Unknown {
            what,
            name: g.clone(),
            known: known.to_vec(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lmem").chain(args.iter().copied()))
    }

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_inline_separate_and_listed() {
        let Command::Bench(b) = cli(&[
            "bench",
            "--runs=3",
            "--scale",
            "0.5",
            "--backends",
            "system,slab",
            "--json",
        ])
        .unwrap()
        .command
        else {
            panic!("not bench")
        };
        assert_eq!(b.runs, 3);
        assert_eq!(b.scale, 0.5);
        assert_eq!(b.backends, Some(vec!["system".into(), "slab".into()]));
        assert!(b.json && !b.no_peers);
    }

    #[test]
    fn errors_name_the_option() {
        for (args, option) in [
            (&["bench", "--runs", "x"][..], "--runs"),
            (&["bench", "--scale", "-1"], "--scale"),
            (&["bench", "--backends", "nope"], "--backends"),
            (&["bench", "--json=1"], "--json"),
            (&["stress", "--fault-rate", "2"], "--fault-rate"),
        ] {
            let e = cli(args).unwrap_err().to_string();
            assert!(e.contains(option), "{args:?}: {e}");
        }
    }

    #[test]
    fn record_passes_the_script_arguments_on() {
        let Command::Trace(TraceCommand::Record(r)) =
            cli(&["trace", "record", "-o", "t", "x.lua", "--flag", "-o", "1"])
                .unwrap()
                .command
        else {
            panic!("not record")
        };
        assert_eq!(r.output, PathBuf::from("t"));
        assert_eq!(
            r.command,
            ["x.lua", "--flag", "-o", "1"].map(OsString::from)
        );
    }
}
