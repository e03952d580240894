//! `hive sim`: a named scenario with the chosen policy and the two baselines, side by side.

use std::process::ExitCode;

use hive_core::time::Duration;
use hive_sim::{PolicyKind, SimReport, scenario};

use crate::SimArgs;

fn policy(name: &str) -> Option<PolicyKind> {
    match name {
        "hierarchy" | "privatehierarchy" => Some(PolicyKind::PrivateHierarchy),
        "randommesh" => Some(PolicyKind::RandomMesh),
        "nopeer" => Some(PolicyKind::NoPeer),
        "public-mesh" | "publicmesh" => Some(PolicyKind::PublicMesh),
        _ => None,
    }
}

fn run_cmd(args: &SimArgs) -> Result<(SimReport, Vec<SimReport>), String> {
    let chosen = policy(&args.policy).ok_or_else(|| {
        format!(
            "unknown policy {:?}: use public-mesh, hierarchy, randommesh or nopeer",
            args.policy
        )
    })?;
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        return Err(format!("--scale must be in (0, 1], got {}", args.scale));
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err(format!(
            "--duration must be in (0, 86400] seconds, got {}",
            args.duration
        ));
    }
    let full = scenario::named(&args.scenario, args.seed).ok_or_else(|| {
        format!(
            "unknown scenario {:?}; `hive sim --list` shows the names",
            args.scenario
        )
    })?;
    let s = scenario::scaled(full, args.scale, Duration::from_secs_f64(args.duration));
    eprintln!(
        "hive sim: {} ({} viewers, {:.0} s simulated)",
        s.name,
        s.viewers(),
        args.duration
    );
    let mut baselines = Vec::new();
    for p in [PolicyKind::NoPeer, PolicyKind::RandomMesh] {
        if p != chosen {
            eprintln!("  running baseline {}", p.name());
            baselines.push(hive_sim::run(&s, p));
        }
    }
    eprintln!("  running {}", chosen.name());
    Ok((hive_sim::run(&s, chosen), baselines))
}

pub(crate) fn run(args: &SimArgs) -> ExitCode {
    if args.list {
        for (name, what) in scenario::NAMES {
            println!("{name:<18} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let (main, baselines) = match run_cmd(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("hive sim: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        let mut v = serde_json::to_value(&main).unwrap_or(serde_json::Value::Null);
        let b: serde_json::Map<String, serde_json::Value> = baselines
            .iter()
            .map(|r| {
                (
                    r.policy.clone(),
                    serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("baselines".into(), serde_json::Value::Object(b));
        }
        println!("{v}");
    } else {
        print!("{}", SimReport::table_header());
        print!("{}", main.table_row());
        for r in &baselines {
            print!("{}", r.table_row());
        }
    }
    ExitCode::SUCCESS
}
