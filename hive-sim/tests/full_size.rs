//! The issue's targets on the full-size scenarios (10 simulated minutes each). Slow: ignored by
//! default. Run them all (release, one at a time, a few minutes each):
//!
//! ```sh
//! cargo test --release -p hive-sim --test full_size -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Each prints the table of the policy beside NoPeer on unconstrained links (the start-up
//! reference) and the worst VPN and gateway links, then asserts the targets; a failing assertion
//! names the figure that misses. `wan_6000` times the policy's run (≤ 60 s): run it alone on the
//! machine, as the command above does.

use hive_sim::{PolicyKind, SimReport, Targets, run, scenario};

// The allocator `hive sim` runs with (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `name` at full size with `policy`, asserts the targets, and returns the report and the
/// policy run's wall-clock seconds.
fn check(
    name: &str,
    policy: PolicyKind,
    min_offload: f64,
    max_rebuffer: f64,
    copies: bool,
) -> (SimReport, f64) {
    let s = scenario::named(name, 1).expect("named scenario");
    let started = std::time::Instant::now();
    let r = run(&s, policy);
    let wall = started.elapsed();
    // NoPeer on the real links (what happens without Hive) is left to `hive sim` at a smaller
    // scale: at full size thousands of origin flows share the gateway, every start and end
    // re-rates all of them, and the flow model takes tens of minutes.
    let free = run(&scenario::unconstrained(&s), PolicyKind::NoPeer);
    eprint!(
        "{}{}{}",
        SimReport::table_header(),
        r.table_row(),
        free.table_row()
    );
    for c in r.link_copies.iter().take(5) {
        eprintln!(
            "  {:<24} {:>5} kbit/s {:>6.3} copies of {} fragments",
            c.link, c.bitrate_kbps, c.copies, c.fragments
        );
    }
    eprintln!(
        "{name}: {:.1} s wall, peak RSS {:.0} MiB",
        wall.as_secs_f64(),
        r.peak_rss_mib
    );
    let targets = Targets {
        min_offload,
        max_rebuffer,
        max_link_copies: copies.then_some(1.05),
    };
    let missed = targets.misses(&r, &free);
    assert!(missed.is_empty(), "{missed:#?}");
    (r, wall.as_secs_f64())
}

/// The enterprise targets with the hierarchy: offload ≥ 99%, rebuffering ≤ 0.1%, start-up, and
/// ≤ 1.05 copies per fragment per bitrate on every VPN and gateway link.
fn enterprise(name: &str) {
    check(name, PolicyKind::PrivateHierarchy, 0.99, 0.001, true);
}

#[test]
#[ignore = "full size, minutes in release: see the module docs"]
fn corporate_130() {
    enterprise("corporate-130");
}

#[test]
#[ignore = "full size, minutes in release: see the module docs"]
fn enterprise_2068() {
    enterprise("enterprise-2068");
}

#[test]
#[ignore = "full size, minutes in release: see the module docs"]
fn enterprise_3000() {
    enterprise("enterprise-3000");
}

#[test]
#[ignore = "full size, minutes in release: see the module docs"]
fn wan_6000() {
    let (r, wall) = check("wan-6000", PolicyKind::PublicMesh, 0.97, 0.005, false);
    // 10 simulated minutes of the policy: ≤ 60 s and ≤ 4 GiB on this machine.
    assert!(wall <= 60.0, "wan-6000: {wall:.1} s wall");
    assert!(
        r.peak_rss_mib <= 4096.0,
        "wan-6000: {:.0} MiB",
        r.peak_rss_mib
    );
}

#[test]
#[ignore = "full size, minutes in release: see the module docs"]
fn vod_500() {
    let s = scenario::named("vod-500", 1).expect("named scenario");
    let r = run(&s, PolicyKind::PublicMesh);
    eprint!("{}{}", SimReport::table_header(), r.table_row());
    // The issue asks to report vod-500's offload; peers carry most of it, and playback is at
    // CDN quality (seek waits count as stalls).
    assert!(r.offload > 0.5, "vod-500 offload {:.4}", r.offload);
    assert!(
        r.rebuffer_ratio <= 0.001,
        "vod-500 rebuffering {:.4}%",
        r.rebuffer_ratio * 100.0
    );
}
