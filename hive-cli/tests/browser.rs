//! `hive demo`'s watch page in a real browser: Debian's headless Chromium, driven by node and
//! puppeteer-core (`tests/browser/watch_check.mjs`), plays the first viewer's picture through
//! its agent with hls.js. scripts/test.sh installs chromium, node and the driver.

use std::process::{Command, Stdio};
use std::time::Duration;

use hive_agent::PolicyKind;
use hive_cli::demo::{DemoConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_watch_page_through_an_agent_without_a_stall() {
    let watch = hive_cli::demo::watch::Watch::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let page = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(hive_cli::demo::watch::serve(
        listener,
        watch.clone(),
        std::future::pending(),
    ));
    let cfg = DemoConfig {
        viewers: 5,
        duration: Duration::from_secs(40),
        join_over: Duration::from_secs(2),
        policy: PolicyKind::PublicMesh,
        watch: Some(watch),
        ..DemoConfig::default()
    };
    let demo = tokio::spawn(run(cfg, |_| {}));
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/watch_check.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
            .arg(driver)
            .arg(&page)
            .arg("15")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| {
        panic!("node did not start ({e}): scripts/test.sh installs node, chromium and the driver")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no report from the driver:\n{stdout}\n{stderr}"));
    eprintln!("{report}");
    assert_eq!(report["ok"], true, "{report}");
    // The picture moved on with the clock, and on screen.
    let advanced = report["advanced_s"].as_f64().unwrap_or(0.0);
    assert!(
        advanced > 13.5,
        "the video advanced {advanced} s in 15 s: {report}"
    );
    assert_eq!(report["frames_differ"], true, "{report}");
    assert_eq!(report["stalls"], 0, "{report}");
    assert!(report["height"].as_u64().unwrap_or(0) >= 360, "{report}");
    let r = demo.await.expect("join").expect("demo runs");
    assert_eq!(r.corrupt_fragments, 0);
}
