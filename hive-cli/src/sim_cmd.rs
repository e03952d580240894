//! `hive sim`: a named scenario or an operator's own network (`--network FILE`), with the chosen
//! policy and the two baselines side by side; `--plot` draws the origin's egress over time.

use std::process::ExitCode;

use hive_core::time::Duration;
use hive_sim::scenario::Scenario;
use hive_sim::{PolicyKind, SimReport, network_file, scenario};

use crate::SimArgs;
use crate::sim_plot;

/// The `hive sim --help` epilogue: the network file format.
pub(crate) const NETWORK_HELP: &str = "\
Network files (--network FILE) describe your own network and event, so you can predict the
origin offload, the gateway and VPN links' load and the viewers' experience before it happens.
JSON, in which whole lines starting with // are comments; capacities in Mbit/s, bitrates in
kbit/s, times in seconds; unknown fields are refused. docs/sim/network-example.json is a
commented example.

  {
    \"name\": \"all-hands\",                       (default \"network\")
    \"sites\": [                                  (required; viewers >= 1 each)
      { \"name\": \"head-office\", \"viewers\": 400 },
      { \"name\": \"paris\", \"viewers\": 150, \"vpn_mbps\": 100 }
    ],
    \"gateway_mbps\": 300,    (the first site's internet gateway; branches reach it over
                             their VPN link; leave out for the public internet, where sites
                             are ASes with an optional \"asn\" and no VPN links)
    \"access\": { \"down_mbps\": 100, \"up_mbps\": [100] },   (required; uploads drawn from the list)
    \"ladder_kbps\": [500, 900, 1400],            (required; strictly ascending)
    \"fragment_s\": 2, \"join_over_s\": 120, \"duration_s\": 600,     (defaults)
    \"nat\": { \"fraction\": 0.0, \"pair_success\": 1.0 },  \"churn_per_min\": 0.0,
    \"vod\": { \"title_s\": 1800, \"start_at_zero\": 0.7, \"seek_every_s\": 300,
             \"watch_mean_s\": 1200, \"cache_mb\": 256 }     (optional: on demand, not live)
  }

A file runs at full size for its duration_s unless --scale or --duration say otherwise.";

/// Which scenario to run, as `hive sim` and `hive lab` take it.
pub(crate) struct ScenarioChoice<'a> {
    /// `--network FILE`.
    pub(crate) network: Option<&'a std::path::Path>,
    /// `--scenario NAME` (when no file).
    pub(crate) scenario: &'a str,
    /// `--scale`.
    pub(crate) scale: Option<f64>,
    /// `--duration`, seconds.
    pub(crate) duration: Option<f64>,
    /// `--seed`.
    pub(crate) seed: u64,
}

fn scenario_of(args: &SimArgs) -> Result<Scenario, String> {
    scenario_from(&ScenarioChoice {
        network: args.network.as_deref(),
        scenario: &args.scenario,
        scale: args.scale,
        duration: args.duration,
        seed: args.seed,
    })
}

/// The scenario chosen, at the requested scale and duration.
pub(crate) fn scenario_from(args: &ScenarioChoice<'_>) -> Result<Scenario, String> {
    let (full, from_file) = match args.network {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let s = network_file::parse(&text, args.seed)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (s, true)
        }
        None => {
            let s = scenario::named(args.scenario, args.seed).ok_or_else(|| {
                format!(
                    "unknown scenario {:?}; `hive sim --list` shows the names",
                    args.scenario
                )
            })?;
            (s, false)
        }
    };
    // Full size unless asked: `corporate-130` is 130 viewers.
    let scale = args.scale.unwrap_or(1.0);
    if !(scale > 0.0 && scale <= 1.0) {
        return Err(format!("--scale must be in (0, 1], got {scale}"));
    }
    let duration = match args.duration {
        Some(d) => d,
        // Named live scenarios: two minutes, as before; on demand and files: their own.
        None if from_file || full.vod.is_some() => full.duration.as_secs_f64(),
        None => 120.0,
    };
    if !(duration.is_finite() && duration > 0.0 && duration <= 86_400.0) {
        return Err(format!(
            "--duration must be in (0, 86400] seconds, got {duration}"
        ));
    }
    let d = Duration::from_secs_f64(duration);
    // At full size the capacities are kept exactly (`scaled` puts floors under links).
    Ok(if scale == 1.0 {
        scenario::with_duration(full, d)
    } else {
        scenario::scaled(full, scale, d)
    })
}

fn run_cmd(args: &SimArgs) -> Result<(SimReport, Vec<SimReport>), String> {
    let chosen = args.policy;
    let s = scenario_of(args)?;
    eprintln!(
        "hive sim: {} ({} viewers, {:.0} s simulated{})",
        s.name,
        s.viewers(),
        s.duration.as_secs_f64(),
        if s.vod.is_some() { ", on demand" } else { "" }
    );
    let run = |p: PolicyKind| match args.threads {
        None => Ok(hive_sim::run(&s, p)),
        Some(n) => {
            hive_sim::run_on_threads(&s, p, n).map_err(|e| format!("cannot start {n} threads: {e}"))
        }
    };
    let mut baselines = Vec::new();
    for p in [PolicyKind::NoPeer, PolicyKind::RandomMesh] {
        if p != chosen {
            eprintln!("  running baseline {}", p.name());
            baselines.push(run(p)?);
        }
    }
    eprintln!("  running {}", chosen.name());
    Ok((run(chosen)?, baselines))
}

/// Mean and peak of a per-second series, Mbit/s.
fn mean_peak_mbps(series: &[u64]) -> (f64, f64) {
    if series.is_empty() {
        return (0.0, 0.0);
    }
    let sum: f64 = series.iter().map(|&b| b as f64).sum();
    let peak = series.iter().copied().max().unwrap_or(0) as f64;
    (sum / series.len() as f64 / 1e6, peak / 1e6)
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
        // The load the origin (and, in an enterprise, the gateway) carries; seeks on demand.
        for r in std::iter::once(&main).chain(&baselines) {
            let (mean, peak) = mean_peak_mbps(&r.origin_egress_bps);
            print!(
                "{:<11} origin egress mean {mean:.1} Mbit/s, peak {peak:.1} Mbit/s",
                r.policy
            );
            if r.seeks > 0 {
                print!(
                    "; {} seeks, wait p50 {:.2} s, p95 {:.2} s",
                    r.seeks, r.seek_s_p50, r.seek_s_p95
                );
            }
            println!();
        }
        // Copies per fragment over the VPN and gateway links: the worst few for the policy.
        if !main.link_copies.is_empty() {
            let n = main.link_copies.len();
            println!(
                "{} copies per fragment per bitrate, worst {} of {n} link × bitrate pairs \
                 (--json lists all):",
                main.policy,
                n.min(5)
            );
            for c in main.link_copies.iter().take(5) {
                println!(
                    "  {:<24} {:>5} kbit/s  {:>6.3} copies of {} fragments",
                    c.link, c.bitrate_kbps, c.copies, c.fragments
                );
            }
        }
    }
    if let Some(path) = &args.plot {
        let runs: Vec<&SimReport> = std::iter::once(&main).chain(&baselines).collect();
        if let Err(e) = sim_plot::write_svg(&runs, path) {
            eprintln!("hive sim: cannot write plot {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("plot written to {}", path.display());
    }
    ExitCode::SUCCESS
}
