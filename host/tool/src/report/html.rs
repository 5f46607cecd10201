//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched).

use super::tables::inline;
use super::{Cell, Report, esc, mib, targets};
use crate::svg;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}\
    table{border-collapse:collapse;margin:1em 0}\
    td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
    td:first-child,th:first-child{text-align:left}\
    .fail{color:#b00;font-weight:bold} pre{background:#f4f4f4;padding:.5em}\
    figure{margin:1em 0} svg{max-width:100%;height:auto}";

/// The page.
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
    charts(r, &mut h);
    h.push_str("<h2>Tables</h2>\n");
    for t in r.tables() {
        h.push_str(&t.html(3));
    }
    runs_table(r, &mut h);
    h.push_str("</body></html>\n");
    h
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

fn charts(r: &Report, h: &mut String) {
    if r.workloads.is_empty() {
        return;
    }
    let names: Vec<String> = r.configurations.iter().map(|c| c.name.clone()).collect();
    let series = |f: &dyn Fn(&Cell) -> Option<f64>| -> Vec<(String, Vec<Option<f64>>)> {
        names
            .iter()
            .map(|n| {
                let v = r
                    .workloads
                    .iter()
                    .map(|w| r.ok_cell(w, n).and_then(f))
                    .collect();
                (n.clone(), v)
            })
            .collect()
    };
    h.push_str("<h2>Time</h2>\n");
    h.push_str(&svg::grouped_bars(
        &format!("Wall time × {} (median of {} runs)", r.baseline, r.runs),
        &format!("time / {}", r.baseline),
        &r.workloads,
        &series(&|c| c.ratio),
        Some(1.0),
    ));
    h.push_str("\n<h2>Memory</h2>\n");
    h.push_str(&svg::grouped_bars(
        "Peak RSS (MiB, median)",
        "MiB",
        &r.workloads,
        &series(&|c| c.median_max_rss_kib.map(mib)),
        None,
    ));
    h.push('\n');
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
