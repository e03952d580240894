//! The services end to end. Registrar tokens: agents fetch tokens from `hive registrar`'s
//! server, present them in their transport handshake and their Hello, and refuse a peer that
//! has none (`tests/handshake_tokens.rs` has the handshake and expiry in detail); the tracker,
//! configured to, refuses its announces too. Roles: an agent the tracker promotes to supernode
//! adopts the role and announces with it.

mod common;
use common::{get, newest, within};

use std::sync::Arc;
use std::time::Duration;

use hive_agent::{Agent, AgentConfig, PolicyKind};
use hive_services::origin::{Origin, OriginConfig};
use hive_services::registrar::{Registrar, serve_registrar};
use hive_services::tracker::{MemoryStore, Tracker, TrackerConfig};

async fn listen() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    (l, url)
}

/// A synthetic live origin on loopback, and its URL.
/// The test publisher's key: the origin signs its integrity lists with it.
fn publisher() -> hive_core::integrity::PublisherKey {
    hive_core::integrity::PublisherKey::from_seed([9; 32])
}

/// What every agent here trusts: lists signed by the test publisher.
fn signed() -> hive_core::integrity::IntegritySource {
    hive_core::integrity::IntegritySource::Signed {
        publisher: Some(publisher().public()),
        service: None,
    }
}

async fn start_origin() -> (Arc<Origin>, String) {
    let origin = Arc::new(Origin::new(OriginConfig {
        sign_key: Some(publisher()),
        ..OriginConfig::default()
    }));
    let (l, url) = listen().await;
    tokio::spawn(hive_services::origin::serve(
        l,
        origin.clone(),
        std::future::pending(),
    ));
    (origin, url)
}

/// A tracker on loopback with an in-memory store; its URL.
async fn start_tracker(cfg: TrackerConfig) -> String {
    let tracker = Arc::new(Tracker::new(cfg, Arc::new(MemoryStore::new())));
    let (l, url) = listen().await;
    tokio::spawn(hive_services::tracker::serve(
        l,
        tracker,
        std::future::pending(),
    ));
    url
}

/// Each agent's player joins the stream: the master playlist, then the newest fragment.
async fn join_stream(agents: &[&Agent]) {
    for a in agents {
        assert_eq!(
            get(&format!("{}/live/master.m3u8", a.proxy_url())).await,
            200
        );
        let _ = newest(&a.proxy_url()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_tokens_share_and_refuse_a_peer_without_one() {
    let (origin, origin_url) = start_origin().await;
    let registrar = Arc::new(Registrar::generate());
    let (l, registrar_url) = listen().await;
    tokio::spawn(serve_registrar(
        l,
        registrar.clone(),
        Duration::from_secs(3600),
        std::future::pending(),
    ));
    // The tracker does not check tokens here, so the token-less agent is introduced and the
    // agents' own check is what refuses it.
    let tracker_url = start_tracker(TrackerConfig {
        ttl: Duration::from_secs(6),
        ..TrackerConfig::default()
    })
    .await;
    // The registrar's key, pinned (a plain-HTTP registrar's key is not fetched in clear).
    let key: String = registrar
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let make = |registrar: Option<String>| {
        let cfg = AgentConfig {
            registrar_key: Some(key.clone()),
            integrity: signed(),
            origin: Some(origin_url.clone()),
            tracker: Some(tracker_url.clone()),
            registrar,
            policy: PolicyKind::RandomMesh,
            ..AgentConfig::default()
        };
        async move { Agent::builder().config(cfg).build().await.expect("agent") }
    };
    let a = make(Some(registrar_url.clone())).await;
    let b = make(Some(registrar_url.clone())).await;
    let intruder = make(None).await;
    join_stream(&[&a, &b, &intruder]).await;
    // Announces every 2 s: after a few, everyone has heard of everyone.
    let ok = within(80, || {
        a.stats().neighbours == 1 && b.stats().neighbours == 1
    })
    .await;
    assert!(ok, "a and b connected: {} / {}", a.status(), b.status());
    // The intruder keeps dialling, and a and b dial it: every handshake is refused (it has no
    // token to carry), so a and b never count it as a neighbour, not even for a moment.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            a.stats().neighbours <= 1 && b.stats().neighbours <= 1,
            "the intruder got a connection: {}\n{}",
            a.status(),
            b.status()
        );
    }
    let refused = within(20, || {
        a.stats().neighbours == 1 && b.stats().neighbours == 1 && intruder.stats().neighbours == 0
    })
    .await;
    assert!(
        refused,
        "a and b refused the intruder: {}\n{}\n{}",
        a.status(),
        b.status(),
        intruder.status()
    );
    assert!(
        a.stats().admission_refused + b.stats().admission_refused > 0,
        "refused in the transport handshake: {}\n{}",
        a.status(),
        b.status()
    );
    // Tokens in hand, a and b share.
    let seq = newest(&a.proxy_url()).await;
    assert_eq!(
        get(&format!("{}/live/1/{seq}.ts", a.proxy_url())).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = origin.stats().fragment_bytes;
    // b's player sees the fragment in its own playlist first.
    assert!(newest(&b.proxy_url()).await >= seq);
    assert_eq!(
        get(&format!("{}/live/1/{seq}.ts", b.proxy_url())).await,
        200
    );
    assert_eq!(
        origin.stats().fragment_bytes,
        before,
        "b got it from a: {} / {}",
        a.status(),
        b.status()
    );
    // b's /status (a snapshot the engine refreshes) shows what it measured of a: bytes and a
    // throughput.
    let a_id = a.peer_id().to_string();
    let measured = || {
        b.status()["swarms"][0]["neighbours"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["peer"] == a_id.as_str()).cloned())
            .is_some_and(|n| {
                n["bytes_from"].as_u64().unwrap_or(0) > 0
                    && n["throughput_bps"].as_u64().unwrap_or(0) > 0
                    && n["inflight_requests"] == 0
            })
    };
    assert!(
        within(30, measured).await,
        "b's status of a: {}",
        b.status()
    );
    for x in [a, b, intruder] {
        x.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_the_tracker_promotes_adopts_the_role_and_announces_with_it() {
    let (_origin, origin_url) = start_origin().await;
    // One supernode per site; agents re-announce every second (a third of the TTL).
    let tracker_url = start_tracker(TrackerConfig {
        ttl: Duration::from_secs(3),
        supernodes: Some(hive_services::tracker::SupernodePlan {
            per_site: 1,
            peers_per_supernode: 0,
            ..Default::default()
        }),
        ..TrackerConfig::default()
    })
    .await;
    let mut agents = Vec::new();
    for _ in 0..2 {
        let cfg = AgentConfig {
            integrity: signed(),
            origin: Some(origin_url.clone()),
            tracker: Some(tracker_url.clone()),
            locality: hive_core::Locality {
                site: Some("office".into()),
                ..Default::default()
            },
            policy: PolicyKind::RandomMesh,
            ..AgentConfig::default()
        };
        let agent = Agent::builder().config(cfg).build().await.expect("agent");
        join_stream(&[&agent]).await;
        agents.push(agent);
    }
    // Three announces each: an agent that did not adopt its promotion would be promoted again
    // at every one (the tracker counts the site's supernodes without the announcer).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let metrics = reqwest::get(format!("{tracker_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let announces = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hive_tracker_announces_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(announces >= 6, "three announces each: {metrics}");
    assert!(
        metrics.contains("hive_tracker_promotions_total 1\n"),
        "one promotion, kept: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_fetches_through_the_gateway_sites_supernode_the_tracker_named() {
    let (origin, origin_url) = start_origin().await;
    // One supernode per site, the gateway at "hq"; announces every second.
    let tracker_url = start_tracker(TrackerConfig {
        ttl: Duration::from_secs(3),
        supernodes: Some(hive_services::tracker::SupernodePlan {
            per_site: 1,
            gateway_site: Some("hq".into()),
            at_gateway: 1,
            peers_per_supernode: 0,
        }),
        ..TrackerConfig::default()
    })
    .await;
    let agent = |site: &str| {
        let cfg = AgentConfig {
            integrity: signed(),
            origin: Some(origin_url.clone()),
            tracker: Some(tracker_url.clone()),
            locality: hive_core::Locality {
                site: Some(site.into()),
                ..Default::default()
            },
            policy: PolicyKind::PrivateHierarchy,
            gateway_site: Some("hq".into()),
            ..AgentConfig::default()
        };
        async move { Agent::builder().config(cfg).build().await.expect("agent") }
    };
    // The gateway site's agent first, then two at a branch: each joins the stream.
    let hq = agent("hq").await;
    let mut all = vec![hq];
    for _ in 0..2 {
        all.push(agent("branch").await);
    }
    join_stream(&all.iter().collect::<Vec<_>>()).await;
    // Promotions, then connections: the branch's supernode to hq's, the other to its own.
    let ok = within(80, || all.iter().all(|a| a.stats().neighbours >= 1)).await;
    assert!(
        ok,
        "connected: {} / {} / {}",
        all[0].status(),
        all[1].status(),
        all[2].status()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Fragments asked at the branch first: they cross from the origin to hq's supernode only,
    // then over to the branch.
    let before: Vec<u64> = all.iter().map(|a| a.stats().swarm.origin_bytes).collect();
    let fragments_before = origin.stats().fragment_bytes;
    let seq = newest(&all[2].proxy_url()).await;
    for a in [&all[2], &all[1], &all[0]] {
        assert!(newest(&a.proxy_url()).await >= seq);
        assert_eq!(
            get(&format!("{}/live/1/{seq}.ts", a.proxy_url())).await,
            200,
            "{}",
            a.status()
        );
    }
    // (Agents publish their counters a moment after the work: wait for hq's, then a little.)
    within(50, || all[0].stats().swarm.origin_bytes > before[0]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<u64> = all.iter().map(|a| a.stats().swarm.origin_bytes).collect();
    let status = || {
        all.iter()
            .map(|a| a.status().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        after[1],
        before[1],
        "the branch supernode used hq's: {}",
        status()
    );
    assert_eq!(
        after[2],
        before[2],
        "the branch peer used its supernode: {}",
        status()
    );
    assert!(
        after[0] > before[0],
        "hq's supernode fetched it: {}",
        status()
    );
    let fetched = origin.stats().fragment_bytes - fragments_before;
    assert_eq!(fetched, after[0] - before[0], "one copy from the origin");
    for a in all {
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_registrar_needs_a_pinned_key_and_its_enrollment_secret() {
    use hive_services::registrar::EnrollPolicy;
    let registrar =
        Arc::new(Registrar::generate().with_enroll(EnrollPolicy::Secret("s3cret".into())));
    let (l, registrar_url) = listen().await;
    tokio::spawn(serve_registrar(
        l,
        registrar.clone(),
        Duration::from_secs(3600),
        std::future::pending(),
    ));
    // No pinned key: refused at start-up, with the reason.
    let unpinned = Agent::builder()
        .config(AgentConfig {
            registrar: Some(registrar_url.clone()),
            ..AgentConfig::default()
        })
        .build()
        .await;
    let Err(e) = unpinned else {
        panic!("an agent trusted a key fetched in clear");
    };
    assert!(e.to_string().contains("pin its public key"), "{e}");
    // The enrollment secret decides who gets a token.
    let client = hive_services::registrar::RegistrarClient::new(&registrar_url).expect("client");
    let (peer, content) = (
        hive_core::PeerId::from_bytes([3; 32]),
        hive_core::ContentId::derive("live/x"),
    );
    let refused = client.token(peer, content).await;
    assert!(
        matches!(
            refused,
            Err(hive_services::registrar::RegistrarError::Status { status: 403, .. })
        ),
        "{refused:?}"
    );
    let (token, _) = client
        .with_enroll_secret("s3cret")
        .token(peer, content)
        .await
        .expect("token with the secret");
    assert!(
        registrar
            .verifier()
            .verify(&token, peer, content, 0)
            .is_ok()
    );
}
