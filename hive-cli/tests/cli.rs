//! The `hive` binary: its jobs work, speak the JSON of DESIGN.md, and refuse bad input with a
//! message.

use std::process::Command;

/// The keys DESIGN.md gives `hive sim` and `hive demo` JSON reports.
const SIM_KEYS: [&str; 16] = hive_sim::DESIGN_KEYS;

fn hive(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(args)
        .output()
        .expect("run hive")
}

/// Runs a `hive sim … --json` that must succeed; its one JSON object, checked for DESIGN's keys.
fn sim_json(args: &[&str]) -> serde_json::Value {
    let out = hive(args);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for k in SIM_KEYS {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    v
}

#[test]
fn cc_arena_json_is_one_object_with_the_design_keys() {
    let out = hive(&[
        "cc-arena",
        "--scenario",
        "ledbat-vs-newreno",
        "--duration",
        "10",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    for k in [
        "scenario",
        "link",
        "flows",
        "utilization",
        "qdelay_ms_p50",
        "qdelay_ms_p95",
        "jain",
        "wall_s",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["flows"].as_array().map(Vec::len), Some(2));
    // Progress goes to stderr, never stdout.
    assert!(String::from_utf8_lossy(&out.stderr).contains("ledbat-vs-newreno"));
}

#[test]
fn cc_arena_families_report_every_run() {
    let out = hive(&[
        "cc-arena",
        "--scenario",
        "solo",
        "--duration",
        "5",
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scenario"], "solo");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(5));
}

#[test]
fn cc_arena_custom_flows_and_table() {
    let out = hive(&[
        "cc-arena",
        "--flows",
        "cubic,dtl:0!3s=2",
        "--link",
        "rate=20mbit,rtt=60ms",
        "--duration",
        "6",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("scenario"), "{table}");
    assert!(table.contains("cubic") && table.contains("dtl"));
}

#[test]
fn cc_arena_rejects_bad_input_with_a_message() {
    for args in [
        &["cc-arena", "--scenario", "nope"][..],
        &["cc-arena", "--flows", "vegas"][..],
        &["cc-arena", "--link", "rate=fast"][..],
        &["cc-arena", "--duration", "0"][..],
    ] {
        let out = hive(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("hive cc-arena:"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn demo_json_is_one_object_with_the_design_keys() {
    let out = hive(&[
        "demo",
        "--viewers",
        "3",
        "--duration",
        "8s",
        "--join-over",
        "1s",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    for k in SIM_KEYS {
        assert!(v.get(k).is_some(), "missing key {k}: {v}");
    }
    assert_eq!(v["viewers"], 3);
    assert_eq!(v["corrupt_fragments"], 0);
    assert!(v["player_bytes"].as_u64().unwrap_or(0) > 0, "{v}");
    // Progress goes to stderr, never into the JSON.
    assert!(String::from_utf8_lossy(&out.stderr).contains("offload"));
}

#[test]
fn live_jobs_reject_bad_input_with_a_message() {
    for args in [
        &["demo", "--duration", "soon"][..],
        &["demo", "--policy", "telepathy"][..],
        &["agent", "--listen", "nowhere"][..],
        &["agent", "--allow-origin", "http://cdn.example/"][..],
        &["agent", "--allow-origin", "cdn.example:http"][..],
        &["origin", "--folder", "/nonexistent/hive"][..],
    ] {
        let out = hive(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn manifest_inspect_reads_a_master_and_its_media_playlists_from_files() {
    let dir = std::env::temp_dir().join(format!("hive-cli-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("low")).expect("tmp dir");
    std::fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"\nlow/index.m3u8\n",
    )
    .expect("write");
    let media: String =
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n".to_string()
            + &(0..5)
                .map(|i| format!("#EXTINF:2.0,\nseg{i}.ts\n"))
                .collect::<String>()
            + "#EXT-X-ENDLIST\n";
    std::fs::write(dir.join("low/index.m3u8"), media).expect("write");
    let out = hive(&[
        "manifest",
        "inspect",
        dir.join("master.m3u8").to_str().expect("utf-8 path"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["format"], "hls");
    assert_eq!(v["fragments_total"], 5);
    assert_eq!(v["tracks"][0]["bandwidth"], 800000);
    assert_eq!(v["tracks"][0]["resolution"], "640x360");
    let _ = std::fs::remove_dir_all(&dir);

    let bad = hive(&["manifest", "inspect", "/nonexistent/file.m3u8"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot open"));
}

/// `hive bench transport` with a small byte count: every transport must deliver every byte (the
/// bench fails otherwise) — Hive UDP, kernel TCP, plain s2n-quic, and Hive's QUIC transport with
/// s2n-quic's Cubic and with each hive-cc controller. No timing is asserted.
#[cfg(feature = "quic")]
#[test]
fn bench_transport_moves_every_byte_on_every_transport() {
    let out = hive(&["bench", "transport", "--bytes", "8MiB", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    assert_eq!(v["bytes"], 8 << 20);
    assert!(v["wall_s"].as_f64().is_some_and(|w| w > 0.0), "{v}");
    let names: Vec<&str> = v["transports"]
        .as_array()
        .expect("transports")
        .iter()
        .map(|t| {
            for k in ["gbit_s", "cpu_s_per_gib", "handshake_ms"] {
                assert!(t[k].as_f64().is_some_and(|x| x >= 0.0), "{k} in {t}");
            }
            t["name"].as_str().expect("name")
        })
        .collect();
    assert_eq!(
        names,
        [
            "hive-udp",
            "tcp",
            "s2n-quic",
            "quic-s2n-cubic",
            "quic-newreno",
            "quic-cubic",
            "quic-ledbat",
            "quic-ledbat++",
            "quic-dtl"
        ]
    );
    assert!(stderr.contains("s2n-quic"), "progress goes to stderr");
}

#[test]
fn bench_transport_rejects_a_bad_byte_count() {
    let out = hive(&["bench", "transport", "--bytes", "12TB"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn sim_runs_a_scaled_scenario_with_its_baselines() {
    let small = [
        "sim",
        "--scenario",
        "corporate-130",
        "--scale",
        "0.05",
        "--duration",
        "20",
    ];
    let v = sim_json(&[&small[..], &["--json"]].concat());
    assert_eq!(v["policy"], "private-hierarchy");
    assert!(v["baselines"]["no-peer"]["offload"].as_f64() == Some(0.0));
    assert!(v["baselines"].get("random-mesh").is_some());
    let bad = hive(&["sim", "--scenario", "nowhere"]);
    assert_eq!(bad.status.code(), Some(2));
    // One thread: the same figures (the result depends on the seed only).
    let one = sim_json(&[&small[..], &["--threads", "1", "--json"]].concat());
    for key in [
        "offload",
        "rebuffer_ratio",
        "origin_bytes",
        "peer_bytes",
        "startup_s_p95",
    ] {
        assert_eq!(one[key], v[key], "{key} on one thread");
    }
}

/// A scratch directory of this test process, named for the test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hive-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

#[test]
fn sim_vod_plots_origin_egress_of_the_policy_and_both_baselines() {
    let dir = scratch("vod-plot");
    let svg = dir.join("vod.svg");
    let v = sim_json(&[
        "sim",
        "-s",
        "vod-500",
        "--scale",
        "0.05",
        "--duration",
        "60",
        "--policy",
        "public-mesh",
        "--json",
        "--plot",
        svg.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(v["policy"], "public-mesh");
    assert_eq!(v["duration_s"], 60.0);
    for r in [
        &v,
        &v["baselines"]["no-peer"],
        &v["baselines"]["random-mesh"],
    ] {
        let series = r["origin_egress_bps"].as_array().expect("series");
        assert_eq!(series.len(), 60);
        assert!(series.iter().any(|b| b.as_u64() > Some(0)));
        assert_eq!(r["active_viewers"].as_array().map(Vec::len), Some(60));
        assert!(r["seeks"].as_u64().is_some() && r["seek_s_p95"].as_f64().is_some());
    }
    let text = std::fs::read_to_string(&svg).expect("the plot is written");
    assert!(text.trim_start().starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    for policy in ["public-mesh", "no-peer", "random-mesh"] {
        assert!(
            text.contains(&format!("{policy} (offload")),
            "no {policy} series"
        );
    }
    // One line per policy, one for the viewers, besides the grid.
    assert!(text.matches("<polyline").count() >= 4);
    let _ = std::fs::remove_dir_all(&dir);

    // An unwritable plot path is an error, not a panic.
    let bad = hive(&[
        "sim",
        "--scale",
        "0.02",
        "--duration",
        "5",
        "--plot",
        "/nonexistent/dir/x.svg",
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn sim_network_runs_the_documented_example_and_refuses_bad_files() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/sim/network-example.json"
    );
    let v = sim_json(&[
        "sim",
        "--network",
        example,
        "--scale",
        "0.05",
        "--duration",
        "40",
        "--json",
    ]);
    assert_eq!(v["scenario"], "all-hands@0.05");
    assert_eq!(v["policy"], "private-hierarchy");
    assert_eq!(v["duration_s"], 40.0);
    assert!(v["baselines"].get("no-peer").is_some() && v["baselines"].get("random-mesh").is_some());
    assert!(v["offload"].as_f64() > v["baselines"]["no-peer"]["offload"].as_f64());

    let dir = scratch("network");
    let cases = [
        ("{ not json", "line 1"),
        (
            r#"{"sites": [{"name": "a", "viewers": 0}], "access": {"down_mbps": 10, "up_mbps": [1]}, "ladder_kbps": [500]}"#,
            "sites[0].viewers",
        ),
        (
            r#"{"sites": [{"name": "a", "viewers": 5}], "access": {"down_mbps": 10, "up_mbps": [1]}, "ladder_kbps": [900, 500]}"#,
            "ascending",
        ),
        (
            r#"{"sites": [{"name": "a", "viewers": 5}, {"name": "b", "viewers": 5, "vpn_mbps": -1}], "gateway_mbps": 10, "access": {"down_mbps": 10, "up_mbps": [1]}, "ladder_kbps": [500]}"#,
            "sites[1].vpn_mbps",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad-{i}.json"));
        std::fs::write(&path, text).expect("write");
        let bad = hive(&["sim", "--network", path.to_str().expect("utf-8 path")]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{text}");
        assert!(bad.stdout.is_empty());
        assert!(err.contains(want), "{text}: {err}");
    }
    let missing = hive(&["sim", "--network", "/nonexistent/net.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tracker_promotes_supernodes_per_site_when_asked() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hive"))
        .args([
            "tracker",
            "--listen",
            "127.0.0.1:0",
            "--gateway-site",
            "hq",
            "--supernodes-per-site",
            "1",
            "--supernodes-at-gateway",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run hive tracker");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the listening line");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_owned();
    let content = "ab".repeat(32);
    let announce = |n: u8, site: &str| -> String {
        let body = serde_json::json!({
            "content": content,
            "peer": format!("{n:02x}").repeat(32),
            "addrs": ["127.0.0.1:4000"],
            "site": site,
        });
        let text = ureq::post(&format!("{url}/v1/announce"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .expect("announce")
            .body_mut()
            .read_to_string()
            .expect("a reply");
        let reply: serde_json::Value = serde_json::from_str(&text).expect("JSON reply");
        reply["role"].as_str().expect("a role").to_owned()
    };
    let roles: Vec<String> = [
        (1, "hq"),
        (2, "hq"),
        (3, "hq"),
        (4, "branch"),
        (5, "branch"),
    ]
    .into_iter()
    .map(|(n, site)| announce(n, site))
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        roles,
        ["supernode", "supernode", "peer", "supernode", "peer"],
        "two at the gateway site, one per branch"
    );
}
