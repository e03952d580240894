//! Scaled-down runs of the named scenarios: the simulator's invariants, and the baselines'
//! expected behaviour. The locality policies and their targets are tracked by issue #6.

use hive_core::time::Duration;
use hive_sim::{PolicyKind, SimReport, Targets, run, run_on_threads, scenario};

fn small(name: &str, factor: f64, secs: u64) -> scenario::Scenario {
    scenario::scaled(
        scenario::named(name, 7).expect("named"),
        factor,
        Duration::from_secs(secs),
    )
}

fn strip(mut r: SimReport) -> SimReport {
    r.wall_s = 0.0;
    r.peak_rss_mib = 0.0;
    r
}

#[test]
fn same_seed_same_result() {
    let s = small("corporate-130", 0.1, 40);
    assert_eq!(
        strip(run(&s, PolicyKind::RandomMesh)),
        strip(run(&s, PolicyKind::RandomMesh))
    );
}

/// Agents run in parallel within each window, and the result does not depend on how many
/// threads run them: one, two or three threads, the same report, on the public mesh and a random
/// mesh (with churn and NAT), in an enterprise (supernodes, VPN links) and on demand (seeks,
/// departures at the title's end).
#[test]
fn the_result_does_not_depend_on_the_threads() {
    for (name, policy, scale, secs) in [
        ("wan-6000", PolicyKind::PublicMesh, 0.03, 60),
        ("wan-6000", PolicyKind::RandomMesh, 0.03, 60),
        ("enterprise-2068", PolicyKind::PrivateHierarchy, 0.03, 60),
        ("vod-500", PolicyKind::PublicMesh, 0.1, 900),
    ] {
        let s = small(name, scale, secs);
        let one = strip(run_on_threads(&s, policy, 1).expect("one thread"));
        assert!(one.player_bytes > 0, "{name}: viewers played");
        for threads in [2, 3] {
            let more = strip(run_on_threads(&s, policy, threads).expect("threads"));
            assert_eq!(one, more, "{name} {policy:?} on {threads} threads");
        }
    }
}

#[test]
fn nopeer_is_a_pure_cdn_and_random_mesh_offloads() {
    let s = small("corporate-130", 0.1, 60);
    let cdn = run(&s, PolicyKind::NoPeer);
    assert_eq!(cdn.offload, 0.0);
    assert_eq!(cdn.origin_bytes, cdn.player_bytes);
    assert_eq!(cdn.peer_bytes, 0);
    let mesh = run(&s, PolicyKind::RandomMesh);
    assert!(
        mesh.offload > 0.3,
        "random mesh offload {:.3}",
        mesh.offload
    );
    assert!(mesh.peer_bytes > 0);
    // The gateway (6 Mbit/s at this scale) is below what the viewers pull: a pure CDN stalls.
    assert!(
        cdn.rebuffer_ratio > 0.01,
        "NoPeer rebuffering {:.3}",
        cdn.rebuffer_ratio
    );
}

#[test]
fn every_viewer_starts_and_reports_are_sane() {
    let s = small("wan-6000", 0.01, 40);
    for p in [PolicyKind::NoPeer, PolicyKind::RandomMesh] {
        let r = run(&s, p);
        assert!(r.viewers >= 50);
        assert!(r.player_bytes > 0);
        assert!((0.0..=1.0).contains(&r.rebuffer_ratio));
        assert!(r.startup_s_p50 >= 0.0 && r.startup_s_p95 >= r.startup_s_p50);
        assert!(
            r.avg_bitrate_kbps >= 350.0 && r.avg_bitrate_kbps <= 700.0,
            "{}",
            r.avg_bitrate_kbps
        );
        let j = serde_json::to_value(&r).expect("json");
        for k in hive_sim::DESIGN_KEYS {
            assert!(j.get(k).is_some(), "missing key {k}");
        }
    }
}

#[test]
fn hierarchy_serves_an_office_from_one_supernode_fetch() {
    let s = small("corporate-130", 0.1, 120);
    let r = run(&s, PolicyKind::PrivateHierarchy);
    let mesh = run(&s, PolicyKind::RandomMesh);
    assert!(r.offload > 0.85, "hierarchy offload {:.3}", r.offload);
    assert!(
        r.offload > mesh.offload,
        "{:.3} vs random mesh {:.3}",
        r.offload,
        mesh.offload
    );
    // Playback targets as at full size (13 viewers cannot reach 99% offload: one origin copy
    // per bitrate is already 8% of what they watch), with one copy per fragment per bitrate
    // through the gateway.
    let free = run(&scenario::unconstrained(&s), PolicyKind::NoPeer);
    let targets = Targets {
        min_offload: 0.85,
        max_rebuffer: 0.001,
        max_link_copies: Some(1.05),
    };
    let missed = targets.misses(&r, &free);
    assert!(missed.is_empty(), "{missed:#?}");
}

/// wan-6000 at a twentieth of its size (301 viewers, 2 simulated minutes, churn and NAT as at
/// full size): PublicMesh offloads well beyond RandomMesh with the same engine settings
/// (91.93% vs 76.01% for this seed; the full-size target, 97%, needs the full swarm), plays
/// without rebuffering (target ≤ 0.5%) and starts within 1 s of a pure CDN.
#[test]
fn public_mesh_beats_random_mesh_on_the_wan() {
    let s = small("wan-6000", 0.05, 120);
    let mesh = run(&s, PolicyKind::RandomMesh);
    let public = run(&s, PolicyKind::PublicMesh);
    let cdn = run(&s, PolicyKind::NoPeer);
    eprint!(
        "{}{}{}{}",
        SimReport::table_header(),
        public.table_row(),
        mesh.table_row(),
        cdn.table_row()
    );
    assert!(
        public.offload > mesh.offload + 0.1,
        "public mesh {:.3} vs random mesh {:.3}",
        public.offload,
        mesh.offload
    );
    let targets = Targets {
        min_offload: 0.88,
        max_rebuffer: 0.005,
        max_link_copies: None,
    };
    // No gateway nor VPN links on the public internet: NoPeer here is the unconstrained CDN.
    let missed = targets.misses(&public, &cdn);
    assert!(missed.is_empty(), "{missed:#?}");
    assert_eq!(public.deadline_misses, 0);
}

/// The enterprise scenarios at a tenth of their size (208 and 303 viewers, 2 simulated minutes):
/// the hierarchy offloads ≥ 98% (the full-size target is 99%; a smaller swarm shares each
/// origin copy among fewer viewers), plays at CDN quality — rebuffering ≤ 0.1%, start-up p95
/// within 1 s of NoPeer on unconstrained links — where NoPeer on the real links stalls.
/// Copies per fragment over the VPN and gateway links (target ≤ 1.05) are not met yet and
/// not asserted (issue #6).
#[test]
fn enterprise_scenarios_scaled_down_meet_offload_and_playback_targets() {
    for name in ["enterprise-2068", "enterprise-3000"] {
        let s = small(name, 0.1, 120);
        let r = run(&s, PolicyKind::PrivateHierarchy);
        let cdn = run(&s, PolicyKind::NoPeer);
        let free = run(&scenario::unconstrained(&s), PolicyKind::NoPeer);
        eprint!(
            "{}{}{}{}",
            SimReport::table_header(),
            r.table_row(),
            cdn.table_row(),
            free.table_row()
        );
        let targets = Targets {
            min_offload: 0.98,
            max_rebuffer: 0.001,
            max_link_copies: None,
        };
        let missed = targets.misses(&r, &free);
        assert!(missed.is_empty(), "{missed:#?}");
        assert!(
            cdn.rebuffer_ratio > 0.2,
            "{name}: NoPeer on the real links rebuffers {:.3}",
            cdn.rebuffer_ratio
        );
    }
}
