//! What the host writes at the end: the `--stats` report, the `--stats-json` object, and the
//! trace's end marker.

use super::{Guard, Inner};
use lmem::Tag;
use std::fmt::Write as _;

impl Guard<'_> {
    /// Writes what `--trace` and `--stats-json` asked for: the trace's end marker (recording
    /// stops; later calls pass straight through) and the accounting as JSON. Call once the state
    /// is closed. The error names the file that could not be written.
    pub fn finish_outputs(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        if let Inner::Wrapped(g, w) = &mut self.inner
            && let Some(r) = g.backend_mut().recorder()
            && let Err(e) = r.finish_in_place()
        {
            let path = w.trace_path.as_deref().unwrap_or("?");
            result = Err(format!("cannot write trace file '{path}': {e}"));
        }
        if let Some(path) = &self.memory.stats_json {
            let json = self.stats_json();
            if let Err(e) = std::fs::write(path, json + "\n") {
                result = result.and(Err(format!("cannot write stats file '{path}': {e}")));
            }
        }
        result
    }

    /// The accounting as one JSON object (what `--stats-json` writes).
    pub fn stats_json(&mut self) -> String {
        let (s, now, swaps, b) = (
            self.stats(),
            self.backend_name(),
            self.swaps(),
            self.backend_stats(),
        );
        let mut by_tag = String::new();
        for (i, t) in Tag::ALL.iter().enumerate() {
            let ts = s.by_tag[t.index()];
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(
                by_tag,
                "{sep}\"{}\":{{\"count\":{},\"bytes\":{}}}",
                t.name(),
                ts.count,
                ts.bytes
            );
        }
        let opt = |v: Option<usize>| v.map_or("null".to_owned(), |n| n.to_string());
        format!(
            "{{\"backend\":\"{}\",\"backend_now\":\"{now}\",\"swaps\":{swaps},\"live\":{},\
             \"detailed\":{},\"uncounted\":{},\"peak\":{},\"allocations\":{},\"frees\":{},\
             \"resizes\":{},\"failures\":{},\"emergencies\":{},\"bytes_allocated\":{},\
             \"reserved\":{},\"by_tag\":{{{by_tag}}}}}",
            self.memory.first_backend,
            s.live,
            s.detailed,
            s.uncounted,
            s.peak,
            s.allocations(),
            s.frees,
            s.resizes,
            s.failures,
            s.emergencies,
            s.bytes_allocated(),
            opt(b.reserved),
        )
    }

    /// The accounting report printed by `--stats`.
    pub fn report(&mut self, closed: bool) -> String {
        let (stats, now, swaps) = (self.stats(), self.backend_name(), self.swaps());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "lmem: backend {now} (started on {}, {swaps} swaps)",
            self.memory.first_backend
        );
        for line in self.memory.log.borrow().iter() {
            let _ = writeln!(out, "lmem: {line}");
        }
        if let Some(l) = self.limit() {
            let _ = writeln!(out, "lmem: limit {l} bytes");
        }
        for line in stats.to_string().lines() {
            let _ = writeln!(out, "lmem: {line}");
        }
        if closed {
            let _ = writeln!(out, "lmem: live after lua_close: {} bytes", stats.live);
        }
        if let Inner::Wrapped(g, _) = &self.inner
            && let Some(c) = g.backend().checker()
        {
            let _ = writeln!(
                out,
                "lmem: checker: {} complaints, {} bytes live",
                c.complaints().len(),
                c.live_bytes()
            );
        }
        out
    }
}
