//! The agent's engine driver on virtual time: with tokio's time paused, the agent's default
//! clock (hive-core's `MonotonicClock` on tokio's time) is virtual, so minutes of deadlines and
//! idle time pass in milliseconds of wall time, and the tests check what happened when.
//!
//! Everything runs on one current-thread runtime: tokio advances its paused clock only when
//! every task waits, and loopback sockets are ready by the time it looks, so the HTTP exchanges
//! (player → proxy → origin) take no virtual time.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, Uri, header};
use hive_agent::{Agent, AgentConfig, proxy::DEADLINE_HEADER};
use hive_core::FragmentId;
use hive_core::overlay::{FetchContext, FetchDecision, LocalView, NeighbourPlan, OverlayPolicy};
use hive_core::time::Instant;
use parking_lot::Mutex;
use tokio::time::Instant as TokioInstant;

/// A VoD playlist of three 4-second fragments.
const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
    #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n\
    #EXTINF:4.0,\n0.ts\n#EXTINF:4.0,\n1.ts\n#EXTINF:4.0,\n2.ts\n#EXT-X-ENDLIST\n";

/// The bytes of fragment `n`.
fn fragment(n: u64) -> Vec<u8> {
    (0..40_000u64)
        .map(|i| (i.wrapping_mul(31) ^ n) as u8)
        .collect()
}

/// What the origin was asked for, and when (on tokio's clock).
type Log = Arc<Mutex<Vec<(String, TokioInstant)>>>;

/// An origin serving [`PLAYLIST`] at `/vod/index.m3u8` and its fragments, logging requests.
async fn origin() -> (String, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let seen = seen.clone();
        async move {
            let path = uri.path().to_string();
            seen.lock().push((path.clone(), TokioInstant::now()));
            if path == "/vod/index.m3u8" {
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
                    PLAYLIST.as_bytes().to_vec(),
                );
            }
            match path
                .strip_prefix("/vod/")
                .and_then(|p| p.strip_suffix(".ts"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(n) if n < 3 => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "video/mp2t")],
                    fragment(n),
                ),
                _ => (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "text/plain")],
                    Vec::new(),
                ),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the origin");
    let url = format!("http://{}", listener.local_addr().expect("origin address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

/// A policy that never fetches from the origin by itself: it waits for peers (there are none)
/// until the engine's time budget sends the player's fragment to the origin at its last call.
#[derive(Debug)]
struct WaitForPeers;

impl OverlayPolicy for WaitForPeers {
    fn name(&self) -> &'static str {
        "wait-for-peers"
    }

    fn plan_neighbours(&mut self, _now: Instant, _view: &LocalView<'_>) -> NeighbourPlan {
        NeighbourPlan::default()
    }

    fn fetch_source(
        &mut self,
        _now: Instant,
        _view: &LocalView<'_>,
        need: &FetchContext,
    ) -> FetchDecision {
        FetchDecision::WaitUntil(need.deadline)
    }

    fn should_prefetch(&mut self, _now: Instant, _view: &LocalView<'_>, _f: &FragmentId) -> bool {
        false
    }
}

/// The origin's time budget for a fragment: what the engine keeps before a deadline (the
/// assumed origin rate is so high that the transfer itself counts for nothing).
const MARGIN: Duration = Duration::from_secs(2);

/// An agent on the in-memory transport, waiting for peers, with the origin at `origin`, that
/// leaves a stream no player used for `content_idle`.
async fn agent(origin: &str, content_idle: Duration) -> Agent {
    let mut cfg = AgentConfig {
        origin: Some(origin.to_string()),
        // Closed lab: no integrity lists to fetch (the origin's log holds only what the
        // player's requests cause).
        integrity: hive_core::integrity::IntegritySource::None,
        // The player waits as long as its deadline says.
        player_timeout: Duration::from_secs(3600),
        content_idle,
        ..AgentConfig::default()
    };
    cfg.swarm.origin_margin = MARGIN;
    cfg.swarm.assumed_origin_bps = 1 << 50;
    let net = hive_core::testkit::memory::MemoryNetwork::new();
    Agent::builder()
        .config(cfg)
        .transport(net.endpoint())
        .policy(|_, _| Box::new(WaitForPeers))
        .build()
        .await
        .expect("the agent starts")
}

fn client() -> reqwest::Client {
    // No pooled connections: the proxy closes idle ones after 5 s, which here may be minutes
    // of virtual time between two requests.
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client")
}

async fn get(c: &reqwest::Client, url: &str, deadline_ms: Option<u64>) -> (u16, Vec<u8>) {
    let mut req = c.get(url);
    if let Some(ms) = deadline_ms {
        req = req.header(DEADLINE_HEADER, ms.to_string());
    }
    let r = req.send().await.expect("the proxy answers");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body").to_vec())
}

/// When the origin was asked for `path`, relative to `t0`, in order.
fn asked(log: &Log, path: &str, t0: TokioInstant) -> Vec<Duration> {
    log.lock()
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, t)| t.duration_since(t0))
        .collect()
}

/// Whether `d` is `expected`, give or take the timer's millisecond.
fn about(d: Duration, expected: Duration) -> bool {
    d >= expected.saturating_sub(Duration::from_millis(2))
        && d <= expected + Duration::from_millis(20)
}

#[tokio::test(start_paused = true)]
async fn a_player_request_goes_to_the_origin_at_its_last_call_and_not_before() {
    let wall = std::time::Instant::now();
    let (origin, log) = origin().await;
    // (A stream counts as used when a request comes, not while it waits: an idle time shorter
    // than the wait would leave the stream under the waiting player.)
    let a = agent(&origin, Duration::from_secs(3600)).await;
    let proxy = a.proxy_url();
    let http = client();
    let t0 = TokioInstant::now();
    let (s, body) = get(&http, &format!("{proxy}/vod/index.m3u8"), None).await;
    assert_eq!((s, body.as_slice()), (200, PLAYLIST.as_bytes()));

    // Fragment 0, needed in five minutes: the policy waits for peers; none come, and the
    // engine sends it to the origin at the last moment the origin can still make it.
    let deadline = Duration::from_secs(300);
    let asked_at = t0.elapsed();
    let (s, body) = get(
        &http,
        &format!("{proxy}/vod/0.ts"),
        Some(deadline.as_millis() as u64),
    )
    .await;
    let answered = t0.elapsed();
    assert_eq!(s, 200);
    assert!(body == fragment(0), "the player gets the origin's bytes");
    let fetched = asked(&log, "/vod/0.ts", t0);
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    let last_call = asked_at + deadline - MARGIN;
    assert!(
        about(fetched[0], last_call),
        "fetched at {:?}, last call {last_call:?}",
        fetched[0]
    );
    assert!(
        answered >= last_call && answered < asked_at + deadline,
        "answered at {answered:?}"
    );
    // The counters (published within 100 ms) say why the origin served it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = a.stats().swarm;
    assert_eq!(st.origin_last_call, 1, "{st:?}");
    assert_eq!(st.origin_by_policy, 0, "{st:?}");
    assert_eq!(st.origin_bytes, fragment(0).len() as u64);
    assert_eq!(st.delivered_in_time, 1, "{st:?}");

    // Asked again: from the cache, at once, and the origin is not asked again.
    let before = TokioInstant::now();
    let (s, body) = get(&http, &format!("{proxy}/vod/0.ts"), Some(60_000)).await;
    assert_eq!(s, 200);
    assert!(body == fragment(0));
    assert!(
        before.elapsed() < Duration::from_millis(5),
        "{:?}",
        before.elapsed()
    );
    assert_eq!(asked(&log, "/vod/0.ts", t0).len(), 1);

    // Five minutes on the agent's clock took no more than a few seconds of wall time.
    assert!(t0.elapsed() >= deadline - MARGIN);
    assert!(
        wall.elapsed() < Duration::from_secs(10),
        "{:?}",
        wall.elapsed()
    );
    a.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_no_player_uses_is_left_after_content_idle() {
    let wall = std::time::Instant::now();
    let (origin, log) = origin().await;
    let a = agent(&origin, Duration::from_secs(120)).await;
    let proxy = a.proxy_url();
    let http = client();
    let t0 = TokioInstant::now();
    let (s, _) = get(&http, &format!("{proxy}/vod/index.m3u8"), None).await;
    assert_eq!(s, 200);
    // A fragment with a short deadline: fetched from the origin within it, then cached.
    let (s, body) = get(&http, &format!("{proxy}/vod/1.ts"), Some(4_000)).await;
    assert_eq!(s, 200);
    assert!(body == fragment(1));
    let used = TokioInstant::now();
    assert_eq!(asked(&log, "/vod/1.ts", t0).len(), 1);
    let swarms = |a: &Agent| {
        a.status()["swarms"]
            .as_array()
            .map_or(usize::MAX, |s| s.len())
    };

    // Idle for less than `content_idle` (120 s): the agent stays in the swarm, and serves the
    // fragment from its cache.
    tokio::time::sleep_until(used + Duration::from_secs(110)).await;
    assert_eq!(swarms(&a), 1);
    // (This request is use: idle time counts from it.)
    let (s, body) = get(&http, &format!("{proxy}/vod/1.ts"), Some(4_000)).await;
    assert_eq!((s, body == fragment(1)), (200, true));
    assert_eq!(asked(&log, "/vod/1.ts", t0).len(), 1);
    let used = TokioInstant::now();

    tokio::time::sleep_until(used + Duration::from_secs(115)).await;
    assert_eq!(swarms(&a), 1, "left before content_idle");
    // The janitor looks every 10 s: past 120 s idle, the stream is left by the next look.
    tokio::time::sleep_until(used + Duration::from_secs(131)).await;
    assert_eq!(swarms(&a), 0, "still in the swarm after content_idle");

    // Forgotten: the same URL is now an unknown one, passed through to the origin.
    let (s, body) = get(&http, &format!("{proxy}/vod/1.ts"), None).await;
    assert_eq!((s, body == fragment(1)), (200, true));
    let fetched = asked(&log, "/vod/1.ts", t0);
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert!(fetched[1] >= Duration::from_secs(110 + 131));
    assert!(
        wall.elapsed() < Duration::from_secs(10),
        "{:?}",
        wall.elapsed()
    );
    a.shutdown().await;
}
