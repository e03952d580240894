//! `hive cc-arena`: named or custom scenarios, a table or one JSON object, an optional SVG plot.

use std::process::ExitCode;
use std::time::Instant;

use hive_cc::arena::{self, Report, Scenario, scenarios, spec};
use hive_core::time::Duration;

use crate::CcArenaArgs;

fn build(args: &CcArenaArgs) -> Result<Vec<Scenario>, String> {
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err(format!(
            "--duration must be in (0, 86400] seconds, got {}",
            args.duration
        ));
    }
    let duration = Duration::from_secs_f64(args.duration);
    if let Some(flows) = &args.flows {
        return Ok(vec![
            spec::custom(args.link.as_deref(), flows, duration).map_err(|e| e.to_string())?,
        ]);
    }
    let names: Vec<&str> = if args.scenario == "all" {
        scenarios::NAMES.iter().map(|(n, _)| *n).collect()
    } else {
        vec![args.scenario.as_str()]
    };
    let mut runs = Vec::new();
    for name in names {
        let mut r = scenarios::named(name).ok_or_else(|| {
            format!("unknown scenario {name:?}; `hive cc-arena --list` shows the names")
        })?;
        scenarios::shorten(&mut r, duration);
        if let Some(link) = &args.link {
            for s in &mut r {
                spec::apply_link(s, link).map_err(|e| e.to_string())?;
            }
        }
        runs.extend(r);
    }
    Ok(runs)
}

pub(crate) fn run(args: &CcArenaArgs) -> ExitCode {
    if args.list {
        for (name, what) in scenarios::NAMES {
            println!("{name:<20} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let runs = match build(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hive cc-arena: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut reports: Vec<Report> = Vec::with_capacity(runs.len());
    if !args.json {
        print!("{}", Report::table_header());
    }
    for (i, s) in runs.iter().enumerate() {
        eprintln!(
            "[{}/{}] {} ({} flows, {:.0} s simulated)",
            i + 1,
            runs.len(),
            s.name,
            s.flows.len(),
            s.duration.as_secs_f64()
        );
        let r = arena::run(s);
        if !args.json {
            print!("{}", r.table_rows());
        }
        reports.push(r);
    }
    let wall_s = started.elapsed().as_secs_f64();
    if args.json {
        // One run: the DESIGN.md object itself. Several: the same objects under `runs`.
        let out = if reports.len() == 1 {
            reports[0].to_json()
        } else {
            serde_json::json!({
                "scenario": if args.flows.is_some() { "custom" } else { args.scenario.as_str() },
                "runs": reports.iter().map(Report::to_json).collect::<Vec<_>>(),
                "wall_s": wall_s,
            })
        };
        println!("{out}");
    } else {
        eprintln!("{} run(s) in {wall_s:.2} s wall time", reports.len());
    }
    if let Some(path) = &args.plot {
        if let Err(e) = arena::write_svg(&reports, path) {
            eprintln!("hive cc-arena: cannot write plot {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("plot written to {}", path.display());
    }
    ExitCode::SUCCESS
}
