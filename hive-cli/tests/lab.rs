//! `hive lab` end to end: real `hive agent` processes in network namespaces behind the
//! user-space router's shaped links, compared with the simulator on the same network. Needs
//! root (namespaces, TUN devices); without it the test says so and passes nothing off as run.

use std::path::PathBuf;

use hive_cli::lab::{self, LabConfig};
use hive_sim::PolicyKind;

/// Two sites: four viewers at the head office behind a 20 Mbit/s gateway, three at a branch
/// behind a 10 Mbit/s VPN link; a 0.5/1 Mbit/s ladder.
const NETWORK: &str = r#"{
  "name": "lab-test",
  "sites": [{ "name": "hq", "viewers": 4 }, { "name": "branch", "viewers": 3, "vpn_mbps": 10 }],
  "gateway_mbps": 20,
  "access": { "down_mbps": 100, "up_mbps": [20] },
  "ladder_kbps": [500, 1000],
  "join_over_s": 8,
  "duration_s": 45
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agents_behind_shaped_links_carry_about_one_copy_per_link_as_the_simulator_predicts() {
    if let Err(e) = lab::netns::check_privileges() {
        eprintln!("SKIPPED (not run): {e}");
        return;
    }
    let s = hive_sim::network_file::parse(NETWORK, 1).expect("a valid network");
    let sim = hive_sim::run(&s, PolicyKind::PrivateHierarchy);
    let logs: PathBuf = std::env::temp_dir().join(format!("hive-lab-test-{}", std::process::id()));
    let cfg = LabConfig {
        scenario: s,
        policy: PolicyKind::PrivateHierarchy,
        exe: PathBuf::from(env!("CARGO_BIN_EXE_hive")),
        logs: logs.clone(),
        transport: "udp".into(),
        cc: hive_cc::Algorithm::Dtl(1.0),
        priority: hive_agent::PriorityMode::Urgency,
        upload_pacing: true,
        interrupt: Default::default(),
    };
    let r = lab::run(cfg, |p| {
        eprintln!(
            "{:>3.0} s: {} agents, {} playing, offload {:.1}%, gateway {:.1} Mbit/s",
            p.elapsed_s,
            p.agents,
            p.playing,
            p.offload * 100.0,
            p.gateway_mbps
        )
    })
    .await
    .expect("the lab runs");
    let f = lab::compare(&r, &sim);
    eprintln!("{}", serde_json::to_string(&f).expect("serialisable"));
    assert_eq!(
        (r.agents, r.agents_failed),
        (7, 0),
        "every agent ran and answered"
    );
    assert_eq!(r.corrupt_fragments, 0);
    assert!(r.report.player_bytes > 0 && r.packets_delivered > 1000);
    assert_eq!(r.packets_overflow, 0);
    // Every fragment crossed each link about once, as the simulator says (1.0): measured on
    // the shaped links. The bounds are looser than the issue's targets (±0.1), which are for
    // full-size runs, not 45 s with a join in it on a loaded CI machine.
    let names: Vec<&str> = r.links.iter().map(|l| l.link.as_str()).collect();
    assert!(names.contains(&"gateway:down") && names.contains(&"vpn:branch:down"));
    for l in &f.links {
        assert!(
            l.lab > 0.9 && l.lab < 1.35,
            "{}: {:.3} copies in the lab, {:.3} in the simulator",
            l.link,
            l.lab,
            l.sim
        );
    }
    assert!(
        f.offload_pp.abs() < 8.0,
        "offload {:.1}% in the lab, {:.1}% in the simulator",
        r.report.offload * 100.0,
        sim.offload * 100.0
    );
    // Cleaned up: no namespace of this lab is left.
    let left = std::fs::read_dir("/var/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("hl{}-", std::process::id()))
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0, "namespaces left behind");
    let _ = std::fs::remove_dir_all(logs);
}
