//! The bench report: its data (`report.json`), a self-contained page with inline SVG charts
//! (`report.html`), and markdown tables for the README.

use super::ToolError;
use super::svg;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One configuration as the report lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConfigInfo {
    /// Name in the tables (`slab`, `preload:mimalloc`).
    pub name: String,
    /// The `--backend` it ran with.
    pub backend: String,
    /// The library in `LD_PRELOAD`, for a peer.
    pub preload: Option<String>,
}

/// A peer that was not installed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MissingPeer {
    /// Its name in reports.
    pub name: String,
    /// The Debian package that would bring it.
    pub package: String,
}

/// One workload under one configuration.
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
    /// Peak live bytes Lua accounted (the heap's `peak`), median of runs.
    pub peak_bytes: Option<u64>,
    /// New blocks Lua made, median of runs.
    pub allocations: Option<u64>,
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
    /// Workload.
    pub workload: String,
    /// Configuration.
    pub config: String,
    /// Which run (1-based).
    pub run: usize,
    /// `exit status N` or `killed by signal N`.
    pub status: String,
    /// The end of its stderr.
    pub stderr: String,
}

/// Everything `lmem bench` measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Version of this layout.
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

    /// Fills in every cell's ratios to the baseline and the geomean rows.
    pub fn compute_ratios(&mut self) {
        let base: Vec<(String, Option<f64>, Option<u64>)> = self
            .results
            .iter()
            .filter(|c| c.config == self.baseline && c.ok)
            .map(|c| (c.workload.clone(), c.median_wall_s, c.median_max_rss_kib))
            .collect();
        for c in &mut self.results {
            let Some((_, bt, br)) = base.iter().find(|b| b.0 == c.workload) else {
                continue;
            };
            if !c.ok {
                continue;
            }
            c.ratio = match (c.median_wall_s, bt) {
                (Some(t), Some(b)) if *b > 0.0 => Some(t / b),
                _ => None,
            };
            c.rss_ratio = match (c.median_max_rss_kib, br) {
                (Some(r), Some(b)) if *b > 0 => Some(r as f64 / *b as f64),
                _ => None,
            };
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

    fn geo(&self, config: &str) -> Option<&GeoRow> {
        self.geomean.iter().find(|g| g.config == config)
    }

    fn header_row(&self, first: &str) -> String {
        let mut s = format!("| {first} |");
        for c in &self.configurations {
            let _ = write!(s, " `{}` |", c.name);
        }
        s.push_str("\n|---|");
        for _ in &self.configurations {
            s.push_str("---:|");
        }
        s.push('\n');
        s
    }

    /// One markdown table: a row per workload with `value` and its ratio for every
    /// configuration (`FAILED` where the workload failed), then a geomean row of `geo`.
    fn ratio_table(
        &self,
        s: &mut String,
        value: impl Fn(&Cell) -> (String, Option<f64>),
        geo: impl Fn(&GeoRow) -> Option<f64>,
    ) {
        s.push_str(&self.header_row("workload"));
        for w in &self.workloads {
            let _ = write!(s, "| {w} |");
            for c in &self.configurations {
                match self.cell(w, &c.name) {
                    Some(x) if x.ok => match value(x) {
                        (v, Some(r)) => {
                            let _ = write!(s, " {v} ({r:.2}×) |");
                        }
                        (v, None) => {
                            let _ = write!(s, " {v} |");
                        }
                    },
                    _ => s.push_str(" FAILED |"),
                }
            }
            s.push('\n');
        }
        s.push_str("| **geomean** |");
        for c in &self.configurations {
            match self.geo(&c.name).and_then(&geo) {
                Some(r) => {
                    let _ = write!(s, " **{r:.2}×** |");
                }
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }

    /// The targets for the slab backend, each with what this run measured: geomean time
    /// at most 0.85x the baseline, ahead of every `LD_PRELOAD` peer, peak RSS at most the
    /// baseline's. Empty when `slab` was not run.
    pub fn targets(&self) -> Vec<(String, String, bool)> {
        let Some(slab) = self.geo("slab") else {
            return Vec::new();
        };
        let mut t = Vec::new();
        if let Some(r) = slab.time_ratio {
            let target = format!("`slab` geomean time <= 0.85x `{}`", self.baseline);
            let by = if r <= 0.85 {
                String::new()
            } else {
                format!(", missed by {:.2}", r - 0.85)
            };
            t.push((target, format!("{r:.2}x{by}"), r <= 0.85));
        }
        for c in self
            .configurations
            .iter()
            .filter(|c| c.name.starts_with("preload:"))
        {
            if let (Some(r), Some(p)) = (
                slab.time_ratio,
                self.geo(&c.name).and_then(|g| g.time_ratio),
            ) {
                let target = format!("`slab` ahead of `{}`", c.name);
                t.push((target, format!("{r:.2}x against {p:.2}x"), r < p));
            }
        }
        if let Some(r) = slab.rss_ratio {
            let target = format!("`slab` peak RSS <= `{}`'s", self.baseline);
            t.push((target, format!("{r:.2}x"), r <= 1.0));
        }
        t
    }

    /// Markdown tables: wall time with ratios, peak RSS with ratios, and Lua's own accounting.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nWall time, median of {} runs at scale {} (× `{}`, same run; lower is better):\n",
            self.runs, self.scale, self.baseline
        );
        self.ratio_table(
            &mut s,
            |x| (format!("{:.3} s", x.median_wall_s.unwrap_or(0.0)), x.ratio),
            |g| g.time_ratio,
        );

        let _ = writeln!(
            s,
            "\nPeak RSS of the process, MiB, median of {} runs (× `{}`):\n",
            self.runs, self.baseline
        );
        self.ratio_table(
            &mut s,
            |x| {
                let mib = x.median_max_rss_kib.unwrap_or(0) as f64 / 1024.0;
                (format!("{mib:.1}"), x.rss_ratio)
            },
            |g| g.rss_ratio,
        );

        let _ = writeln!(
            s,
            "\nLua's accounting under `{}` (the program's, nearly the same on every backend):\n",
            self.baseline
        );
        s.push_str("| workload | peak live (MiB) | allocations |\n|---|---:|---:|\n");
        for w in &self.workloads {
            let c = self.cell(w, &self.baseline);
            let peak = c
                .and_then(|c| c.peak_bytes)
                .map_or("–".to_owned(), |p| format!("{:.2}", p as f64 / 1048576.0));
            let allocs = c
                .and_then(|c| c.allocations)
                .map_or("–".to_owned(), |a| a.to_string());
            let _ = writeln!(s, "| {w} | {peak} | {allocs} |");
        }
        let targets = self.targets();
        if !targets.is_empty() {
            s.push_str(
                "\nTargets (geomeans of this run):\n\n| target | measured | met |\n|---|---|---|\n",
            );
            for (target, measured, met) in targets {
                let _ = writeln!(
                    s,
                    "| {target} | {measured} | {} |",
                    if met { "yes" } else { "**no**" }
                );
            }
        }
        s
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        let names: Vec<String> = self.configurations.iter().map(|c| c.name.clone()).collect();
        let series = |f: &dyn Fn(&Cell) -> Option<f64>| -> Vec<(String, Vec<Option<f64>>)> {
            names
                .iter()
                .map(|n| {
                    let v = self
                        .workloads
                        .iter()
                        .map(|w| self.cell(w, n).filter(|c| c.ok).and_then(f))
                        .collect();
                    (n.clone(), v)
                })
                .collect()
        };
        let time_chart = svg::grouped_bars(
            &format!(
                "Wall time × {} (median of {} runs)",
                self.baseline, self.runs
            ),
            &format!("time / {}", self.baseline),
            &self.workloads,
            &series(&|c| c.ratio),
            Some(1.0),
        );
        let rss_chart = svg::grouped_bars(
            "Peak RSS (MiB, median)",
            "MiB",
            &self.workloads,
            &series(&|c| c.median_max_rss_kib.map(|k| k as f64 / 1024.0)),
            None,
        );
        let mut h = String::new();
        h.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>lmem bench report</title><style>\
             body{font-family:sans-serif;margin:2em;max-width:1200px}\
             table{border-collapse:collapse;margin:1em 0}\
             td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
             td:first-child,th:first-child{text-align:left}\
             .fail{color:#b00;font-weight:bold} pre{background:#f4f4f4;padding:.5em}\
             </style></head><body>\n<h1>lmem bench report</h1>\n",
        );
        let _ = writeln!(
            h,
            "<p>{} — Lua {}.{} — {} run(s) per cell, interleaved, scale {} — {} CPUs, load {} → {} — \
             {:.0} s in all.<br>Interpreter: <code>{}</code>. Peak RSS: {}.</p>",
            esc(&self.tool),
            self.lua_version / 100,
            self.lua_version % 100,
            self.runs,
            self.scale,
            self.cpus,
            self.loadavg_before
                .map_or("?".into(), |l| format!("{l:.2}")),
            self.loadavg_after.map_or("?".into(), |l| format!("{l:.2}")),
            self.elapsed_s,
            esc(&self.interpreter),
            esc(&self.rss_source)
        );
        h.push_str("<h2>Configurations</h2><table><tr><th>name</th><th>backend</th><th>LD_PRELOAD</th></tr>\n");
        for c in &self.configurations {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.name),
                esc(&c.backend),
                esc(c.preload.as_deref().unwrap_or("–"))
            );
        }
        h.push_str("</table>\n");
        if !self.missing_peers.is_empty() {
            let list: Vec<String> = self
                .missing_peers
                .iter()
                .map(|m| format!("{} (package {})", esc(&m.name), esc(&m.package)))
                .collect();
            let _ = writeln!(
                h,
                "<p class=\"fail\">Peers not installed: {}. Install with:</p><pre>{}</pre>",
                list.join(", "),
                super::peers::INSTALL_LINE
            );
        }
        if !self.failures.is_empty() {
            h.push_str("<h2 class=\"fail\">Failures</h2>\n");
            for f in &self.failures {
                let _ = writeln!(
                    h,
                    "<p class=\"fail\">{} on {} (run {}): {}</p><pre>{}</pre>",
                    esc(&f.workload),
                    esc(&f.config),
                    f.run,
                    esc(&f.status),
                    esc(&f.stderr)
                );
            }
        }
        let targets = self.targets();
        if !targets.is_empty() {
            h.push_str(
                "<h2>Targets</h2><table><tr><th>target</th><th>measured</th><th>met</th></tr>\n",
            );
            for (target, measured, met) in targets {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&target.replace('`', "")),
                    esc(&measured),
                    if met { "yes" } else { "<b>no</b>" }
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h2>Time</h2>\n");
        h.push_str(&time_chart);
        h.push_str("\n<h2>Memory</h2>\n");
        h.push_str(&rss_chart);
        h.push_str("\n<h2>Tables</h2>\n");
        h.push_str(&self.html_tables());
        h.push_str("</body></html>\n");
        h
    }

    fn html_tables(&self) -> String {
        let mut h = String::new();
        let head = |h: &mut String, title: &str| {
            let _ = write!(h, "<h3>{title}</h3><table><tr><th>workload</th>");
            for c in &self.configurations {
                let _ = write!(h, "<th>{}</th>", esc(&c.name));
            }
            h.push_str("</tr>\n");
        };
        type Fmt<'a> = &'a dyn Fn(&Cell) -> String;
        let body = |h: &mut String, f: Fmt<'_>| {
            for w in &self.workloads {
                let _ = write!(h, "<tr><td>{}</td>", esc(w));
                for c in &self.configurations {
                    match self.cell(w, &c.name) {
                        Some(x) if x.ok => {
                            let _ = write!(h, "<td>{}</td>", f(x));
                        }
                        _ => h.push_str("<td class=\"fail\">FAILED</td>"),
                    }
                }
                h.push_str("</tr>\n");
            }
        };
        let ratio = |r: Option<f64>| r.map_or(String::new(), |r| format!(" ({r:.2}×)"));
        head(&mut h, "Wall time, median (s)");
        body(&mut h, &|x| {
            format!("{:.3}{}", x.median_wall_s.unwrap_or(0.0), ratio(x.ratio))
        });
        h.push_str("<tr><td><b>geomean</b></td>");
        for c in &self.configurations {
            let g = self.geo(&c.name);
            let _ = write!(
                h,
                "<td><b>{}</b></td>",
                g.and_then(|g| g.time_ratio)
                    .map_or("–".into(), |r| format!("{r:.2}×"))
            );
        }
        h.push_str("</tr></table>\n");
        head(&mut h, "Peak RSS, median (MiB)");
        body(&mut h, &|x| {
            format!(
                "{:.1}{}",
                x.median_max_rss_kib.unwrap_or(0) as f64 / 1024.0,
                ratio(x.rss_ratio)
            )
        });
        h.push_str("<tr><td><b>geomean</b></td>");
        for c in &self.configurations {
            let g = self.geo(&c.name);
            let _ = write!(
                h,
                "<td><b>{}</b></td>",
                g.and_then(|g| g.rss_ratio)
                    .map_or("–".into(), |r| format!("{r:.2}×"))
            );
        }
        h.push_str("</tr></table>\n");
        head(&mut h, "Peak live bytes Lua accounted (MiB)");
        body(&mut h, &|x| {
            x.peak_bytes
                .map_or("–".into(), |p| format!("{:.2}", p as f64 / 1048576.0))
        });
        h.push_str("</table>\n");
        head(&mut h, "Allocations (new blocks)");
        body(&mut h, &|x| {
            x.allocations.map_or("–".into(), |a| a.to_string())
        });
        h.push_str("</table>\n");
        head(&mut h, "Wall time of each run (s)");
        body(&mut h, &|x| {
            x.wall_s
                .iter()
                .map(|t| format!("{t:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        h.push_str("</table>\n");
        h
    }
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
mod tests {
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

    fn report_with(geo: &[(&str, f64, f64)]) -> Report {
        let config = |n: &str| ConfigInfo {
            name: n.into(),
            backend: "system".into(),
            preload: None,
        };
        Report {
            schema: 1,
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
            configurations: geo.iter().map(|g| config(g.0)).collect(),
            missing_peers: Vec::new(),
            workloads: Vec::new(),
            results: Vec::new(),
            geomean: geo
                .iter()
                .map(|&(n, t, r)| GeoRow {
                    config: n.into(),
                    time_ratio: Some(t),
                    time_s: None,
                    rss_ratio: Some(r),
                    workloads: 8,
                })
                .collect(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn targets_say_by_how_much_they_are_missed() {
        let r = report_with(&[
            ("system", 1.0, 1.0),
            ("slab", 0.91, 1.0),
            ("preload:mimalloc", 0.92, 1.16),
            ("preload:tcmalloc", 0.90, 1.88),
        ]);
        let t = r.targets();
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].1, "0.91x, missed by 0.06");
        assert!(!t[0].2);
        assert!(t[1].2, "ahead of preload:mimalloc");
        assert!(!t[2].2, "behind preload:tcmalloc");
        assert!(t[3].2, "RSS at the baseline's");
        assert!(r.markdown().contains(
            "| `slab` geomean time <= 0.85x `system` | 0.91x, missed by 0.06 | **no** |"
        ));
        assert!(r.html().contains("<h2>Targets</h2>"));
        assert!(report_with(&[("system", 1.0, 1.0)]).targets().is_empty());
    }
}
