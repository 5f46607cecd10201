//! The lmem options of `lmem-lua`: what comes before the Lua options on the command line, and the
//! same settings from the environment.
//!
//! Why separate from the Lua command line: `lmem-lua` must stay a drop-in `lua`, so the lmem
//! options are only recognised *before* the first Lua option or script, and everything from there
//! on is handed to the `lua.c` port untouched.

use std::fmt;

/// One scheduled backend switch: after `after` allocations, switch to `backend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapStep {
    /// Backend name (`system`, `jemalloc`, `mimalloc`, `bump`, `slab`).
    pub backend: String,
    /// Number of allocations (new blocks, counted from the start of the state) after which to
    /// switch.
    pub after: u64,
}

/// The memory settings of one `lmem-lua` run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemOptions {
    /// Backend to start on (`None`: `system`).
    pub backend: Option<String>,
    /// Byte limit on live Lua memory.
    pub limit: Option<usize>,
    /// Print the accounting report on stderr at exit.
    pub stats: bool,
    /// Scheduled switches, in the order given.
    pub swaps: Vec<SwapStep>,
    /// Fail the n-th allocation (1-based).
    pub fail_at: Option<u64>,
    /// Run under the contract checker (osize checks, guard bytes, leak report); a complaint makes
    /// the exit status 3.
    pub check: bool,
    /// Record every call of the allocation function into this file, as an allocation trace
    /// (`lmem trace info|replay` reads it).
    pub trace: Option<String>,
    /// Write the accounting at exit as one JSON object into this file (for `lmem bench`).
    pub stats_json: Option<String>,
    /// No lmem at all: the state comes from `luaL_newstate` with Lua's own `l_alloc` (the
    /// baseline `lmem bench` measures the layer against). The other options are refused with it.
    pub stock: bool,
}

/// A bad lmem option or environment value: printed as `lmem-lua: …`, exit status 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError(pub String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

/// Parses a byte count: digits with an optional `K`, `M` or `G` suffix (powers of 1024; a
/// trailing `B`/`iB` is accepted: `64K`, `64KB`, `64KiB`). The `lmem` module's `limit` takes the
/// same strings (one parser, in `lmem-module-core`).
pub use lmem_module_core::parse_bytes;

fn parse_count(what: &str, text: &str) -> Result<u64, OptionError> {
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(n) if n > 0 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(OptionError(format!(
            "bad value for {what}: '{text}' (expected a positive integer)"
        ))),
    }
}

fn parse_limit(what: &str, text: &str) -> Result<usize, OptionError> {
    parse_bytes(text).ok_or_else(|| {
        OptionError(format!(
            "bad value for {what}: '{text}' (expected bytes, optionally with a K, M or G suffix)"
        ))
    })
}

fn check_backend(what: &str, name: &str, known: &[&str]) -> Result<String, OptionError> {
    if known.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(OptionError(format!(
            "bad value for {what}: unknown backend '{name}' (compiled in: {})",
            known.join(", ")
        )))
    }
}

fn parse_swap(what: &str, text: &str, known: &[&str]) -> Result<SwapStep, OptionError> {
    let Some((name, n)) = text.trim().rsplit_once('@') else {
        return Err(OptionError(format!(
            "bad value for {what}: '{text}' (expected NAME@N, e.g. slab@1000)"
        )));
    };
    Ok(SwapStep {
        backend: check_backend(what, name, known)?,
        after: parse_count(what, n)?,
    })
}

fn parse_flag(what: &str, text: &str) -> Result<bool, OptionError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "no" | "false" | "off" => Ok(false),
        "1" | "yes" | "true" | "on" => Ok(true),
        _ => Err(OptionError(format!(
            "bad value for {what}: '{text}' (expected 1 or 0)"
        ))),
    }
}

/// The usage text of the lmem options (printed by `--help` before the Lua options).
pub const LMEM_USAGE: &str = "\
lmem options (before the Lua options; each also from the environment):
  --backend NAME  start on backend NAME                    (LMEM_BACKEND)
  --limit BYTES   limit live Lua memory; K/M/G suffixes      (LMEM_LIMIT)
  --stats         accounting report on stderr at exit        (LMEM_STATS=1)
  --swap NAME@N   switch to NAME after N allocations; repeat (LMEM_SWAP=a@1,b@2)
  --fail-at N     fail the N-th allocation                   (LMEM_FAIL_AT)
  --check         run under the contract checker             (LMEM_CHECK=1)
  --trace FILE    record an allocation trace into FILE       (LMEM_TRACE)
  --stats-json FILE  accounting at exit as JSON into FILE   (LMEM_STATS_JSON)
  --stock         no lmem: luaL_newstate with Lua's own l_alloc (LMEM_STOCK=1)
";

/// Reads the lmem settings: the environment first (through `env`), then the lmem options at the
/// start of `args` (after the program name), which override it (`--swap` options replace
/// `LMEM_SWAP`). Returns the settings and the index of the first argument that is not an lmem
/// option.
///
/// `known` lists the backend names compiled in.
pub fn parse(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
    known: &[&str],
) -> Result<(MemOptions, usize), OptionError> {
    let mut o = MemOptions::default();
    if let Some(v) = env("LMEM_BACKEND").filter(|v| !v.is_empty()) {
        o.backend = Some(check_backend("LMEM_BACKEND", v.trim(), known)?);
    }
    if let Some(v) = env("LMEM_LIMIT").filter(|v| !v.is_empty()) {
        o.limit = Some(parse_limit("LMEM_LIMIT", &v)?);
    }
    if let Some(v) = env("LMEM_STATS") {
        o.stats = parse_flag("LMEM_STATS", &v)?;
    }
    if let Some(v) = env("LMEM_CHECK") {
        o.check = parse_flag("LMEM_CHECK", &v)?;
    }
    if let Some(v) = env("LMEM_STOCK") {
        o.stock = parse_flag("LMEM_STOCK", &v)?;
    }
    if let Some(v) = env("LMEM_SWAP") {
        for step in v.split(',').filter(|s| !s.trim().is_empty()) {
            o.swaps.push(parse_swap("LMEM_SWAP", step, known)?);
        }
    }
    if let Some(v) = env("LMEM_FAIL_AT").filter(|v| !v.is_empty()) {
        o.fail_at = Some(parse_count("LMEM_FAIL_AT", &v)?);
    }
    o.trace = env("LMEM_TRACE").filter(|v| !v.is_empty());
    o.stats_json = env("LMEM_STATS_JSON").filter(|v| !v.is_empty());

    let mut cli_swaps = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg, None),
        };
        let takes_value = matches!(
            name,
            "--backend" | "--limit" | "--swap" | "--fail-at" | "--trace" | "--stats-json"
        );
        let is_flag = matches!(name, "--stats" | "--check" | "--stock");
        if !takes_value && !is_flag {
            break;
        }
        if is_flag {
            if inline.is_some() {
                return Err(OptionError(format!("option '{name}' takes no value")));
            }
            match name {
                "--stats" => o.stats = true,
                "--stock" => o.stock = true,
                _ => o.check = true,
            }
            i += 1;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => return Err(OptionError(format!("option '{name}' needs a value"))),
                }
            }
        };
        match name {
            "--backend" => o.backend = Some(check_backend(name, &value, known)?),
            "--limit" => o.limit = Some(parse_limit(name, &value)?),
            "--swap" => cli_swaps.push(parse_swap(name, &value, known)?),
            "--trace" | "--stats-json" if value.is_empty() => {
                return Err(OptionError(format!("option '{name}' needs a file name")));
            }
            "--trace" => o.trace = Some(value),
            "--stats-json" => o.stats_json = Some(value),
            _ => o.fail_at = Some(parse_count(name, &value)?),
        }
        i += 1;
    }
    if !cli_swaps.is_empty() {
        o.swaps = cli_swaps;
    }
    if o.stock {
        let lmem_options = [
            ("--backend", o.backend.is_some()),
            ("--limit", o.limit.is_some()),
            ("--stats", o.stats),
            ("--swap", !o.swaps.is_empty()),
            ("--fail-at", o.fail_at.is_some()),
            ("--check", o.check),
            ("--trace", o.trace.is_some()),
            ("--stats-json", o.stats_json.is_some()),
        ];
        if let Some((name, _)) = lmem_options.iter().find(|(_, given)| *given) {
            return Err(OptionError(format!(
                "--stock runs without lmem: {name} cannot be used with it"
            )));
        }
    }
    Ok((o, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["system", "slab", "bump"];

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bytes_with_suffixes() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("64K"), Some(64 << 10));
        assert_eq!(parse_bytes("64kb"), Some(64 << 10));
        assert_eq!(parse_bytes("2M"), Some(2 << 20));
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        for bad in ["", "K", "12X", "-5", "1.5M", "99999999999999999999G"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn options_stop_at_the_first_lua_argument() {
        let a = args(&[
            "lmem-lua",
            "--backend",
            "slab",
            "--limit=1M",
            "--stats",
            "--swap",
            "bump@10",
            "--swap",
            "system@20",
            "--fail-at",
            "7",
            "-e",
            "x=1",
        ]);
        let (o, i) = parse(&a, |_| None, KNOWN).unwrap();
        assert_eq!(i, 11);
        assert_eq!(o.backend.as_deref(), Some("slab"));
        assert_eq!(o.limit, Some(1 << 20));
        assert!(o.stats);
        assert_eq!(o.fail_at, Some(7));
        assert_eq!(o.swaps.len(), 2);
        assert_eq!(
            o.swaps[1],
            SwapStep {
                backend: "system".into(),
                after: 20
            }
        );
    }

    #[test]
    fn environment_then_command_line() {
        let env = |k: &str| match k {
            "LMEM_BACKEND" => Some("bump".to_string()),
            "LMEM_SWAP" => Some("slab@5,system@9".to_string()),
            "LMEM_STATS" => Some("1".to_string()),
            _ => None,
        };
        let (o, i) = parse(&args(&["p", "script.lua"]), env, KNOWN).unwrap();
        assert_eq!(i, 1);
        assert_eq!(o.backend.as_deref(), Some("bump"));
        assert_eq!(o.swaps.len(), 2);
        assert!(o.stats);
        let (o, _) = parse(
            &args(&["p", "--backend", "slab", "--swap", "bump@1"]),
            env,
            KNOWN,
        )
        .unwrap();
        assert_eq!(o.backend.as_deref(), Some("slab"));
        assert_eq!(
            o.swaps,
            vec![SwapStep {
                backend: "bump".into(),
                after: 1
            }]
        );
    }

    #[test]
    fn trace_and_stats_json_files() {
        let (o, i) = parse(
            &args(&[
                "p",
                "--trace",
                "t.lmemtrace",
                "--stats-json=s.json",
                "x.lua",
            ]),
            |_| None,
            KNOWN,
        )
        .unwrap();
        assert_eq!(i, 4);
        assert_eq!(o.trace.as_deref(), Some("t.lmemtrace"));
        assert_eq!(o.stats_json.as_deref(), Some("s.json"));
        let env = |k: &str| (k == "LMEM_TRACE").then(|| "e.lmemtrace".to_string());
        let (o, _) = parse(&args(&["p"]), env, KNOWN).unwrap();
        assert_eq!(o.trace.as_deref(), Some("e.lmemtrace"));
        assert!(parse(&args(&["p", "--trace="]), |_| None, KNOWN).is_err());
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            &["p", "--backend", "nope"][..],
            &["p", "--limit", "12X"],
            &["p", "--swap", "slab"],
            &["p", "--swap", "slab@x"],
            &["p", "--fail-at", "0"],
            &["p", "--fail-at"],
            &["p", "--stats=1"],
            &["p", "--stock", "--backend", "slab"],
            &["p", "--stock", "--stats"],
        ] {
            assert!(parse(&args(bad), |_| None, KNOWN).is_err(), "{bad:?}");
        }
        assert!(
            parse(
                &args(&["p"]),
                |k| (k == "LMEM_LIMIT").then(|| "x".into()),
                KNOWN
            )
            .is_err()
        );
    }
}
