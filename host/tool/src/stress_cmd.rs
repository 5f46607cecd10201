//! `lmem stress [options]`: the command line of [`crate::stress`].

use super::args::Parser;
use super::{ToolError, usage};
use crate::stress::{StressOptions, run as run_stress};
use std::time::Duration;

const USAGE: &str = "\
usage: lmem stress [options]
  --threads N        worker threads (default: the number of cores)
  --seconds S        stop after S seconds (default 30)
  --states N         stop after N states in all (instead of a time)
  --fault-rate P     probability that an allocation fails (default 0.0005; 0 for none)
  --swaps N          hot swaps scheduled per state, at most (default 2)
  --scale F          workload scale factor (default 0.02)
  --backends a,b     backends to draw from (default: all compiled in)
  --workloads x,y    workloads of lua/bench to draw from (default: all)
  --seed N           seed of everything random
  --scaling          also measure 1 thread against N threads (no faults, no swaps)";

/// Runs `lmem stress`; any violation is a failure (exit status 1).
pub fn run(args: &[String]) -> Result<(), ToolError> {
    let mut o = StressOptions::new();
    let mut p = Parser::new(args);
    while let Some(a) = p.next_arg()? {
        match a.as_str() {
            "--threads" => {
                o.threads = positive(p.parsed("--threads", "a thread count")?, "--threads")?
            }
            "--seconds" => {
                let s: f64 = p.parsed("--seconds", "a number of seconds")?;
                if !(s > 0.0 && s.is_finite()) {
                    return Err(usage(format!("bad value for --seconds: {s}")));
                }
                o.duration = Some(Duration::from_secs_f64(s));
            }
            "--states" => {
                o.states =
                    Some(positive(p.parsed("--states", "a state count")?, "--states")? as u64);
                o.duration = None;
            }
            "--fault-rate" => {
                let r: f64 = p.parsed("--fault-rate", "a probability")?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(usage(format!(
                        "bad value for --fault-rate: {r} (a probability, 0 to 1)"
                    )));
                }
                o.fault_rate = r;
            }
            "--swaps" => o.max_swaps = p.parsed("--swaps", "a count")?,
            "--scale" => {
                let s: f64 = p.parsed("--scale", "a scale factor")?;
                if !(s > 0.0 && s.is_finite()) {
                    return Err(usage(format!("bad value for --scale: {s}")));
                }
                o.scale = s;
            }
            "--backends" => o.backends = p.list("--backends")?,
            "--workloads" => {
                let wanted = p.list("--workloads")?;
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
            "--seed" => o.seed = p.parsed("--seed", "a number")?,
            "--scaling" => o.scaling = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(usage(format!("unknown option '{other}'\n{USAGE}"))),
        }
    }
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

fn positive(n: usize, name: &str) -> Result<usize, ToolError> {
    if n == 0 {
        return Err(usage(format!("bad value for {name}: 0")));
    }
    Ok(n)
}
