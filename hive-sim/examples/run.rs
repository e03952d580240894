//! Run with: `cargo run -p hive-sim --release --example run -- SCENARIO [FACTOR] [SECONDS]`
//!
//! Runs a named scenario, shrunk by FACTOR (default 0.1) for SECONDS (default 120), with
//! `RandomMesh` and `NoPeer` side by side, and prints the QoE table.

use hive_core::time::Duration;
use hive_sim::{PolicyKind, SimReport, run, scenario};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "corporate-130".into());
    let factor: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(0.1);
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120.0);
    let Some(full) = scenario::named(&name, 1) else {
        eprintln!("unknown scenario {name:?}");
        std::process::exit(2);
    };
    let mut s = scenario::scaled(full, factor, Duration::from_secs_f64(secs));
    // Knobs for exploring one factor at a time.
    if let Some(x) = std::env::var("HIVE_NAT").ok().and_then(|v| v.parse().ok()) {
        s.nat_fraction = x;
    }
    if let Some(x) = std::env::var("HIVE_CHURN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        s.churn_per_min = x;
    }
    if let Some(x) = std::env::var("HIVE_UP_MBIT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        s.access.up_bps = vec![(x * 1e6) as u64];
    }
    print!("{}", SimReport::table_header());
    for p in [
        PolicyKind::PrivateHierarchy,
        PolicyKind::RandomMesh,
        PolicyKind::NoPeer,
    ] {
        let r = run(&s, p);
        print!("{}", r.table_row());
        eprintln!(
            "  peer bytes {} fallbacks {} origin {} player {}",
            r.peer_bytes, r.peer_fallbacks, r.origin_bytes, r.player_bytes
        );
    }
}
