//! `hive lab`: a scenario on real agents in network namespaces behind shaped links, printed
//! beside `hive sim`'s run of the same scenario and seed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use hive_cli::lab::{self, LabConfig, LabReport};
use hive_sim::SimReport;

use crate::sim_cmd::{ScenarioChoice, scenario_from};

/// Arguments of `hive lab`.
#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    /// A named scenario (`hive sim --list` shows them); live ones without NAT or churn run.
    #[arg(long, short, default_value = "corporate-130")]
    scenario: String,
    /// Your own network and event (the `hive sim --network` format) instead of a named
    /// scenario.
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    network: Option<PathBuf>,
    /// The policy every agent runs: private-hierarchy, public-mesh, random-mesh or no-peer.
    #[arg(long, default_value = "private-hierarchy")]
    policy: hive_sim::PolicyKind,
    /// Shrink viewers and capacities by this factor (1 = full size, the default).
    #[arg(long)]
    scale: Option<f64>,
    /// Seconds to run [default: 120 for a named scenario, the file's duration_s for --network].
    #[arg(long)]
    duration: Option<f64>,
    /// Seed of every random choice (the simulator's run beside it takes the same).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The agents' transport: udp or quic.
    #[arg(long, default_value = "udp", value_parser = ["udp", "quic"])]
    transport: String,
    /// Every agent's congestion controller: newreno, cubic, ledbat, ledbat++ or dtl[:P].
    #[arg(long, default_value = "dtl")]
    cc: hive_cc::Algorithm,
    /// Every agent's controller priority: `urgency` (the engine's, from each upload's
    /// deadline) or a fixed number from 0 (scavenger) to 1.
    #[arg(long, default_value = "urgency")]
    priority: hive_agent::PriorityMode,
    /// Agents do not pace their uploads at 90% of their uplink (`hive agent
    /// --no-upload-pacing`); the simulator beside the lab still models paced viewers.
    #[arg(long)]
    no_upload_pacing: bool,
    /// Where the agents' logs and final `/status` answers (`agent-N.status.json`) go [default: a new folder under the system's temporary one].
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Do not run the simulator beside the lab.
    #[arg(long)]
    no_sim: bool,
    /// Print one JSON object: the lab's report (the keys of `hive sim --json`), with `sim`
    /// (the simulator's report) and `fidelity` (the differences and whether the targets hold).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &LabArgs) -> ExitCode {
    let s = match scenario_from(&ScenarioChoice {
        network: args.network.as_deref(),
        scenario: &args.scenario,
        scale: args.scale,
        duration: args.duration,
        seed: args.seed,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hive lab: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = lab::check(&s) {
        eprintln!("hive lab: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = lab::netns::check_privileges() {
        eprintln!("hive lab: {e}");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hive lab: cannot find this program's path: {e}");
            return ExitCode::FAILURE;
        }
    };
    let logs = args
        .logs
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("hive-lab-{}", std::process::id())));
    eprintln!(
        "hive lab: {} ({} viewers, {} agents in namespaces, {:.0} s, policy {}); agents' logs in {}",
        s.name,
        s.viewers(),
        s.viewers(),
        s.duration.as_secs_f64(),
        args.policy.name(),
        logs.display()
    );
    // The simulator first: it takes seconds, the lab the scenario's duration.
    let sim = if args.no_sim {
        None
    } else {
        eprintln!("  the simulator on the same scenario and seed ...");
        Some(hive_sim::run(&s, args.policy))
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hive lab: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C or SIGTERM ends the run early, in order: agents stopped, namespaces removed.
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    rt.spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        eprintln!("hive lab: interrupted; stopping the agents and removing the namespaces");
        flag.store(true, Ordering::Relaxed);
    });
    let cfg = LabConfig {
        scenario: s,
        policy: args.policy,
        exe,
        logs,
        transport: args.transport.clone(),
        cc: args.cc,
        priority: args.priority,
        upload_pacing: !args.no_upload_pacing,
        interrupt,
    };
    let report = rt.block_on(lab::run(cfg, |p| {
        eprintln!(
            "  {:>4.0} s  agents {:>4}  playing {:>4}  offload {:>6.2}%  stalled players {:>3}  gateway {:>6.1} Mbit/s",
            p.elapsed_s,
            p.agents,
            p.playing,
            p.offload * 100.0,
            p.stalled_players,
            p.gateway_mbps
        );
    }));
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hive lab: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let fidelity = sim.as_ref().map(|s| lab::compare(&report, s));
    if args.json {
        let mut v = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            if let Some(s) = &sim {
                obj.insert(
                    "sim".into(),
                    serde_json::to_value(s).unwrap_or(serde_json::Value::Null),
                );
            }
            if let Some(f) = &fidelity {
                obj.insert(
                    "fidelity".into(),
                    serde_json::to_value(f).unwrap_or(serde_json::Value::Null),
                );
            }
        }
        println!("{v}");
    } else {
        print_report(&report, sim.as_ref(), fidelity.as_ref());
    }
    if report.corrupt_fragments > 0 || report.agents_failed > 0 || report.interrupted {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_report(r: &LabReport, sim: Option<&SimReport>, f: Option<&lab::Fidelity>) {
    print!("{}", SimReport::table_header());
    print!(
        "{}",
        r.report.table_row().replacen(&r.report.scenario, "lab", 1)
    );
    if let Some(s) = sim {
        print!("{}", s.table_row().replacen(&s.scenario, "sim", 1));
    }
    for l in &r.links {
        println!(
            "{:<20} lab {:.3} copies ({:.3} on the wire, {:.3} with every IP byte), {} distinct fragments, {} dropped{}",
            l.link,
            l.copies,
            l.copies_wire,
            l.copies_raw,
            l.fragments,
            l.dropped,
            f.and_then(|f| f.links.iter().find(|x| x.link == l.link))
                .map_or(String::new(), |x| format!("; sim {:.3}", x.sim))
        );
    }
    println!(
        "agents: {} ({} failed); corrupt fragments: {}; failed player requests: {}; packets routed {}, unroutable {}, overflow {}; CPU {:.2} cores",
        r.agents,
        r.agents_failed,
        r.corrupt_fragments,
        r.player_errors,
        r.packets_delivered,
        r.packets_unroutable,
        r.packets_overflow,
        r.cpu_cores
    );
    if let Some(f) = f {
        println!(
            "lab - sim: offload {:+.2} pp (target ±2), rebuffering {:+.3} pp (±0.2), start-up p50 {:+.0} ms (±200); links within 0.1: {}; {}",
            f.offload_pp,
            f.rebuffer_pp,
            f.startup_p50_ms,
            f.links.iter().all(|l| (l.lab - l.sim).abs() <= 0.1),
            if f.pass { "PASS" } else { "MISS" }
        );
    }
}
