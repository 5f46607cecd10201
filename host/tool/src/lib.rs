#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod error;
pub mod peers;
pub mod report;
pub mod states;
pub mod stress;
pub mod stress_cmd;
pub mod svg;
pub mod trace_cmd;
pub mod trim;

pub use error::ToolError;

use std::path::{Path, PathBuf};

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
        let program = std::env::current_exe().map_err(|source| ToolError::Spawn {
            program: "lmem (this executable)".to_owned(),
            source,
        })?;
        Ok(Interpreter {
            program,
            prefix: vec!["lua".to_owned()],
        })
    }

    /// This executable running one of its own (hidden) subcommands: a scenario's child.
    pub fn subcommand(name: &str) -> Result<Interpreter, ToolError> {
        let mut me = Interpreter::this_exe()?;
        me.prefix = vec![name.to_owned()];
        Ok(me)
    }

    /// An `lmem-lua` (or compatible) binary at `path`.
    pub fn at(path: &Path) -> Result<Interpreter, ToolError> {
        if !path.is_file() {
            return Err(ToolError::NoInterpreter {
                path: path.to_path_buf(),
            });
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
    println!("LD_PRELOAD peers (stock Lua, no lmem layer, under another malloc):");
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
