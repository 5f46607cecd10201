//! [`ToolError`]: why a subcommand of `lmem` failed, and with which exit status.
//!
//! Two kinds, by whose fault: the input (a bad command line, a name not known, a file that
//! cannot be read or is not a trace) exits with 2; the work (a workload that did not verify, a
//! stress violation, an output that cannot be written, a child that cannot be run) with 1.
//! `main` prints the Display as `lmem: …`.

use crate::stress::StressError;
use lmem::trace::TraceError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a subcommand failed.
#[derive(Debug)]
pub enum ToolError {
    /// A bad command line, in clap's words (they name the option or value, then the usage).
    Usage(String),
    /// A name the command line gave that is not known (a workload, a backend).
    Unknown {
        /// What kind of name (`workload`).
        what: &'static str,
        /// The name given.
        name: String,
        /// The names known.
        known: Vec<String>,
    },
    /// The workloads directory cannot be read.
    BenchDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The workloads directory holds no `*.lua`.
    NoWorkloads {
        /// The directory.
        dir: PathBuf,
    },
    /// `--host PROGRAM` is neither a file nor a program on `PATH`.
    NoHost {
        /// The program given.
        program: PathBuf,
    },
    /// The `lmem` C module that `--host` loads is not there.
    NoModule {
        /// The file.
        path: PathBuf,
    },
    /// `--lua PATH` is not a file.
    NoInterpreter {
        /// The path given.
        path: PathBuf,
    },
    /// A trace file cannot be opened.
    OpenTrace {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A trace file is not a valid trace (bad magic, truncated, …).
    BadTrace {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: TraceError,
    },
    /// A report file cannot be read.
    ReadReport {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A report file is not a report of this layout.
    BadReport {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The stress run was asked for something it cannot do, or could not run.
    Stress(StressError),
    /// An output file or directory cannot be made or written.
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A child process (the interpreter, or a scenario's child) cannot be started or waited for.
    Spawn {
        /// The command.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// Runs of the bench failed: each `workload on config (run N): status`.
    RunsFailed(Vec<String>),
    /// The script `lmem trace record` ran failed.
    ScriptFailed {
        /// How it ended.
        status: std::process::ExitStatus,
        /// The trace file, which holds what ran until then.
        trace: PathBuf,
    },
    /// The stress run found violations (leaks, checker complaints, pools out of bounds).
    Violations(usize),
    /// A child of the states scenario (`lmem __states`) failed.
    StatesChild(crate::states::ChildError),
    /// A report or result cannot be encoded as JSON.
    Encode(serde_json::Error),
    /// Standard output cannot be written (a closed pipe).
    Stdout(io::Error),
}

impl ToolError {
    /// The process exit status: 2 for bad input, 1 for work that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolError::Usage(_)
            | ToolError::Unknown { .. }
            | ToolError::BenchDir { .. }
            | ToolError::NoWorkloads { .. }
            | ToolError::NoInterpreter { .. }
            | ToolError::NoHost { .. }
            | ToolError::NoModule { .. }
            | ToolError::OpenTrace { .. }
            | ToolError::BadTrace { .. }
            | ToolError::ReadReport { .. }
            | ToolError::BadReport { .. } => 2,
            ToolError::Stress(e) if e.is_usage() => 2,
            ToolError::Stress(_)
            | ToolError::Write { .. }
            | ToolError::Spawn { .. }
            | ToolError::RunsFailed(_)
            | ToolError::ScriptFailed { .. }
            | ToolError::Violations(_)
            | ToolError::StatesChild(_)
            | ToolError::Encode(_)
            | ToolError::Stdout(_) => 1,
        }
    }

    /// A [`ToolError::Write`] for `path`.
    pub fn write(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ToolError {
        let path = path.into();
        move |source| ToolError::Write { path, source }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(m) => f.write_str(m),
            ToolError::Unknown { what, name, known } => {
                write!(f, "unknown {what} '{name}' (known: {})", known.join(", "))
            }
            ToolError::BenchDir { dir, source } => write!(
                f,
                "cannot read the workloads directory '{}': {source} (use --bench-dir)",
                dir.display()
            ),
            ToolError::NoWorkloads { dir } => {
                write!(f, "no *.lua workloads in '{}'", dir.display())
            }
            ToolError::NoInterpreter { path } => write!(
                f,
                "interpreter '{}' not found (build it with `cargo build --release -p lmem-lua`)",
                path.display()
            ),
            ToolError::NoHost { program } => write!(
                f,
                "interpreter '{}' not found (install Debian's with `apt-get install lua5.4`)",
                program.display()
            ),
            ToolError::NoModule { path } => write!(
                f,
                "lmem module '{}' not found (build it with `cargo build --release \
                 --manifest-path host/module/Cargo.toml`, or give --module)",
                path.display()
            ),
            ToolError::OpenTrace { path, source } => {
                write!(f, "cannot open trace file '{}': {source}", path.display())
            }
            ToolError::BadTrace { path, source } => {
                write!(f, "bad trace file '{}': {source}", path.display())
            }
            ToolError::ReadReport { path, source } => {
                write!(f, "cannot read report '{}': {source}", path.display())
            }
            ToolError::BadReport { path, source } => write!(
                f,
                "'{}' is not a report.json of lmem bench (schema {}): {source}",
                path.display(),
                crate::report::SCHEMA
            ),
            ToolError::Stress(e) => e.fmt(f),
            ToolError::Write { path, source } => {
                write!(f, "cannot write '{}': {source}", path.display())
            }
            ToolError::Spawn { program, source } => write!(f, "could not run {program}: {source}"),
            ToolError::RunsFailed(list) => write!(
                f,
                "{} workload run(s) failed to verify:\n  {}",
                list.len(),
                list.join("\n  ")
            ),
            ToolError::ScriptFailed { status, trace } => write!(
                f,
                "the script failed ({status}); the trace in '{}' holds what ran until then",
                trace.display()
            ),
            ToolError::Violations(n) => write!(f, "{n} violations"),
            ToolError::StatesChild(e) => write!(f, "states: {e}"),
            ToolError::Encode(e) => write!(f, "cannot encode the results as JSON: {e}"),
            ToolError::Stdout(e) => write!(f, "cannot write to standard output: {e}"),
        }
    }
}

impl std::error::Error for ToolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ToolError::BenchDir { source, .. }
            | ToolError::OpenTrace { source, .. }
            | ToolError::ReadReport { source, .. }
            | ToolError::Write { source, .. }
            | ToolError::Spawn { source, .. } => Some(source),
            ToolError::BadTrace { source, .. } => Some(source),
            ToolError::BadReport { source, .. } => Some(source),
            ToolError::Stress(e) => Some(e),
            ToolError::StatesChild(e) => Some(e),
            ToolError::Encode(e) => Some(e),
            ToolError::Stdout(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StressError> for ToolError {
    fn from(e: StressError) -> Self {
        ToolError::Stress(e)
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(e: serde_json::Error) -> Self {
        ToolError::Encode(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_exit_2_and_work_errors_1() {
        let unknown = ToolError::Unknown {
            what: "workload",
            name: "nope".into(),
            known: vec!["a".into(), "b".into()],
        };
        assert_eq!(unknown.to_string(), "unknown workload 'nope' (known: a, b)");
        assert_eq!(unknown.exit_code(), 2);
        let failed = ToolError::RunsFailed(vec!["bad on system (run 1): exit status 1".into()]);
        assert_eq!(
            failed.to_string(),
            "1 workload run(s) failed to verify:\n  bad on system (run 1): exit status 1"
        );
        assert_eq!(failed.exit_code(), 1);
        let write = ToolError::write("/x/report.json")(io::Error::other("disk full"));
        assert_eq!(
            write.to_string(),
            "cannot write '/x/report.json': disk full"
        );
        assert_eq!(write.exit_code(), 1);
        assert_eq!(
            ToolError::Stress(StressError::NoBackends).exit_code(),
            2,
            "a stress run asked for nothing"
        );
        assert_eq!(
            ToolError::Stress(StressError::ThreadPanicked).exit_code(),
            1
        );
    }
}
