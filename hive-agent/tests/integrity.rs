//! Where agents get trusted hashes: a hash service hosted by the tracker (for an origin that
//! publishes no lists), and what happens when a list is signed by another key than the one the
//! agents trust (nothing is shared: every fragment comes from the origin).

mod common;
use common::{get, newest, within};

use std::sync::Arc;
use std::time::Duration;

use hive_agent::{Agent, AgentConfig, PolicyKind};
use hive_core::integrity::{IntegritySource, PublisherKey};
use hive_services::integrity::{HashService, HashServiceConfig};
use hive_services::origin::{Origin, OriginConfig};
use hive_services::tracker::{MemoryStore, Tracker, TrackerConfig};

async fn listen() -> (tokio::net::TcpListener, std::net::SocketAddr, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr, format!("http://{addr}"))
}

async fn start_origin(
    sign_key: Option<PublisherKey>,
) -> (Arc<Origin>, std::net::SocketAddr, String) {
    let origin = Arc::new(Origin::new(OriginConfig {
        sign_key,
        ..OriginConfig::default()
    }));
    let (l, addr, url) = listen().await;
    tokio::spawn(hive_services::origin::serve(
        l,
        origin.clone(),
        std::future::pending(),
    ));
    (origin, addr, url)
}

/// A tracker on loopback; with `service`, it hosts that hash service's routes too.
async fn start_tracker(service: Option<Arc<HashService>>) -> String {
    let tracker = Arc::new(Tracker::new(
        TrackerConfig {
            ttl: Duration::from_secs(6),
            ..TrackerConfig::default()
        },
        Arc::new(MemoryStore::new()),
    ));
    let (l, _, url) = listen().await;
    match service {
        Some(s) => {
            tokio::spawn(hive_services::tracker::serve_with(
                l,
                tracker,
                s.router(),
                std::future::pending(),
            ));
        }
        None => {
            tokio::spawn(hive_services::tracker::serve(
                l,
                tracker,
                std::future::pending(),
            ));
        }
    }
    url
}

async fn agent(origin: &str, tracker: &str, integrity: IntegritySource) -> Agent {
    Agent::builder()
        .config(AgentConfig {
            origin: Some(origin.to_string()),
            tracker: Some(tracker.to_string()),
            policy: PolicyKind::RandomMesh,
            integrity,
            ..AgentConfig::default()
        })
        .build()
        .await
        .expect("agent")
}

/// Two agents join, connect, and a's player fetches the newest fragment; then b's player asks
/// for it. Returns the origin's fragment bytes served for b's request.
async fn second_fetch(origin: &Origin, a: &Agent, b: &Agent) -> u64 {
    for x in [a, b] {
        assert_eq!(
            get(&format!("{}/live/master.m3u8", x.proxy_url())).await,
            200
        );
        let _ = newest(&x.proxy_url()).await;
    }
    let ok = within(80, || {
        a.stats().neighbours == 1 && b.stats().neighbours == 1
    })
    .await;
    assert!(ok, "a and b connected: {} / {}", a.status(), b.status());
    let seq = newest(&a.proxy_url()).await;
    assert_eq!(
        get(&format!("{}/live/1/{seq}.ts", a.proxy_url())).await,
        200
    );
    // The Have, and the trusted hash at b, have time to arrive.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(newest(&b.proxy_url()).await >= seq);
    let before = origin.stats().fragment_bytes;
    assert_eq!(
        get(&format!("{}/live/1/{seq}.ts", b.proxy_url())).await,
        200
    );
    let from_origin = origin.stats().fragment_bytes - before;
    // The agents' counters are published every 100 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    from_origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_share_with_hashes_from_a_hash_service_on_the_tracker() {
    let (origin, oaddr, origin_url) = start_origin(None).await;
    let key = PublisherKey::from_seed([21; 32]);
    let service = HashService::new(
        HashServiceConfig {
            allow_origins: vec![oaddr.to_string()],
            ..HashServiceConfig::default()
        },
        PublisherKey::from_seed([21; 32]),
    )
    .expect("hash service");
    let tracker = start_tracker(Some(service.clone())).await;
    let trust = IntegritySource::Signed {
        publisher: None,
        service: Some(key.public()),
    };
    let a = agent(&origin_url, &tracker, trust.clone()).await;
    let b = agent(&origin_url, &tracker, trust).await;
    let from_origin = second_fetch(&origin, &a, &b).await;
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        from_origin,
        0,
        "b got the fragment from a: {}\n{}",
        a.status(),
        b.status()
    );
    assert!(sb.swarm.peer_bytes > 0);
    assert!(sa.integrity_lists > 0 && sb.integrity_lists > 0);
    assert_eq!(sb.swarm.bad_fragments, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_signed_by_another_key_share_nothing() {
    // The origin signs with one key; the agents trust another.
    let (origin, _, origin_url) = start_origin(Some(PublisherKey::from_seed([1; 32]))).await;
    let tracker = start_tracker(None).await;
    let trust = IntegritySource::Signed {
        publisher: Some(PublisherKey::from_seed([2; 32]).public()),
        service: None,
    };
    let a = agent(&origin_url, &tracker, trust.clone()).await;
    let b = agent(&origin_url, &tracker, trust).await;
    let from_origin = second_fetch(&origin, &a, &b).await;
    let sb = b.stats();
    assert!(from_origin > 0, "b's fragment came from the origin");
    assert_eq!(sb.swarm.peer_bytes, 0, "no unverified peer bytes");
    assert!(sb.swarm.no_trusted_hash > 0, "{}", b.status());
    assert!(sb.integrity_list_failures > 0, "the wrong key was noticed");
    assert_eq!(sb.integrity_lists, 0);
}
