//! The agent between a player and the synthetic origin: manifests pass through, fragments come
//! byte-identical, and a second agent gets them from the first instead of the origin.

use std::sync::Arc;
use std::time::Duration;

use hive_agent::{Agent, AgentConfig, PolicyKind, TransportKind};
use hive_services::origin::{Origin, OriginConfig, serve};

/// The test publisher's key: the origin signs its integrity lists with it.
fn publisher() -> hive_core::integrity::PublisherKey {
    hive_core::integrity::PublisherKey::from_seed([5; 32])
}

async fn origin() -> (Arc<Origin>, String) {
    let origin = Arc::new(Origin::new(OriginConfig {
        sign_key: Some(publisher()),
        ..OriginConfig::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind origin");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(serve(listener, origin.clone(), std::future::pending()));
    (origin, url)
}

async fn agent(origin: &str, policy: PolicyKind) -> Agent {
    agent_over(origin, policy, TransportKind::Udp).await
}

async fn agent_over(origin: &str, policy: PolicyKind, transport: TransportKind) -> Agent {
    Agent::builder()
        .config(AgentConfig {
            origin: Some(origin.to_string()),
            policy,
            transport,
            integrity: hive_core::integrity::IntegritySource::Signed {
                publisher: Some(publisher().public()),
                service: None,
            },
            ..AgentConfig::default()
        })
        .build()
        .await
        .expect("agent starts")
}

/// Waits up to 3 s for `f` to hold.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..60 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 3 s");
}

/// The agent's `/metrics` text.
async fn metrics_of(agent: &Agent) -> String {
    let (status, body) = get(&format!("{}/metrics", agent.proxy_url())).await;
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).expect("utf-8 metrics")
}

async fn get(url: &str) -> (u16, bytes::Bytes) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body"))
}

/// The newest fragment of `track` listed by the agent's playlist.
async fn newest(proxy: &str, track: usize) -> u64 {
    let (s, body) = get(&format!("{proxy}/live/{track}/index.m3u8")).await;
    assert_eq!(s, 200);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    text.lines()
        .filter_map(|l| l.strip_suffix(".ts"))
        .filter_map(|n| n.parse().ok())
        .max()
        .expect("a fragment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_pass_byte_identical_and_the_second_agent_gets_them_from_the_first() {
    second_agent_gets_them_from_the_first(TransportKind::Udp).await;
}

/// The same over QUIC (`AgentConfig::transport`): the engine, the proxy and the priority
/// knob do not depend on the transport.
#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_the_second_agent_gets_them_from_the_first() {
    second_agent_gets_them_from_the_first(TransportKind::Quic).await;
}

async fn second_agent_gets_them_from_the_first(transport: TransportKind) {
    let (origin, url) = origin().await;
    let a = agent_over(&url, PolicyKind::RandomMesh, transport).await;
    let b = agent_over(&url, PolicyKind::RandomMesh, transport).await;
    a.add_peers(None, vec![b.me()]);
    b.add_peers(None, vec![a.me()]);

    // A plays: master, media playlist, the newest fragment.
    let (s, master) = get(&format!("{}/live/master.m3u8", a.proxy_url())).await;
    assert_eq!(s, 200);
    assert_eq!(master, origin.live().hls_master().as_bytes());
    let seq = newest(&a.proxy_url(), 1).await;
    let (s, data) = get(&format!("{}/live/1/{seq}.ts", a.proxy_url())).await;
    assert_eq!(s, 200);
    assert_eq!(
        data,
        origin.live().fragment(1, seq),
        "byte-identical to the origin's"
    );

    // B joins the same stream; once connected, A's Have tells B where the fragment is.
    let (s, _) = get(&format!("{}/live/master.m3u8", b.proxy_url())).await;
    assert_eq!(s, 200);
    let _ = newest(&b.proxy_url(), 1).await;
    let mut connected = false;
    for _ in 0..50 {
        if a.stats().neighbours > 0 && b.stats().neighbours > 0 {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        connected,
        "the agents became neighbours: {:?} / {:?}",
        a.status(),
        b.status()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = origin.stats().fragment_bytes;
    // B's player needs it within 800 ms (inside the engine's `urgent_within`).
    let r = reqwest::Client::new()
        .get(format!("{}/live/1/{seq}.ts", b.proxy_url()))
        .header(hive_agent::proxy::DEADLINE_HEADER, "800")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    let data_b = r.bytes().await.expect("body");
    assert_eq!(data_b, data);
    assert_eq!(
        origin.stats().fragment_bytes,
        before,
        "B did not go to the origin"
    );
    let n = data.len() as u64;
    eventually("B counted the peer bytes", || {
        b.stats().swarm.peer_bytes == n
    })
    .await;
    eventually("A counted the upload", || {
        a.stats().swarm.uploaded_bytes == n
    })
    .await;
    // B's player asked with its deadline near: A's connection to B carried it TCP-fair
    // (priority follows urgency), set on the UDP transport's DTL controller.
    assert_eq!(a.stats().priority_urgent, 1, "{:?}", a.stats());
    let metrics_a = metrics_of(&a).await;
    assert!(
        metrics_a.contains("hive_agent_cc_priority_urgent_total 1"),
        "{metrics_a}"
    );
    let metrics = metrics_of(&b).await;
    assert!(
        metrics.contains(&format!("hive_agent_peer_bytes_total {}", data.len())),
        "{metrics}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_url_mode_and_unknown_paths_pass_through() {
    let (origin, url) = origin().await;
    let a = Agent::builder()
        .config(AgentConfig {
            allow_origins: vec![url.trim_start_matches("http://").to_string()],
            ..AgentConfig::default()
        })
        .build()
        .await
        .expect("agent without an origin");
    let (s, master) = get(&format!("{}/{url}/live/master.m3u8", a.proxy_url())).await;
    assert_eq!(s, 200);
    assert_eq!(master, origin.live().hls_master().as_bytes());
    let (s, _) = get(&format!("{}/{url}/nothing-here", a.proxy_url())).await;
    assert_eq!(s, 404, "origin's 404 passed on");
    let (s, _) = get(&format!("{}/live/master.m3u8", a.proxy_url())).await;
    assert_eq!(s, 404, "no origin configured");
    let seq = {
        let (_, body) = get(&format!("{}/{url}/live/0/index.m3u8", a.proxy_url())).await;
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        text.lines()
            .filter_map(|l| l.strip_suffix(".ts"))
            .filter_map(|n| n.parse::<u64>().ok())
            .max()
            .expect("a fragment")
    };
    let (s, data) = get(&format!("{}/{url}/live/0/{seq}.ts", a.proxy_url())).await;
    assert_eq!(s, 200);
    assert_eq!(data, origin.live().fragment(0, seq));
    let n = data.len() as u64;
    eventually("the engine fetched it", || {
        a.stats().swarm.origin_bytes == n
    })
    .await;
    a.shutdown().await;
}

/// An origin in front of `real` that serves its playlists but never answers a fragment request.
async fn stalling_origin(real: String) -> String {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let handler = move |uri: Uri| {
        let real = real.clone();
        async move {
            if uri.path().ends_with(".ts") || uri.path().ends_with(".m4s") {
                std::future::pending::<()>().await;
            }
            let url = format!("{real}{}", uri.path());
            match reqwest::get(&url).await {
                Ok(r) => {
                    let status = StatusCode::from_u16(r.status().as_u16())
                        .unwrap_or(StatusCode::BAD_GATEWAY);
                    let kind = r
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/octet-stream")
                        .to_string();
                    let body = r.bytes().await.unwrap_or_default();
                    (status, [(header::CONTENT_TYPE, kind)], body).into_response()
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind stalling origin");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_that_gives_up_on_a_fragment_withdraws_its_request_from_the_swarm() {
    let (_origin, real) = origin().await;
    let url = stalling_origin(real).await;
    let a = agent(&url, PolicyKind::NoPeer).await;
    let (s, _) = get(&format!("{}/live/master.m3u8", a.proxy_url())).await;
    assert_eq!(s, 200);
    let seq = newest(&a.proxy_url(), 1).await;
    // The fragment never comes: the player closes its request (a seek, a quality switch).
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/live/1/{seq}.ts", a.proxy_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err(), "the stalled fragment did not arrive: {r:?}");
    assert_eq!(a.stats().swarm.player_cancels, 0, "not before it closed");
    // The agent notices at its next timer (the engine wakes at least every 2 s).
    let mut withdrawn = false;
    for _ in 0..100 {
        if a.stats().swarm.player_cancels == 1 {
            withdrawn = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(withdrawn, "the request was withdrawn: {:?}", a.stats());
    assert!(
        a.metrics_text()
            .contains("hive_agent_player_cancels_total 1"),
        "{}",
        a.metrics_text()
    );
    a.shutdown().await;
}

/// `PUT /hive/priority` fixes the controller's priority of every peer connection at run time
/// (and gives it back to the engine with `urgency`); web pages may not use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_priority_endpoint_sets_every_connection_and_refuses_web_pages() {
    let (_origin, url) = origin().await;
    let a = agent_over(&url, PolicyKind::RandomMesh, TransportKind::Udp).await;
    let b = agent_over(&url, PolicyKind::RandomMesh, TransportKind::Udp).await;
    a.add_peers(None, vec![b.me()]);
    b.add_peers(None, vec![a.me()]);
    for agent in [&a, &b] {
        let (s, _) = get(&format!("{}/live/master.m3u8", agent.proxy_url())).await;
        assert_eq!(s, 200);
        let _ = newest(&agent.proxy_url(), 1).await;
    }
    eventually("the agents became neighbours", || {
        a.stats().neighbours > 0 && b.stats().neighbours > 0
    })
    .await;
    let endpoint = format!("{}/hive/priority", a.proxy_url());
    let http = reqwest::Client::new();
    let put = |body: &'static str| {
        http.put(&endpoint)
            .header("content-type", "application/json")
            .body(body)
    };
    let status = |r: reqwest::Response| r.status().as_u16();

    let r = http.get(&endpoint).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"priority":"urgency"}"#);
    // A page (any Origin, or a browser's cross-site fetch) is refused; so is anything but JSON
    // and a priority out of range.
    let page = put(r#"{"priority": 0}"#).header("origin", "https://evil.example");
    assert_eq!(status(page.send().await.unwrap()), 403);
    let page = put(r#"{"priority": 0}"#).header("sec-fetch-site", "cross-site");
    assert_eq!(status(page.send().await.unwrap()), 403);
    let plain = http.put(&endpoint).body(r#"{"priority": 0}"#);
    assert_eq!(status(plain.send().await.unwrap()), 415);
    assert_eq!(status(put(r#"{"priority": 2}"#).send().await.unwrap()), 400);
    assert_eq!(
        status(put(r#"{"priority": "high"}"#).send().await.unwrap()),
        400
    );
    assert_eq!(a.stats().priority_scavenger, 0);

    // A fixed priority goes to the connection to B at once (DTL on the UDP transport has the
    // knob), and to /status.
    let r = put(r#"{"priority": 0.25}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    eventually("the connection was set to 0.25", || {
        a.stats().priority_scavenger == 1
    })
    .await;
    assert_eq!(a.status()["priority"], "0.25");
    // Back to the engine's urgency.
    assert_eq!(
        status(put(r#"{"priority": "urgency"}"#).send().await.unwrap()),
        200
    );
    eventually("the engine sets priorities again", || {
        a.status()["priority"] == "urgency"
    })
    .await;
    // The same through the API.
    a.set_priority(hive_agent::PriorityMode::Fixed(1.0))
        .await
        .unwrap();
    eventually("the connection was set to 1", || {
        a.stats().priority_urgent >= 1
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
