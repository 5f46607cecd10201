//! `lmem stress [options]`: the command line of [`crate::stress`].

use super::ToolError;
use super::cli::StressArgs;
use super::cli::check_names;
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
        let stem = |p: &std::path::PathBuf| {
            p.file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into_owned())
        };
        let names: Vec<String> = all.iter().map(stem).collect();
        check_names("workload", &wanted, &names)?;
        o.workloads = all
            .into_iter()
            .filter(|p| wanted.contains(&stem(p)))
            .collect();
    }
    if let Some(s) = a.seed {
        o.seed = s;
    }
    o.scaling = a.scaling;
    let report = run_stress(&o)?;
    print!("{report}");
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(ToolError::Violations(report.violations.len()))
    }
}
