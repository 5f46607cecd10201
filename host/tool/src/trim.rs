//! The trim scenario of `lmem bench`: does the memory of a spike come back?
//!
//! Each configuration runs `lua/spike.lua` of this crate in its own interpreter process: it
//! builds about 200 MiB of Lua data (records of small tables and strings, short and long), frees
//! it, runs a full collection and then calls `lmem.trim()` (`Backend::trim` of the state's
//! backend), reading its own RSS from `/proc/self/statm` before the spike, at the spike, after
//! the collection and after the trim. Stock Lua has no `lmem` module: only the RSS after the
//! collection is measured there. One run per configuration (the program is deterministic; its
//! RSS figures hardly move between runs).

use crate::bench::Config;
use crate::report::Failure;
use crate::report::tables::{Table, times};
use crate::{Interpreter, ToolError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The program each configuration runs.
pub const SCRIPT: &str = include_str!("../lua/spike.lua");

/// MiB of Lua data the spike builds, by default.
pub const DEFAULT_SPIKE_MIB: usize = 200;

/// A trim that gives back less than this (MiB) is reported as having no effect.
pub const NO_EFFECT_MIB: f64 = 0.5;

/// What the script printed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrimRow {
    /// Configuration.
    #[serde(default)]
    pub config: String,
    /// RSS before the spike, bytes.
    pub before: u64,
    /// RSS at the spike.
    pub spike: u64,
    /// RSS after the data is freed and fully collected.
    pub collected: u64,
    /// RSS after `lmem.trim()`; `None` on stock (no `lmem` module).
    pub trimmed: Option<u64>,
    /// Lua's count at the spike, KiB.
    pub lua_kib: u64,
}

impl TrimRow {
    /// The RSS after the trim (after the collection on stock) over the RSS before the spike.
    pub fn trimmed_over_before(&self) -> Option<f64> {
        let end = self.trimmed.unwrap_or(self.collected);
        (self.before > 0).then(|| end as f64 / self.before as f64)
    }

    /// The RSS after the collection over the RSS before the spike.
    pub fn collected_over_before(&self) -> Option<f64> {
        (self.before > 0).then(|| self.collected as f64 / self.before as f64)
    }

    /// What `lmem.trim()` gave back, MiB (`None` on stock).
    pub fn released_mib(&self) -> Option<f64> {
        let t = self.trimmed?;
        Some((self.collected as f64 - t as f64) / 1048576.0)
    }
}

/// What the trim scenario measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrimReport {
    /// MiB of Lua data the spike built.
    pub spike_mib: usize,
    /// One per configuration that ran it.
    pub rows: Vec<TrimRow>,
    /// The configurations where `lmem.trim()` gave back less than [`NO_EFFECT_MIB`].
    pub no_effect: Vec<String>,
}

/// Runs the scenario: each configuration in turn, the script written into `scratch`.
pub fn run(
    interp: &Interpreter,
    configs: &[Config],
    spike_mib: usize,
    scratch: &Path,
    mut progress: impl FnMut(String),
) -> Result<(TrimReport, Vec<Failure>), ToolError> {
    let script = scratch.join("spike.lua");
    std::fs::write(&script, SCRIPT).map_err(ToolError::write(&script))?;
    let page = crate::states::page_size().to_string();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for c in configs {
        progress(format!("trim: {spike_mib} MiB spike on {}", c.name));
        let mut cmd = interp.command();
        cmd.args(c.lmem_args())
            .arg(&script)
            .arg(spike_mib.to_string())
            .arg(&page);
        if let Some(lib) = &c.preload {
            cmd.env("LD_PRELOAD", lib);
        }
        let out = cmd.output().map_err(|source| ToolError::Spawn {
            program: interp.describe(),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let parsed = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<TrimRow>(l).ok());
        match (out.status.success(), parsed) {
            (true, Some(mut row)) => {
                row.config = c.name.clone();
                rows.push(row);
            }
            (ok, _) => failures.push(Failure {
                workload: "trim".to_owned(),
                config: c.name.clone(),
                run: 1,
                status: if ok {
                    format!("unreadable output: {stdout}")
                } else {
                    out.status.to_string()
                },
                stderr,
            }),
        }
    }
    let no_effect = rows
        .iter()
        .filter(|r| r.released_mib().is_some_and(|m| m < NO_EFFECT_MIB))
        .map(|r| r.config.clone())
        .collect();
    Ok((
        TrimReport {
            spike_mib,
            rows,
            no_effect,
        },
        failures,
    ))
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / 1048576.0)
}

impl TrimReport {
    /// The row of `config`.
    pub fn row(&self, config: &str) -> Option<&TrimRow> {
        self.rows.iter().find(|r| r.config == config)
    }

    /// The table.
    pub fn tables(&self) -> Vec<Table> {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    format!("`{}`", r.config),
                    mib(r.before),
                    mib(r.spike),
                    format!(
                        "{} ({})",
                        mib(r.collected),
                        times(r.collected_over_before())
                    ),
                    match r.trimmed {
                        Some(t) => format!("{} ({})", mib(t), times(r.trimmed_over_before())),
                        None => "no `lmem` module".to_owned(),
                    },
                    // RSS may also grow by a page or two: that is nothing given back.
                    r.released_mib()
                        .map_or("–".to_owned(), |m| format!("{:.1}", m.max(0.0))),
                ]
            })
            .collect();
        let none = if self.no_effect.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self.no_effect.iter().map(|c| format!("`{c}`")).collect();
            format!(
                " `lmem.trim()` gave back less than {NO_EFFECT_MIB} MiB on {} (no trim, or \
                 nothing to give back).",
                list.join(", ")
            )
        };
        vec![Table {
            caption: format!(
                "Trim: RSS (MiB) before a spike of {} MiB of Lua data, at the spike, after \
                 freeing it and a full collection, and after `lmem.trim()` (× before the spike); \
                 one run each.{none}",
                self.spike_mib
            ),
            header: vec![
                "configuration".to_owned(),
                "before".to_owned(),
                "spike".to_owned(),
                "after collect".to_owned(),
                "after trim".to_owned(),
                "trim gave back".to_owned(),
            ],
            rows,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_what_trim_gave_back() {
        let row = |trimmed| TrimRow {
            config: "x".into(),
            before: 10 << 20,
            spike: 200 << 20,
            collected: 100 << 20,
            trimmed,
            lua_kib: 0,
        };
        let stock = row(None);
        assert_eq!(
            stock.trimmed_over_before(),
            Some(10.0),
            "stock: after collect"
        );
        assert_eq!(stock.released_mib(), None);
        let slab = row(Some(12 << 20));
        assert_eq!(slab.trimmed_over_before(), Some(1.2));
        assert_eq!(slab.released_mib(), Some(88.0));
        let table = TrimReport {
            spike_mib: 200,
            rows: vec![stock, slab],
            no_effect: vec!["system".into()],
        }
        .tables()
        .remove(0)
        .markdown();
        assert!(table.contains("less than 0.5 MiB on `system`"), "{table}");
        assert!(table.contains("| 12.0 (1.20×) | 88.0 |"), "{table}");
        assert!(table.contains("no `lmem` module"), "{table}");
    }
}
