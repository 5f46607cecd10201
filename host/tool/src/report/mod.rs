//! The bench report: its data (`report.json`), a self-contained page with inline SVG charts
//! (`report.html`), and markdown tables for the README.
//!
//! Everything shown is computed once, by [`Report::compute`], from what was measured: the
//! ratios to the baseline, the geomeans, the start-up RSS over `stock`, the comparisons of each
//! lmem backend with the same allocator preloaded under stock Lua, and the targets. The tables
//! are built once as data ([`Table`]) and rendered as markdown or HTML.

mod html;
pub mod tables;
mod targets;

pub use tables::Table;
pub use targets::Target;

use super::ToolError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the layout of `report.json`.
pub const SCHEMA: u32 = 2;

/// One configuration as the report lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConfigInfo {
    /// Name in the tables (`stock`, `slab`, `preload:mimalloc`).
    pub name: String,
    /// The lmem backend it ran with (`--backend`), or `stock` (`--stock`: no lmem layer).
    pub backend: String,
    /// The library in `LD_PRELOAD`, for a peer.
    pub preload: Option<String>,
    /// For a peer, the lmem backend on the same allocator (`mimalloc` for `preload:mimalloc`).
    #[serde(default)]
    pub same_as: Option<String>,
}

/// A peer that was not installed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MissingPeer {
    /// Its name in reports.
    pub name: String,
    /// The Debian package that would bring it.
    pub package: String,
}

/// One workload under one configuration: its timed runs (the lean path, no accounting).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    /// Workload name (file stem in `lua/bench`).
    pub workload: String,
    /// Configuration name.
    pub config: String,
    /// Every run succeeded and verified.
    pub ok: bool,
    /// Wall seconds of each successful run, in run order.
    pub wall_s: Vec<f64>,
    /// Their median (`null` when the cell failed).
    pub median_wall_s: Option<f64>,
    /// `median_wall_s` over the baseline's, same workload, same bench run.
    pub ratio: Option<f64>,
    /// Peak RSS of each run's process (KiB).
    pub max_rss_kib: Vec<u64>,
    /// Their median.
    pub median_max_rss_kib: Option<u64>,
    /// `median_max_rss_kib` over the baseline's.
    pub rss_ratio: Option<f64>,
}

/// The geometric means of one configuration over the workloads it and the baseline both passed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GeoRow {
    /// Configuration name.
    pub config: String,
    /// Geomean of time ratios.
    pub time_ratio: Option<f64>,
    /// Geomean of median wall seconds.
    pub time_s: Option<f64>,
    /// Geomean of RSS ratios.
    pub rss_ratio: Option<f64>,
    /// Workloads in the means.
    pub workloads: usize,
}

/// A run that failed: non-zero exit (the workload did not verify, or crashed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    /// Workload (or scenario).
    pub workload: String,
    /// Configuration.
    pub config: String,
    /// Which run (1-based; 0 for the untimed accounting run).
    pub run: usize,
    /// `exit status N` or `killed by signal N`.
    pub status: String,
    /// The end of its stderr.
    pub stderr: String,
}

/// Lua's own accounting of one workload, from one untimed `--stats-json` run (Lua's requests do
/// not depend on the backend, so one run tells them for every configuration).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Accounting {
    /// Workload.
    pub workload: String,
    /// The backend of that run.
    pub backend: String,
    /// Peak live bytes Lua accounted.
    pub peak_bytes: u64,
    /// New blocks Lua made.
    pub allocations: u64,
}

/// The start-up footprint of one configuration: peak RSS of an empty run (`-e ''`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Startup {
    /// Configuration.
    pub config: String,
    /// Peak RSS of each run (KiB).
    pub max_rss_kib: Vec<u64>,
    /// Their median.
    pub median_max_rss_kib: Option<u64>,
    /// The median over `stock`'s, in MiB (positive: more than stock).
    pub over_stock_mib: Option<f64>,
}

/// One workload in a [`Comparison`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PairCell {
    /// Workload.
    pub workload: String,
    /// Median wall time of the configuration over the other's.
    pub time_ratio: Option<f64>,
    /// Median peak RSS of the configuration over the other's.
    pub rss_ratio: Option<f64>,
}

/// A configuration against another on the same allocator: `system` against `stock` (the cost
/// of the lmem layer end to end: both on glibc's malloc), `mimalloc` against
/// `preload:mimalloc`, `jemalloc` against `preload:jemalloc`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    /// The lmem configuration.
    pub config: String,
    /// What it is compared with.
    pub against: String,
    /// Geomean of the time ratios.
    pub time_ratio: Option<f64>,
    /// Geomean of the peak RSS ratios.
    pub rss_ratio: Option<f64>,
    /// Per workload (those both passed).
    pub per_workload: Vec<PairCell>,
}

/// Everything `lmem bench` measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Version of this layout ([`SCHEMA`]).
    pub schema: u32,
    /// The tool and its version.
    pub tool: String,
    /// `LUA_VERSION_NUM` of the interpreter.
    pub lua_version: u32,
    /// When (seconds since the epoch).
    pub created_unix: u64,
    /// The interpreter command run for each process.
    pub interpreter: String,
    /// Where the RSS figures come from.
    pub rss_source: String,
    /// CPUs available.
    pub cpus: usize,
    /// 1-minute load average before the runs.
    pub loadavg_before: Option<f64>,
    /// And after.
    pub loadavg_after: Option<f64>,
    /// Seconds the whole bench took.
    pub elapsed_s: f64,
    /// Runs per workload × configuration.
    pub runs: usize,
    /// Scale factor given to every workload.
    pub scale: f64,
    /// The configuration ratios are against (`system` when measured).
    pub baseline: String,
    /// Configurations, in column order.
    pub configurations: Vec<ConfigInfo>,
    /// Peers not installed.
    pub missing_peers: Vec<MissingPeer>,
    /// Workloads, in row order.
    pub workloads: Vec<String>,
    /// One cell per workload × configuration, workload-major.
    pub results: Vec<Cell>,
    /// One row per configuration.
    pub geomean: Vec<GeoRow>,
    /// Lua's accounting per workload (one untimed `--stats-json` run each).
    #[serde(default)]
    pub accounting: Vec<Accounting>,
    /// The start-up RSS of every configuration.
    #[serde(default)]
    pub startup: Vec<Startup>,
    /// Each lmem backend against the same allocator without the layer.
    #[serde(default)]
    pub comparisons: Vec<Comparison>,
    /// The states scenario, when run.
    #[serde(default)]
    pub states: Option<crate::states::StatesReport>,
    /// The trim scenario, when run.
    #[serde(default)]
    pub trim: Option<crate::trim::TrimReport>,
    /// The targets, each with what this run measured.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Failed runs.
    pub failures: Vec<Failure>,
}

/// The median of some values (mean of the middle two for an even count); 0 for none.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The geometric mean of positive values; `None` for none.
pub fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|&v| v <= 0.0) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `a / b` when both are there and `b > 0`.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Where [`write()`] put the report.
pub struct Written {
    /// `report.json`.
    pub json: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
}

impl Report {
    /// The cell of `workload` × `config`.
    pub fn cell(&self, workload: &str, config: &str) -> Option<&Cell> {
        self.results
            .iter()
            .find(|c| c.workload == workload && c.config == config)
    }

    /// The cell of `workload` × `config` if it passed.
    fn ok_cell(&self, workload: &str, config: &str) -> Option<&Cell> {
        self.cell(workload, config).filter(|c| c.ok)
    }

    /// Whether `config` ran.
    pub fn has(&self, config: &str) -> bool {
        self.configurations.iter().any(|c| c.name == config)
    }

    /// The geomean row of `config`.
    pub fn geo(&self, config: &str) -> Option<&GeoRow> {
        self.geomean.iter().find(|g| g.config == config)
    }

    /// The start-up figure of `config`.
    pub fn startup_of(&self, config: &str) -> Option<&Startup> {
        self.startup.iter().find(|s| s.config == config)
    }

    /// Fills in everything derived: ratios to the baseline, geomeans, start-up RSS over stock,
    /// the comparisons, and the targets.
    pub fn compute(&mut self) {
        self.compute_ratios();
        let stock = self
            .startup_of("stock")
            .and_then(|s| s.median_max_rss_kib)
            .map(mib);
        for s in &mut self.startup {
            s.over_stock_mib = match (s.median_max_rss_kib, stock) {
                (Some(k), Some(st)) => Some(mib(k) - st),
                _ => None,
            };
        }
        self.comparisons = self.compute_comparisons();
        self.targets = targets::all(self);
    }

    fn compute_ratios(&mut self) {
        let base: Vec<(String, Option<f64>, Option<u64>)> = self
            .results
            .iter()
            .filter(|c| c.config == self.baseline && c.ok)
            .map(|c| (c.workload.clone(), c.median_wall_s, c.median_max_rss_kib))
            .collect();
        for c in &mut self.results {
            c.ratio = None;
            c.rss_ratio = None;
            let Some((_, bt, br)) = base.iter().find(|b| b.0 == c.workload) else {
                continue;
            };
            if !c.ok {
                continue;
            }
            c.ratio = ratio(c.median_wall_s, *bt);
            c.rss_ratio = ratio(c.median_max_rss_kib.map(|k| k as f64), br.map(|k| k as f64));
        }
        self.geomean = self
            .configurations
            .iter()
            .map(|cfg| {
                let cells: Vec<&Cell> = self
                    .results
                    .iter()
                    .filter(|c| c.config == cfg.name && c.ratio.is_some())
                    .collect();
                let ratios: Vec<f64> = cells.iter().filter_map(|c| c.ratio).collect();
                let times: Vec<f64> = cells.iter().filter_map(|c| c.median_wall_s).collect();
                let rss: Vec<f64> = cells.iter().filter_map(|c| c.rss_ratio).collect();
                GeoRow {
                    config: cfg.name.clone(),
                    time_ratio: geomean(&ratios),
                    time_s: geomean(&times),
                    rss_ratio: geomean(&rss),
                    workloads: cells.len(),
                }
            })
            .collect();
    }

    /// The pairs on the same allocator that both ran: `system`/`stock`, then each peer's lmem
    /// backend against the peer.
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![("system".to_owned(), "stock".to_owned())];
        for c in &self.configurations {
            if let Some(b) = &c.same_as {
                pairs.push((b.clone(), c.name.clone()));
            }
        }
        pairs
            .into_iter()
            .filter(|(a, b)| self.has(a) && self.has(b))
            .collect()
    }

    fn compute_comparisons(&self) -> Vec<Comparison> {
        self.pairs()
            .into_iter()
            .filter_map(|(config, against)| {
                let per_workload: Vec<PairCell> = self
                    .workloads
                    .iter()
                    .filter_map(|w| {
                        let (a, b) = (self.ok_cell(w, &config)?, self.ok_cell(w, &against)?);
                        Some(PairCell {
                            workload: w.clone(),
                            time_ratio: ratio(a.median_wall_s, b.median_wall_s),
                            rss_ratio: ratio(
                                a.median_max_rss_kib.map(|k| k as f64),
                                b.median_max_rss_kib.map(|k| k as f64),
                            ),
                        })
                    })
                    .collect();
                if per_workload.is_empty() {
                    return None; // no workload ran on both
                }
                let t: Vec<f64> = per_workload.iter().filter_map(|p| p.time_ratio).collect();
                let r: Vec<f64> = per_workload.iter().filter_map(|p| p.rss_ratio).collect();
                Some(Comparison {
                    config,
                    against,
                    time_ratio: geomean(&t),
                    rss_ratio: geomean(&r),
                    per_workload,
                })
            })
            .collect()
    }

    /// Markdown: every table, then the targets.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        for t in self.tables() {
            s.push_str(&t.markdown());
        }
        if !self.targets.is_empty() {
            s.push_str(&targets::table(&self.targets).markdown());
        }
        s
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        html::page(self)
    }
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `lmem report FILE [--out DIR]`: reads a `report.json`, computes what is derived again (so a
/// newer tool shows an older run with its own tables and targets), writes `report.html` into
/// `DIR` (default: beside FILE) and prints the markdown tables.
pub fn render_cmd(a: crate::cli::ReportArgs) -> Result<(), ToolError> {
    let text = std::fs::read_to_string(&a.file).map_err(|source| ToolError::ReadReport {
        path: a.file.clone(),
        source,
    })?;
    let mut rep: Report = serde_json::from_str(&text).map_err(|source| ToolError::BadReport {
        path: a.file.clone(),
        source,
    })?;
    rep.compute();
    let dir = match a.out {
        Some(d) => d,
        None => a
            .file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    std::fs::create_dir_all(&dir).map_err(ToolError::write(&dir))?;
    let html = dir.join("report.html");
    std::fs::write(&html, rep.html()).map_err(ToolError::write(&html))?;
    print!("{}", rep.markdown());
    println!("\nreport: {}", html.display());
    Ok(())
}

/// Writes `report.json` and `report.html` into `dir`.
pub fn write(rep: &Report, dir: &Path) -> Result<Written, ToolError> {
    let json = dir.join("report.json");
    let html = dir.join("report.html");
    let text = serde_json::to_string_pretty(rep)?;
    std::fs::write(&json, text + "\n").map_err(ToolError::write(&json))?;
    std::fs::write(&html, rep.html()).map_err(ToolError::write(&html))?;
    Ok(Written { json, html })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn medians_and_geomeans() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
        let g = geomean(&[0.5, 2.0]).unwrap();
        assert!((g - 1.0).abs() < 1e-12);
        assert_eq!(geomean(&[]), None);
        assert_eq!(esc("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }

    /// A report of one workload `w`: each config with (wall s, peak RSS KiB, start-up RSS KiB).
    pub(crate) fn report_with(configs: &[(&str, f64, u64, u64)]) -> Report {
        let info = |n: &str| ConfigInfo {
            name: n.into(),
            backend: if n.starts_with("preload:") {
                "stock"
            } else {
                n
            }
            .into(),
            preload: n.starts_with("preload:").then(|| format!("/lib/{n}.so")),
            same_as: n
                .strip_prefix("preload:")
                .filter(|b| *b != "tcmalloc")
                .map(str::to_owned),
        };
        let mut r = Report {
            schema: SCHEMA,
            tool: "test".into(),
            lua_version: 504,
            created_unix: 0,
            interpreter: "lmem lua".into(),
            rss_source: "wait4".into(),
            cpus: 2,
            loadavg_before: None,
            loadavg_after: None,
            elapsed_s: 0.0,
            runs: 1,
            scale: 1.0,
            baseline: "system".into(),
            configurations: configs.iter().map(|c| info(c.0)).collect(),
            missing_peers: Vec::new(),
            workloads: vec!["w".into()],
            results: configs
                .iter()
                .map(|&(n, t, rss, _)| Cell {
                    workload: "w".into(),
                    config: n.into(),
                    ok: true,
                    wall_s: vec![t],
                    median_wall_s: Some(t),
                    ratio: None,
                    max_rss_kib: vec![rss],
                    median_max_rss_kib: Some(rss),
                    rss_ratio: None,
                })
                .collect(),
            geomean: Vec::new(),
            accounting: Vec::new(),
            startup: configs
                .iter()
                .map(|&(n, _, _, s)| Startup {
                    config: n.into(),
                    max_rss_kib: vec![s],
                    median_max_rss_kib: Some(s),
                    over_stock_mib: None,
                })
                .collect(),
            comparisons: Vec::new(),
            states: None,
            trim: None,
            targets: Vec::new(),
            failures: Vec::new(),
        };
        r.compute();
        r
    }

    #[test]
    fn comparisons_pair_each_backend_with_its_allocator_on_stock() {
        let r = report_with(&[
            ("stock", 0.99, 2000, 1500),
            ("system", 1.0, 2048, 1600),
            ("mimalloc", 0.9, 3000, 1700),
            ("preload:mimalloc", 0.95, 2500, 1600),
            ("preload:tcmalloc", 0.95, 2500, 1600),
        ]);
        let pairs: Vec<(&str, &str)> = r
            .comparisons
            .iter()
            .map(|c| (c.config.as_str(), c.against.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("system", "stock"), ("mimalloc", "preload:mimalloc")]
        );
        let m = &r.comparisons[1];
        assert!((m.time_ratio.unwrap() - 0.9 / 0.95).abs() < 1e-12);
        assert!((m.rss_ratio.unwrap() - 1.2).abs() < 1e-12);
        let over = r.startup_of("mimalloc").unwrap().over_stock_mib.unwrap();
        assert!((over - 200.0 / 1024.0).abs() < 1e-12);
        let md = r.markdown();
        assert!(md.contains("| `mimalloc` / `preload:mimalloc` |"), "{md}");
    }
}
