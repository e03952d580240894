//! Run with:
//! `cargo run -p hive-sim --release --example run -- SCENARIO [FACTOR] [SECONDS] [POLICY,...] [SEED]`
//!
//! Runs a named scenario, shrunk by FACTOR (default 0.1) for SECONDS (default 120), with each
//! policy listed (default `public-mesh`; also `private-hierarchy`, `random-mesh`, `no-peer`), one after the
//! other, and prints the QoE table with each run's wall time and where its origin fetches came
//! from. `hive sim` is the tool for users (it always runs both baselines beside the policy); this
//! one times and inspects a single policy.

use hive_core::time::Duration;
use hive_sim::{PolicyKind, SimReport, run, scenario};

// The allocator `hive sim` runs with (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let name = arg(0).unwrap_or("wan-6000");
    fn number<T: std::str::FromStr>(text: Option<&str>, default: T, what: &str) -> T {
        match text.map(str::parse) {
            None => default,
            Some(Ok(x)) => x,
            Some(Err(_)) => {
                eprintln!("{what}: not a number: {:?}", text.unwrap_or_default());
                std::process::exit(2);
            }
        }
    }
    let factor: f64 = number(arg(1), 0.1, "FACTOR");
    let secs: f64 = number(arg(2), 120.0, "SECONDS");
    let seed: u64 = number(arg(4), 1, "SEED");
    let mut policies = Vec::new();
    for p in arg(3).unwrap_or("public-mesh").split(',') {
        match p.parse::<PolicyKind>() {
            Ok(k) => policies.push(k),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
    let Some(full) = scenario::named(name, seed) else {
        eprintln!("unknown scenario {name:?}");
        std::process::exit(2);
    };
    let s = if factor >= 1.0 {
        scenario::with_duration(full, Duration::from_secs_f64(secs))
    } else {
        scenario::scaled(full, factor, Duration::from_secs_f64(secs))
    };
    print!("{}", SimReport::table_header());
    for p in policies {
        let started = std::time::Instant::now();
        let r = run(&s, p);
        print!("{}", r.table_row());
        println!(
            "  {:.1} s wall, peak RSS {:.0} MiB; origin fetches: policy {}, last call {}, \
             peer unusable {}; peer fallbacks {}",
            started.elapsed().as_secs_f64(),
            r.peak_rss_mib,
            r.origin_fetches.policy,
            r.origin_fetches.last_call,
            r.origin_fetches.peer_unusable,
            r.peer_fallbacks,
        );
        if r.seeks > 0 {
            println!(
                "  {} seeks, wait p50 {:.2} s, p95 {:.2} s",
                r.seeks, r.seek_s_p50, r.seek_s_p95
            );
        }
        for c in r.link_copies.iter().take(3) {
            println!(
                "  {:<24} {:>5} kbit/s {:>6.3} copies of {} fragments",
                c.link, c.bitrate_kbps, c.copies, c.fragments
            );
        }
    }
}
