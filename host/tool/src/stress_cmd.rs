//! `lmem stress [options]`: the command line of [`crate::stress`].

use super::cli::StressArgs;
use super::{ToolError, usage};
use crate::stress::{StressOptions, run as run_stress};
use std::time::Duration;

/// Runs `lmem stress`; any violation is a failure (exit status 1).
pub fn run(a: StressArgs) -> Result<(), ToolError> {
    let mut o = StressOptions::new();
    if let Some(n) = a.threads {
        o.threads = n;
    }
    if let Some(s) = a.seconds {
        o.duration = Some(Duration::from_secs_f64(s));
    }
    if let Some(n) = a.states {
        o.states = Some(n as u64);
        o.duration = None;
    }
    if let Some(r) = a.fault_rate {
        o.fault_rate = r;
    }
    if let Some(n) = a.swaps {
        o.max_swaps = n;
    }
    if let Some(s) = a.scale {
        o.scale = s;
    }
    if let Some(b) = a.backends {
        o.backends = b;
    }
    if let Some(wanted) = a.workloads {
        let all = crate::stress::bundled_workloads();
        let mut picked = Vec::new();
        for w in &wanted {
            let found = all
                .iter()
                .find(|p| p.file_stem().is_some_and(|s| s == w.as_str()));
            picked.push(
                found
                    .cloned()
                    .ok_or_else(|| usage(format!("unknown workload '{w}'")))?,
            );
        }
        o.workloads = picked;
    }
    if let Some(s) = a.seed {
        o.seed = s;
    }
    o.scaling = a.scaling;
    let report = run_stress(&o).map_err(usage)?;
    print!("{report}");
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(ToolError::Failed(format!(
            "{} violations",
            report.violations.len()
        )))
    }
}
