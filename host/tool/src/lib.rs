#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod peers;
pub mod report;
pub mod stress;
pub mod stress_cmd;
pub mod svg;
pub mod trace_cmd;

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a subcommand failed, and with which exit status.
#[derive(Debug)]
pub enum ToolError {
    /// Bad command line or unreadable input (a bad trace file): exit status 2.
    Usage(String),
    /// The work ran and something in it failed (a workload did not verify): exit status 1.
    Failed(String),
}

impl ToolError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolError::Usage(_) => 2,
            ToolError::Failed(_) => 1,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(m) | ToolError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ToolError {}

/// Shorthand for a usage error.
pub fn usage(msg: impl Into<String>) -> ToolError {
    ToolError::Usage(msg.into())
}

/// The workspace root: where this crate was built from (`host/tool/../..`) if it is still there,
/// else the current directory (a copied binary run from a checkout).
pub fn workspace_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.join("lua/bench").is_dir() {
        return built.canonicalize().unwrap_or(built);
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// How to start the interpreter in a child process: a program and the arguments that come
/// before the `lmem-lua` command line.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// The program to run.
    pub program: PathBuf,
    /// Arguments before `lmem-lua`'s own (`["lua"]` when the program is `lmem` itself).
    pub prefix: Vec<String>,
}

impl Interpreter {
    /// `lmem lua`: this very executable in interpreter mode. The same library function as the
    /// `lmem-lua` binary, so it is never stale and needs no second binary (`cargo run --bin lmem`
    /// builds only `lmem`).
    pub fn this_exe() -> Result<Interpreter, ToolError> {
        let program = std::env::current_exe()
            .map_err(|e| ToolError::Failed(format!("cannot find the lmem executable: {e}")))?;
        Ok(Interpreter {
            program,
            prefix: vec!["lua".to_owned()],
        })
    }

    /// An `lmem-lua` (or compatible) binary at `path`.
    pub fn at(path: &Path) -> Result<Interpreter, ToolError> {
        if !path.is_file() {
            return Err(usage(format!(
                "interpreter '{}' not found (build it with `cargo build --release -p lmem-lua`)",
                path.display()
            )));
        }
        Ok(Interpreter {
            program: path.to_path_buf(),
            prefix: Vec::new(),
        })
    }

    /// A command for `lmem-lua args…`, with no `LMEM_*` variables inherited (the tool sets what
    /// it means to) and stdin empty.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.prefix);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LMEM_") {
                c.env_remove(k);
            }
        }
        c.env_remove("LD_PRELOAD");
        c.stdin(std::process::Stdio::null());
        c
    }

    /// How the report names it.
    pub fn describe(&self) -> String {
        let mut s = self.program.display().to_string();
        for p in &self.prefix {
            s.push(' ');
            s.push_str(p);
        }
        s
    }
}

/// `lmem backends`: the compiled backends and the peers found.
pub fn backends_cmd() -> Result<(), ToolError> {
    println!("compiled backends:");
    for name in lmem::backends::names() {
        println!("  {name}");
    }
    let missing: Vec<&str> = lmem::backends::ALL_NAMES
        .into_iter()
        .filter(|n| !lmem::backends::is_compiled(n))
        .collect();
    if !missing.is_empty() {
        println!("not compiled in: {}", missing.join(", "));
    }
    println!("LD_PRELOAD peers (the system backend under another malloc):");
    let found = peers::find();
    for p in &found {
        match &p.path {
            Some(path) => println!("  {:<18} {}", p.name, path.display()),
            None => println!(
                "  {:<18} not installed (Debian package {})",
                p.name, p.package
            ),
        }
    }
    if found.iter().any(|p| p.path.is_none()) {
        println!("install the missing peers with:\n{}", peers::INSTALL_LINE);
    }
    Ok(())
}
