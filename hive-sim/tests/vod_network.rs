//! On-demand runs (vod-500, scaled down) and network files: the whole title is there from the
//! start, viewers start anywhere, seek and leave; the documented example network file runs.
//!
//! A longer run, for figures rather than checks:
//! `cargo run --release -p hive-cli -- sim -s vod-500 --scale 0.1 --policy public-mesh`.

use hive_core::time::Duration;
use hive_sim::{PolicyKind, SimReport, run, scenario};

fn small(factor: f64, secs: u64) -> scenario::Scenario {
    scenario::scaled(
        scenario::named("vod-500", 7).expect("named"),
        factor,
        Duration::from_secs(secs),
    )
}

fn strip(mut r: SimReport) -> SimReport {
    r.wall_s = 0.0;
    r.peak_rss_mib = 0.0;
    r
}

/// The origin egress series, in bytes.
fn egress_bytes(r: &SimReport) -> f64 {
    r.origin_egress_bps.iter().map(|&b| b as f64 / 8.0).sum()
}

#[test]
fn on_demand_viewers_play_seek_and_the_series_add_up() {
    let s = small(0.1, 100);
    let cdn = run(&s, PolicyKind::NoPeer);
    assert_eq!(cdn.peer_bytes, 0);
    // No peers: the origin serves everything but fragments a viewer watches again after a seek
    // back (its own cache has them), and also what a player abandoned when it seeked (the
    // engine has no cancel). Over 100 s, both are small.
    assert!(cdn.offload.abs() < 0.05, "{}", cdn.offload);
    assert!(cdn.seeks > 0, "viewers seek");
    assert!(cdn.seek_s_p50 > 0.0 && cdn.seek_s_p95 >= cdn.seek_s_p50);
    // Seeks stall the player for a moment, nothing else does on an idle CDN.
    assert!(cdn.rebuffer_ratio > 0.0 && cdn.rebuffer_ratio < 0.01);
    assert!(cdn.startup_s_p95 < 1.0, "{}", cdn.startup_s_p95);
    // Viewers pick bitrates from the whole 0.5/1/2 Mbit/s ladder.
    assert!(
        (500.0..=2000.0).contains(&cdn.avg_bitrate_kbps),
        "{}",
        cdn.avg_bitrate_kbps
    );
    assert_eq!(cdn.live_delay_s_p50, 0.0, "no live edge on demand");
    // One value per simulated second.
    assert_eq!(cdn.origin_egress_bps.len(), 100);
    assert_eq!(cdn.active_viewers.len(), 100);
    let origin = cdn.origin_bytes as f64;
    let e = egress_bytes(&cdn);
    assert!(
        e >= origin && e <= origin * 1.02,
        "egress {e} vs origin bytes {origin}"
    );
    let most = cdn.active_viewers.iter().copied().max().unwrap_or(0) as usize;
    assert!(most > cdn.viewers / 2 && most <= cdn.viewers, "{most}");
    assert_eq!(
        cdn.active_viewers[0], 0,
        "viewers join from the fourth second"
    );
}

#[test]
fn peers_offload_on_demand_and_runs_repeat() {
    let s = small(0.1, 100);
    let mesh = run(&s, PolicyKind::RandomMesh);
    let public = run(&s, PolicyKind::PublicMesh);
    eprint!(
        "{}{}{}",
        SimReport::table_header(),
        public.table_row(),
        mesh.table_row()
    );
    for r in [&mesh, &public] {
        assert!(r.offload > 0.2, "{} offload {:.3}", r.policy, r.offload);
        assert!(r.peer_bytes > 0);
        assert!(r.rebuffer_ratio < 0.02, "{} {}", r.policy, r.rebuffer_ratio);
        assert!(r.seeks > 0);
    }
    let seek_waits = [
        (mesh.policy.clone(), mesh.seek_s_p50),
        (public.policy.clone(), public.seek_s_p50),
    ];
    assert_eq!(strip(run(&s, PolicyKind::PublicMesh)), strip(public));
    // A viewer stalled by a seek asks for its fragment as due now: it waits about as long as
    // without peers (it went to peers first, and waited for their last call, before).
    let cdn = run(&s, PolicyKind::NoPeer);
    for (policy, wait) in seek_waits {
        assert!(
            wait <= cdn.seek_s_p50 + 0.1,
            "{policy}: seek wait p50 {wait:.3} s, NoPeer {:.3} s",
            cdn.seek_s_p50
        );
    }
}

/// The commented example network file of the docs (`docs/sim/network-example.json`), scaled.
#[test]
fn the_documented_network_file_runs_scaled_down() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/sim/network-example.json"
    );
    let text = std::fs::read_to_string(path).expect("the example file");
    let full = hive_sim::network_file::parse(&text, 3).expect("the example is valid");
    assert_eq!(full.name, "all-hands");
    assert_eq!(full.viewers(), 760);
    assert!(full.sites[1..].iter().all(|x| x.vpn_bps.is_some()));
    assert_eq!(full.ladder_bps, vec![500_000, 900_000, 1_400_000]);
    let s = scenario::scaled(full, 0.05, Duration::from_secs(60));
    let cdn = run(&s, PolicyKind::NoPeer);
    let hierarchy = run(&s, PolicyKind::PrivateHierarchy);
    assert_eq!(cdn.offload, 0.0);
    assert!(
        hierarchy.offload > 0.5,
        "hierarchy offload {:.3}",
        hierarchy.offload
    );
    assert!(hierarchy.player_bytes > 0 && hierarchy.max_link_copies > 0.0);
    assert_eq!(hierarchy.origin_egress_bps.len(), 60);
}
