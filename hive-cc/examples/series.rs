//! Run with: `cargo run -p hive-cc --release --example series -- SCENARIO [SECONDS]`
//!
//! Prints a named scenario's per-flow goodput and the queuing delay over time, one line per
//! time bin — the numbers behind `hive cc-arena --plot`, for a quick look in a terminal.

use hive_cc::arena::{run, scenarios};
use hive_core::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "ledbat-vs-newreno".into());
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120.0);
    let Some(mut runs) = scenarios::named(&name) else {
        eprintln!("unknown scenario {name:?}");
        std::process::exit(2);
    };
    scenarios::shorten(&mut runs, Duration::from_secs_f64(secs));
    for s in &runs {
        let r = run(s);
        println!("# {}  (bin {} s)", r.scenario, r.bin_s);
        let n = r.qdelay_series_ms.len();
        for i in 0..n {
            let flows: Vec<String> = r
                .flows
                .iter()
                .map(|f| format!("{:6.2}", f.series_mbps.get(i).copied().unwrap_or(0.0)))
                .collect();
            println!(
                "{:7.1}s  q={:6.1}ms  {}",
                i as f64 * r.bin_s,
                r.qdelay_series_ms[i],
                flows.join(" ")
            );
        }
    }
}
