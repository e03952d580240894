//! ffmpeg, as a real HLS client, pulls a stream through an agent without error: a VoD ladder
//! made by ffmpeg at test time, served from a folder by `hive origin`'s server, played through
//! the agent's proxy (manifests parsed and passed through, segments through the swarm engine).
//! Needs Debian's `ffmpeg` (scripts/test.sh installs it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use hive_agent::{Agent, AgentConfig};
use hive_services::origin::{Origin, OriginConfig, serve};

fn ffmpeg() -> String {
    std::env::var("FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

/// An 8-second, two-variant TS ladder with 2 s segments in a fresh folder.
fn make_ladder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hive-ffmpeg-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp folder");
    let args = "-hide_banner -loglevel error -nostdin -y \
        -f lavfi -i testsrc2=size=160x90:rate=25:duration=8 \
        -f lavfi -i sine=frequency=440:sample_rate=48000:duration=8 \
        -c:v libx264 -preset ultrafast -g 50 -keyint_min 50 -sc_threshold 0 \
        -filter:v:1 scale=96:54 -b:v:0 200k -b:v:1 100k -c:a aac -b:a 32k -threads 1 \
        -map 0:v -map 1:a -map 0:v -map 1:a -f hls -hls_time 2 -hls_playlist_type vod \
        -hls_segment_type mpegts -master_pl_name master.m3u8 -var_stream_map v:0,a:0_v:1,a:1";
    let mut cmd = Command::new(ffmpeg());
    for a in args.split_whitespace() {
        // `var_stream_map` holds a space; it is written with `_` above.
        cmd.arg(if a.starts_with("v:0,") {
            "v:0,a:0 v:1,a:1"
        } else {
            a
        });
    }
    cmd.arg("-hls_segment_filename")
        .arg(dir.join("s%v_%03d.ts"))
        .arg(dir.join("p%v.m3u8"));
    let out = cmd.stderr(Stdio::piped()).output().unwrap_or_else(|e| {
        panic!(
            "`{}` not found ({e}): this test needs ffmpeg, from the Debian package `ffmpeg` \
             (scripts/test.sh installs it)",
            ffmpeg()
        )
    });
    assert!(
        out.status.success(),
        "ffmpeg could not make the ladder: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// An origin served on loopback, and an agent in front of it.
async fn agent_before(cfg: OriginConfig) -> Agent {
    let origin = Arc::new(Origin::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(serve(listener, origin, std::future::pending()));
    Agent::builder()
        .config(AgentConfig {
            origin: Some(origin_url),
            ..AgentConfig::default()
        })
        .build()
        .await
        .expect("agent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_pulls_an_hls_stream_through_an_agent_without_error() {
    let dir = make_ladder();
    let agent = agent_before(OriginConfig {
        folder: Some(dir.clone()),
        ..OriginConfig::default()
    })
    .await;
    let url = format!("{}/media/master.m3u8", agent.proxy_url());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(ffmpeg())
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i", &url])
            .args(["-map", "0", "-c", "copy", "-f", "null", "-"])
            .stderr(Stdio::piped())
            .output()
    })
    .await
    .expect("join")
    .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg reported errors: {stderr}");
    // The segments went through the swarm engine (not only passed through).
    let mut fetched = 0;
    for _ in 0..40 {
        fetched = agent.stats().swarm.origin_bytes;
        if fetched > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        fetched > 0,
        "no segment went through the engine: {}",
        agent.status()
    );
    assert_eq!(agent.stats().player_errors, 0);
    agent.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The origin's live test card, played by ffmpeg through an agent, over HLS (MPEG-TS, and
/// fragmented MP4 with its audio as a rendition group) and over DASH (fragmented MP4, video
/// and audio apart): every rendition decodes (not only demuxes) with no error and no warning,
/// as `ffplay` on the README's URL would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_the_live_test_card_through_an_agent() {
    let agent = agent_before(OriginConfig::default()).await;
    // Live, and the on-demand title from its start and after a seek to 2 minutes.
    let urls = ["master.m3u8", "master-fmp4.m3u8", "manifest.mpd"]
        .iter()
        .flat_map(|m| [("live", *m, "0"), ("vod", *m, "0"), ("vod", *m, "120")])
        // ffmpeg 5.1 cannot seek in fMP4 HLS (after a seek it reads fragments without their
        // EXT-X-MAP init segment), from the origin directly too.
        .filter(|c| !(c.1 == "master-fmp4.m3u8" && c.2 != "0"));
    for (span, manifest, start) in urls {
        let began = std::time::Instant::now();
        let url = format!("{}/{span}/{manifest}", agent.proxy_url());
        let manifest = format!("{span}/{manifest} from {start} s");
        let out = tokio::task::spawn_blocking(move || {
            let seek = if start == "0" {
                vec![]
            } else {
                vec!["-ss", start]
            };
            Command::new(ffmpeg())
                .args(["-hide_banner", "-nostdin", "-v", "warning", "-xerror"])
                .args(seek)
                .args(["-i", &url, "-map", "0", "-t", "5", "-f", "null", "-"])
                .stderr(Stdio::piped())
                .output()
        })
        .await
        .expect("join")
        .expect("ffmpeg runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{manifest}: ffmpeg failed: {stderr}");
        // ffmpeg 5.1's HLS demuxer reads an fMP4 playlist's init segment (EXT-X-MAP) once
        // more per variant and says so, from the origin directly too: not the stream's fault.
        let reported: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.ends_with("Found duplicated MOOV Atom. Skipped it"))
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(reported.is_empty(), "{manifest}: ffmpeg reported: {stderr}");
        eprintln!(
            "{manifest}: decoded in {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
    let s = agent.stats();
    assert!(s.swarm.player_bytes > 0, "{}", agent.status());
    assert_eq!(s.player_errors, 0);
    agent.shutdown().await;
}
