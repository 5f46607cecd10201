//! The report's tables, built once as data and rendered as markdown (stdout, the README) or
//! HTML (`report.html`). Cells use two bits of markdown, which the HTML renderer converts:
//! `` `name` `` for code and `**x**` for bold; `FAILED` is shown in red.

use super::{Cell, GeoRow, Report, esc, mib};
use std::fmt::Write as _;

/// One table: a caption (a sentence), a header row and the rows. The first column is left
/// aligned, the others right aligned.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// What the table shows, and how it was measured.
    pub caption: String,
    /// Column names.
    pub header: Vec<String>,
    /// The rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table as markdown, with a blank line before the caption.
    pub fn markdown(&self) -> String {
        let mut s = format!("\n{}\n\n|", self.caption);
        for h in &self.header {
            let _ = write!(s, " {h} |");
        }
        s.push_str("\n|");
        for i in 0..self.header.len() {
            s.push_str(if i == 0 { "---|" } else { "---:|" });
        }
        s.push('\n');
        for r in &self.rows {
            s.push('|');
            for c in r {
                let _ = write!(s, " {c} |");
            }
            s.push('\n');
        }
        s
    }

    /// The table as HTML, its caption as a heading of level `h`.
    pub fn html(&self, h: u8) -> String {
        let caption = self.caption.trim_end_matches(':');
        let mut s = format!("<h{h}>{}</h{h}>\n<table><tr>", inline(caption));
        for c in &self.header {
            let _ = write!(s, "<th>{}</th>", inline(c));
        }
        s.push_str("</tr>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for c in r {
                let _ = write!(s, "<td>{}</td>", inline(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        s
    }
}

/// Escapes `text` for HTML and turns its markdown (`` `code` ``, `**bold**`) into tags.
pub fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut bold = false;
    let e = esc(text);
    let mut rest = e.as_str();
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("**") {
            out.push_str(if bold { "</b>" } else { "<b>" });
            bold = !bold;
            rest = r;
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else if let Some(r) = rest.strip_prefix("FAILED") {
            out.push_str("<span class=\"fail\">FAILED</span>");
            rest = r;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</b>");
    }
    out
}

/// `0.93×`, or `–` for none.
pub fn times(r: Option<f64>) -> String {
    r.map_or("–".to_owned(), |r| format!("{r:.2}×"))
}

/// `+0.31`, `-0.02` (MiB), or `–`.
pub fn signed(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:+.2}"))
}

impl Report {
    fn config_header(&self, first: &str) -> Vec<String> {
        std::iter::once(first.to_owned())
            .chain(self.configurations.iter().map(|c| format!("`{}`", c.name)))
            .collect()
    }

    /// A row per workload with `value` (and its ratio) for every configuration, `FAILED` where
    /// the workload failed, then a geomean row of `geo`.
    fn ratio_table(
        &self,
        caption: String,
        value: impl Fn(&Cell) -> (String, Option<f64>),
        geo: impl Fn(&GeoRow) -> Option<f64>,
    ) -> Table {
        let mut rows = Vec::new();
        for w in &self.workloads {
            let mut row = vec![w.clone()];
            for c in &self.configurations {
                row.push(match self.ok_cell(w, &c.name) {
                    Some(x) => match value(x) {
                        (v, Some(r)) => format!("{v} ({r:.2}×)"),
                        (v, None) => v,
                    },
                    None => "FAILED".to_owned(),
                });
            }
            rows.push(row);
        }
        let mut g = vec!["**geomean**".to_owned()];
        for c in &self.configurations {
            g.push(match self.geo(&c.name).and_then(&geo) {
                Some(r) => format!("**{r:.2}×**"),
                None => "–".to_owned(),
            });
        }
        rows.push(g);
        Table {
            caption,
            header: self.config_header("workload"),
            rows,
        }
    }

    /// The wall-time table.
    pub fn time_table(&self) -> Table {
        self.ratio_table(
            format!(
                "Wall time, median of {} runs at scale {} (× `{}`, same run; lower is better):",
                self.runs, self.scale, self.baseline
            ),
            |x| (format!("{:.3} s", x.median_wall_s.unwrap_or(0.0)), x.ratio),
            |g| g.time_ratio,
        )
    }

    /// The peak-RSS table.
    pub fn rss_table(&self) -> Table {
        self.ratio_table(
            format!(
                "Peak RSS of the process, MiB, median of {} runs (× `{}`):",
                self.runs, self.baseline
            ),
            |x| {
                (
                    format!("{:.1}", mib(x.median_max_rss_kib.unwrap_or(0))),
                    x.rss_ratio,
                )
            },
            |g| g.rss_ratio,
        )
    }

    /// Each lmem backend against the same allocator without the layer.
    pub fn comparison_table(&self) -> Option<Table> {
        if self.comparisons.is_empty() {
            return None;
        }
        let mut header = vec![
            "lmem / same allocator on stock".to_owned(),
            "time (geomean)".to_owned(),
            "peak RSS (geomean)".to_owned(),
        ];
        header.extend(self.workloads.iter().map(|w| format!("{w} (time / RSS)")));
        let rows = self
            .comparisons
            .iter()
            .map(|c| {
                let mut row = vec![
                    format!("`{}` / `{}`", c.config, c.against),
                    format!("**{}**", times(c.time_ratio)),
                    format!("**{}**", times(c.rss_ratio)),
                ];
                for w in &self.workloads {
                    row.push(match c.per_workload.iter().find(|p| &p.workload == w) {
                        Some(p) => format!("{} / {}", times(p.time_ratio), times(p.rss_ratio)),
                        None => "FAILED".to_owned(),
                    });
                }
                row
            })
            .collect();
        Some(Table {
            caption: "Each lmem backend against the same allocator under stock Lua (no lmem \
                      layer): `system` against `stock` is the layer's cost end to end (both on \
                      glibc's malloc); below 1 is better:"
                .to_owned(),
            header,
            rows,
        })
    }

    /// The start-up RSS of every configuration.
    pub fn startup_table(&self) -> Option<Table> {
        if self.startup.is_empty() {
            return None;
        }
        let rows = self
            .startup
            .iter()
            .map(|s| {
                vec![
                    format!("`{}`", s.config),
                    s.median_max_rss_kib
                        .map_or("FAILED".to_owned(), |k| format!("{:.2}", mib(k))),
                    signed(s.over_stock_mib),
                ]
            })
            .collect();
        Some(Table {
            caption: format!(
                "Start-up RSS: peak RSS of an empty run (`-e` with only the peak's report), MiB, median of {} runs:",
                self.runs
            ),
            header: vec![
                "configuration".to_owned(),
                "peak RSS".to_owned(),
                "over `stock`".to_owned(),
            ],
            rows,
        })
    }

    /// Lua's own accounting per workload.
    pub fn accounting_table(&self) -> Option<Table> {
        if self.accounting.is_empty() {
            return None;
        }
        let backend = &self.accounting[0].backend;
        let rows = self
            .accounting
            .iter()
            .map(|a| {
                vec![
                    a.workload.clone(),
                    format!("{:.2}", a.peak_bytes as f64 / 1048576.0),
                    a.allocations.to_string(),
                ]
            })
            .collect();
        Some(Table {
            caption: format!(
                "Lua's accounting, from one extra untimed `--stats-json` run per workload on \
                 `{backend}` (Lua's requests do not depend on the backend; the timed runs take \
                 the lean path, without accounting):"
            ),
            header: vec![
                "workload".to_owned(),
                "peak live (MiB)".to_owned(),
                "allocations".to_owned(),
            ],
            rows,
        })
    }

    /// Every table of the report, in reading order (the targets are separate).
    pub fn tables(&self) -> Vec<Table> {
        let mut t = Vec::new();
        if !self.workloads.is_empty() {
            t.push(self.time_table());
            t.push(self.rss_table());
        }
        t.extend(self.comparison_table());
        t.extend(self.startup_table());
        t.extend(self.accounting_table());
        if let Some(s) = &self.states {
            t.extend(s.tables());
        }
        if let Some(s) = &self.trim {
            t.extend(s.tables());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_of_one_table() {
        let t = Table {
            caption: "Times of `x`:".into(),
            header: vec!["workload".into(), "`slab`".into()],
            rows: vec![
                vec!["a".into(), "1.0 (0.90×)".into()],
                vec!["**geomean**".into(), "FAILED".into()],
            ],
        };
        assert_eq!(
            t.markdown(),
            "\nTimes of `x`:\n\n| workload | `slab` |\n|---|---:|\n| a | 1.0 (0.90×) |\n\
             | **geomean** | FAILED |\n"
        );
        let h = t.html(3);
        assert!(h.starts_with("<h3>Times of <code>x</code></h3>"), "{h}");
        assert!(h.contains("<td><b>geomean</b></td><td><span class=\"fail\">FAILED</span>"));
        assert_eq!(inline("a<b & `c`"), "a&lt;b &amp; <code>c</code>");
    }
}
