//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched).

use super::tables::inline;
use super::{Cell, Report, esc, mib, targets};
use crate::states::StatesReport;
use crate::svg::{self, Bars, Scale};
use crate::trim::TrimReport;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}\
    table{border-collapse:collapse;margin:1em 0}\
    td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
    td:first-child,th:first-child{text-align:left}\
    .fail{color:#b00;font-weight:bold} pre{background:#f4f4f4;padding:.5em}\
    figure{margin:1em 0} svg{max-width:100%;height:auto}";

/// The page: what ran, the targets, then a section per measure, each chart above its table.
pub fn page(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>lmem bench report</title><style>{STYLE}</style></head><body>\n\
         <h1>lmem bench report</h1>\n"
    );
    header(r, &mut h);
    configurations(r, &mut h);
    problems(r, &mut h);
    if !r.targets.is_empty() {
        h.push_str(&targets::table(&r.targets).html(2));
    }
    workloads(r, &mut h);
    if let Some(t) = r.comparison_table() {
        h.push_str("<h2>Against the same allocator without lmem</h2>\n");
        figure(&mut h, &comparison_chart(r));
        h.push_str(&t.html(3));
    }
    if let Some(t) = r.startup_table() {
        h.push_str("<h2>Start-up</h2>\n");
        figure(&mut h, &startup_chart(r));
        h.push_str(&t.html(3));
    }
    if let Some(t) = r.accounting_table() {
        h.push_str(&t.html(2));
    }
    if let Some(s) = &r.states {
        h.push_str("<h2>Many small states</h2>\n");
        let tables = s.tables();
        figure(&mut h, &states_rss_chart(s));
        h.push_str(&tables[0].html(3));
        figure(&mut h, &states_rate_chart(s));
        h.push_str(&tables[1].html(3));
    }
    if let Some(t) = &r.trim {
        h.push_str("<h2>Trim</h2>\n");
        figure(&mut h, &trim_chart(t));
        for table in t.tables() {
            h.push_str(&table.html(3));
        }
    }
    runs_table(r, &mut h);
    h.push_str("</body></html>\n");
    h
}

/// A chart in a `<figure>`.
fn figure(h: &mut String, svg: &str) {
    let _ = writeln!(h, "<figure>{svg}</figure>");
}

fn header(r: &Report, h: &mut String) {
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let _ = writeln!(
        h,
        "<p>{} — Lua {}.{} — {} run(s) per cell, interleaved, scale {} — {} CPUs, load {} → {} — \
         {:.0} s in all.<br>Interpreter: <code>{}</code>. Peak RSS: {}.</p>",
        esc(&r.tool),
        r.lua_version / 100,
        r.lua_version % 100,
        r.runs,
        r.scale,
        r.cpus,
        load(r.loadavg_before),
        load(r.loadavg_after),
        r.elapsed_s,
        esc(&r.interpreter),
        esc(&r.rss_source)
    );
}

fn configurations(r: &Report, h: &mut String) {
    h.push_str(
        "<h2>Configurations</h2><p><code>stock</code> is Lua's own <code>l_alloc</code> \
         (<code>luaL_newstate</code>, no lmem layer); every <code>preload:</code> peer is \
         <code>stock</code> with that malloc in <code>LD_PRELOAD</code>.</p>\
         <table><tr><th>name</th><th>backend</th><th>LD_PRELOAD</th></tr>\n",
    );
    for c in &r.configurations {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.backend),
            esc(c.preload.as_deref().unwrap_or("–"))
        );
    }
    h.push_str("</table>\n");
}

fn problems(r: &Report, h: &mut String) {
    if !r.missing_peers.is_empty() {
        let list: Vec<String> = r
            .missing_peers
            .iter()
            .map(|m| format!("{} (package {})", esc(&m.name), esc(&m.package)))
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"fail\">Peers not installed: {}. Install with:</p><pre>{}</pre>",
            list.join(", "),
            crate::peers::INSTALL_LINE
        );
    }
    if !r.failures.is_empty() {
        h.push_str("<h2 class=\"fail\">Failures</h2>\n");
        for f in &r.failures {
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
}

/// One series per configuration, a value per workload (where it passed).
fn per_workload(r: &Report, f: &dyn Fn(&Cell) -> Option<f64>) -> Vec<(String, Vec<Option<f64>>)> {
    r.configurations
        .iter()
        .map(|c| {
            let v = r
                .workloads
                .iter()
                .map(|w| r.ok_cell(w, &c.name).and_then(f))
                .collect();
            (c.name.clone(), v)
        })
        .collect()
}

/// The workloads' time and memory: ratios to the baseline, each chart above its table.
fn workloads(r: &Report, h: &mut String) {
    if r.workloads.is_empty() {
        return;
    }
    h.push_str("<h2>Time</h2>\n");
    figure(
        h,
        &Bars {
            title: &format!("Wall time × {} (median of {} runs)", r.baseline, r.runs),
            y_label: &format!("time / {}", r.baseline),
            groups: &r.workloads,
            series: &per_workload(r, &|c| c.ratio),
            reference: Some(1.0),
            scale: Scale::Linear,
            label: svg::ratio_label,
        }
        .svg(),
    );
    h.push_str(&r.time_table().html(3));
    h.push_str("<h2>Memory</h2>\n");
    figure(
        h,
        &Bars {
            title: &format!("Peak RSS × {} (median of {} runs)", r.baseline, r.runs),
            y_label: &format!("peak RSS / {}", r.baseline),
            groups: &r.workloads,
            series: &per_workload(r, &|c| c.rss_ratio),
            reference: Some(1.0),
            scale: Scale::Log,
            label: svg::ratio_label,
        }
        .svg(),
    );
    h.push_str(&r.rss_table().html(3));
}

/// Geomean time and peak RSS of each lmem backend over the same allocator without the layer.
fn comparison_chart(r: &Report) -> String {
    let groups: Vec<String> = r
        .comparisons
        .iter()
        .map(|c| format!("{} / {}", c.config, c.against))
        .collect();
    let series = [
        (
            "time".to_owned(),
            r.comparisons.iter().map(|c| c.time_ratio).collect(),
        ),
        (
            "peak RSS".to_owned(),
            r.comparisons.iter().map(|c| c.rss_ratio).collect(),
        ),
    ];
    Bars {
        title: "lmem backend / same allocator on stock (geomeans)",
        y_label: "ratio",
        groups: &groups,
        series: &series,
        reference: Some(1.0),
        scale: Scale::Log,
        label: svg::ratio_label,
    }
    .svg()
}

/// Peak RSS of an empty run, per configuration.
fn startup_chart(r: &Report) -> String {
    let series: Vec<(String, Vec<Option<f64>>)> = r
        .startup
        .iter()
        .map(|s| (s.config.clone(), vec![s.median_max_rss_kib.map(mib)]))
        .collect();
    Bars {
        title: "Start-up: peak RSS of an empty run (MiB)",
        y_label: "MiB",
        groups: &["-e ''".to_owned()],
        series: &series,
        reference: None,
        scale: Scale::Linear,
        label: svg::one_decimal,
    }
    .svg()
}

/// RSS per live state (KiB), a group per count of states.
fn states_rss_chart(s: &StatesReport) -> String {
    let groups: Vec<String> = s.counts.iter().map(|n| format!("N={n}")).collect();
    let series: Vec<(String, Vec<Option<f64>>)> = s
        .configurations
        .iter()
        .map(|c| {
            let v = s
                .counts
                .iter()
                .map(|&n| {
                    s.footprint_of(c, n)
                        .and_then(|f| f.rss_per_state)
                        .map(|b| b / 1024.0)
                })
                .collect();
            (c.clone(), v)
        })
        .collect();
    Bars {
        title: "RSS per live state (KiB, N states alive at once)",
        y_label: "KiB per state",
        groups: &groups,
        series: &series,
        reference: None,
        scale: Scale::Log,
        label: svg::whole,
    }
    .svg()
}

/// States made, run and closed per second.
fn states_rate_chart(s: &StatesReport) -> String {
    let series: Vec<(String, Vec<Option<f64>>)> = s
        .configurations
        .iter()
        .map(|c| (c.clone(), vec![s.rate_of(c)]))
        .collect();
    Bars {
        title: "State per request: states made, run and closed per second",
        y_label: "states/s",
        groups: &[format!("{} states", s.requests)],
        series: &series,
        reference: None,
        scale: Scale::Linear,
        label: svg::whole,
    }
    .svg()
}

/// RSS at each step of the trim scenario, a group per configuration.
fn trim_chart(t: &TrimReport) -> String {
    let groups: Vec<String> = t.rows.iter().map(|r| r.config.clone()).collect();
    let step = |f: &dyn Fn(&crate::trim::TrimRow) -> Option<u64>| -> Vec<Option<f64>> {
        t.rows
            .iter()
            .map(|r| f(r).map(|b| b as f64 / 1048576.0))
            .collect()
    };
    let series = [
        ("before the spike".to_owned(), step(&|r| Some(r.before))),
        ("at the spike".to_owned(), step(&|r| Some(r.spike))),
        ("after collect".to_owned(), step(&|r| Some(r.collected))),
        ("after lmem.trim()".to_owned(), step(&|r| r.trimmed)),
    ];
    Bars {
        title: &format!("Trim: RSS around a {} MiB spike (MiB)", t.spike_mib),
        y_label: "MiB",
        groups: &groups,
        series: &series,
        reference: None,
        scale: Scale::Log,
        label: svg::one_decimal,
    }
    .svg()
}

/// Every run's wall time, for a reader who wants to see the spread.
fn runs_table(r: &Report, h: &mut String) {
    if r.workloads.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h3>Wall time of each run (s)</h3><table><tr><th>workload</th>"
    );
    for c in &r.configurations {
        let _ = write!(h, "<th>{}</th>", esc(&c.name));
    }
    h.push_str("</tr>\n");
    for w in &r.workloads {
        let _ = write!(h, "<tr><td>{}</td>", esc(w));
        for c in &r.configurations {
            let runs = r.cell(w, &c.name).map_or(String::new(), |x| {
                x.wall_s
                    .iter()
                    .map(|t| format!("{t:.3}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            let _ = write!(h, "<td>{}</td>", inline(&runs));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}
