//! The tracker's HTTP API through TrackerClient, against a server on 127.0.0.1:0 — every test
//! twice: on the in-memory store and on Redis (a `redis-server` the test starts on a free port),
//! so the Redis tracker is shown to behave as the in-memory one.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_core::{ContentId, Locality, PeerAddr, PeerId, PeerInfo, Role};
use hive_services::registrar::{Registrar, TokenVerifier};
use hive_services::testkit::RedisServer;
use hive_services::tracker::{
    self, Announce, LocalityTable, MemoryStore, RedisStore, Tracker, TrackerClient, TrackerConfig,
    TrackerError, TrackerStore,
};
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Redis,
}

struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _redis: Option<RedisServer>,
}

impl Server {
    async fn start(cfg: TrackerConfig, kind: Kind) -> Server {
        Server::start_bounded(cfg, kind, None).await
    }

    /// With the store's bounds `(max_swarms, max_peers_per_swarm)` when given (and on Redis,
    /// keys living 2 × TTL, as `hive tracker --redis` sets them).
    async fn start_bounded(
        cfg: TrackerConfig,
        kind: Kind,
        limits: Option<(usize, usize)>,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (store, redis): (Arc<dyn TrackerStore>, _) = match kind {
            Kind::Memory => {
                let store = MemoryStore::new();
                let store = match limits {
                    Some((swarms, peers)) => store.with_limits(swarms, peers),
                    None => store,
                };
                (Arc::new(store), None)
            }
            Kind::Redis => {
                let server = RedisServer::start()
                    .unwrap()
                    .expect("redis-server is not installed (scripts/test.sh installs it)");
                let store = RedisStore::connect(&server.url()).await.unwrap();
                let store = match limits {
                    Some((swarms, peers)) => store
                        .with_limits(swarms, peers)
                        .with_key_lifetime(cfg.ttl * 2),
                    None => store,
                };
                (Arc::new(store), Some(server))
            }
        };
        let t = Arc::new(Tracker::new(cfg, store));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(tracker::serve(listener, t, async {
            let _ = rx.await;
        }));
        Server {
            url,
            stop: Some(tx),
            task,
            _redis: redis,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

fn peer(n: u8, site: Option<&str>, asn: Option<u32>) -> PeerInfo {
    let mut p = PeerInfo::new(
        PeerId::from_bytes([n; 32]),
        PeerAddr::Socket(([127, 0, 0, 1], 4000 + n as u16).into()),
    );
    p.locality = Locality {
        asn,
        site: site.map(str::to_owned),
        country: None,
    };
    p.upload_kbps = 1000;
    p
}

fn ann(content: ContentId, peer: PeerInfo) -> Announce {
    Announce {
        content,
        peer,
        token: None,
        want: 0,
    }
}

async fn announce_returns_nearest_first_never_self(kind: Kind) {
    let s = Server::start(TrackerConfig::default(), kind).await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/1");
    let far = peer(1, Some("berlin"), Some(3320));
    let same_as = peer(2, Some("lyon"), Some(64500));
    let same_site = peer(3, Some("paris"), Some(64500));
    for p in [&far, &same_as, &same_site] {
        let r = c.announce(&ann(content, p.clone())).await.unwrap();
        // The first is alone in the swarm: it is told to come back soon, to meet the next.
        let alone = p.id == far.id;
        assert_eq!(r.peers.is_empty(), alone);
        let want = if alone { 2 } else { 20 };
        assert_eq!(r.interval, Duration::from_secs(want), "{:?}", p.locality);
    }
    let mut me = peer(4, Some("paris"), Some(64500));
    me.role = Role::Supernode;
    let r = c.announce(&ann(content, me.clone())).await.unwrap();
    let ids: Vec<PeerId> = r.peers.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![same_site.id, same_as.id, far.id]);
    assert_eq!(r.peers[0], same_site, "peers come back as announced");
    assert_eq!(r.interval, Duration::from_secs(20));
    assert_eq!(
        r.locality, me.locality,
        "no table: the agent's own locality"
    );
    let observed = r.observed_addr.unwrap();
    assert!(observed.ip().is_loopback());

    // want caps the reply; peers() samples without announcing.
    let r = c
        .announce(&Announce {
            want: 1,
            ..ann(content, me.clone())
        })
        .await
        .unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(c.peers(content, 0).await.unwrap().len(), 4);
    assert_eq!(c.peers(content, 2).await.unwrap().len(), 2);
    assert!(
        c.peers(ContentId::derive("nobody"), 0)
            .await
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}

async fn locality_table_overrides_the_agents_own_and_unspecified_addrs_take_the_observed_ip(
    kind: Kind,
) {
    let table = LocalityTable::parse("127.0.0.0/8 site=loopback asn=65000 country=FR").unwrap();
    let s = Server::start(
        TrackerConfig {
            locality_table: table,
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&format!("{}/", s.url)).unwrap();
    let content = ContentId::derive("live/table");
    let mut a = peer(1, Some("home"), Some(1));
    a.addrs = vec![PeerAddr::Socket("0.0.0.0:5000".parse().unwrap())];
    let r = c.announce(&ann(content, a)).await.unwrap();
    assert_eq!(r.locality.site.as_deref(), Some("loopback"));
    assert_eq!(r.locality.asn, Some(65000));
    assert_eq!(r.locality.country, Some(*b"FR"));
    let r = c
        .announce(&ann(content, peer(2, None, None)))
        .await
        .unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(r.peers[0].locality.site.as_deref(), Some("loopback"));
    assert_eq!(
        r.peers[0].addrs,
        vec![PeerAddr::Socket("127.0.0.1:5000".parse().unwrap())]
    );
    s.stop().await;
}

async fn entries_expire_by_ttl_and_leave_removes_at_once(kind: Kind) {
    let s = Server::start(
        TrackerConfig {
            ttl: Duration::from_millis(600),
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/ttl");
    c.announce(&ann(content, peer(1, None, None)))
        .await
        .unwrap();
    c.announce(&ann(content, peer(2, None, None)))
        .await
        .unwrap();
    let r = c
        .announce(&ann(content, peer(3, None, None)))
        .await
        .unwrap();
    assert_eq!(r.peers.len(), 2);
    assert_eq!(r.interval, Duration::from_millis(200));

    c.leave(content, PeerId::from_bytes([2; 32])).await.unwrap();
    let ids: Vec<_> = c
        .peers(content, 0)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&PeerId::from_bytes([2; 32])));

    tokio::time::sleep(Duration::from_millis(400)).await;
    c.announce(&ann(content, peer(3, None, None)))
        .await
        .unwrap(); // 3 refreshes, 1 does not
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids: Vec<_> = c
        .peers(content, 0)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        ids,
        vec![PeerId::from_bytes([3; 32])],
        "1 expired, 3 refreshed"
    );
    s.stop().await;
}

async fn tokens_are_required_and_checked_when_configured(kind: Kind) {
    let registrar = Registrar::generate();
    let s = Server::start(
        TrackerConfig {
            verifier: Some(TokenVerifier::new(registrar.verifying_key())),
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/paid");
    let me = peer(1, None, None);
    let far_future = 4_000_000_000;
    let with = |token: Option<Bytes>| Announce {
        token,
        ..ann(content, me.clone())
    };
    fn forbidden<T>(r: Result<T, TrackerError>) {
        match r {
            Err(e) => assert!(e.is_forbidden(), "{e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    forbidden(c.announce(&with(None)).await);
    let valid = registrar.issue(me.id, content, far_future);
    c.announce(&with(Some(valid.clone()))).await.unwrap();
    // Expired.
    forbidden(
        c.announce(&with(Some(registrar.issue(me.id, content, 1))))
            .await,
    );
    // Issued to another peer / for another content.
    forbidden(
        c.announce(&with(Some(registrar.issue(
            PeerId::from_bytes([9; 32]),
            content,
            far_future,
        ))))
        .await,
    );
    forbidden(
        c.announce(&with(Some(registrar.issue(
            me.id,
            ContentId::derive("x"),
            far_future,
        ))))
        .await,
    );
    // Forged: signed by another key; or altered.
    let forger = Registrar::generate();
    forbidden(
        c.announce(&with(Some(forger.issue(me.id, content, far_future))))
            .await,
    );
    let mut altered = valid.to_vec();
    altered[70] ^= 1;
    forbidden(c.announce(&with(Some(Bytes::from(altered)))).await);
    forbidden(c.announce(&with(Some(Bytes::from_static(b"junk")))).await);

    // Leave needs the token too.
    forbidden(c.leave(content, me.id).await);
    c.leave_with_token(content, me.id, Some(&valid))
        .await
        .unwrap();
    s.stop().await;
}

async fn bad_input_is_a_400_with_a_json_message(kind: Kind) {
    let s = Server::start(TrackerConfig::default(), kind).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: String| {
        http.post(format!("{}{path}", s.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let content = ContentId::derive("c").to_string();
    let peer_hex = PeerId::from_bytes([1; 32]).to_string();
    let addrs9: Vec<String> = (0..9).map(|i| format!("\"10.0.0.{i}:1\"")).collect();
    let cases = [
        ("/v1/announce", "{not json".to_owned()),
        ("/v1/announce", "[]".to_owned()),
        (
            "/v1/announce",
            format!(r#"{{"content": "zz", "peer": "{peer_hex}"}}"#),
        ),
        (
            "/v1/announce",
            format!(r#"{{"content": "{content}", "peer": "00"}}"#),
        ),
        (
            "/v1/announce",
            format!(
                r#"{{"content": "{content}", "peer": "{peer_hex}", "addrs": [{}]}}"#,
                addrs9.join(",")
            ),
        ),
        (
            "/v1/announce",
            format!(
                r#"{{"content": "{content}", "peer": "{peer_hex}", "site": "{}"}}"#,
                "s".repeat(65)
            ),
        ),
        (
            "/v1/announce",
            format!(r#"{{"content": "{content}", "peer": "{peer_hex}", "role": "king"}}"#),
        ),
        (
            "/v1/announce",
            format!(r#"{{"content": "{content}", "peer": "{peer_hex}", "upload_kbps": -1}}"#),
        ),
        ("/v1/leave", "{}".to_owned()),
    ];
    for (path, body) in cases {
        let r = post(path, body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    let r = http
        .get(format!("{}/v1/peers?limit=3", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/v1/announce", "x".repeat(100_000)).await.unwrap();
    assert_eq!(r.status(), 413, "bodies are bounded");

    // The tracker is still fine, and counts what it refused.
    let ok = post(
        "/v1/announce",
        format!(r#"{{"content": "{content}", "peer": "{peer_hex}"}}"#),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let m = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hive_tracker_announces_total 1"), "{m}");
    assert!(
        m.contains("hive_tracker_rejects_total{reason=\"bad_request\"} 10"),
        "{m}"
    );
    let store = match kind {
        Kind::Memory => "memory",
        Kind::Redis => "redis",
    };
    assert!(
        m.contains(&format!("hive_tracker_peers_stored{{store=\"{store}\"}} 1")),
        "{m}"
    );
    let h = http.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(h.text().await.unwrap(), "ok");
    s.stop().await;
}

async fn a_supernode_plan_promotes_the_first_peers_of_each_site_and_replaces_those_that_leave(
    kind: Kind,
) {
    let s = Server::start(
        TrackerConfig {
            supernodes: Some(tracker::SupernodePlan {
                per_site: 2,
                gateway_site: Some("hq".into()),
                at_gateway: 3,
                peers_per_supernode: 2,
            }),
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/plan");
    let mut roles = Vec::new();
    for n in 1..=4 {
        let r = c
            .announce(&ann(content, peer(n, Some("branch"), None)))
            .await
            .unwrap();
        roles.push(r.role.unwrap());
        // The gateway site has no supernode yet: a branch supernode is told to come back
        // soon, an ordinary peer with company is not.
        let soon = r.role == Some(Role::Supernode);
        let want = Duration::from_secs(if soon { 1 } else { 20 });
        assert_eq!(r.interval, want, "peer {n}");
    }
    use Role::{Peer, Supernode};
    assert_eq!(roles, [Supernode, Supernode, Peer, Peer], "two per branch");
    // A promoted agent announces with its new role: still two.
    let mut again = peer(1, Some("branch"), None);
    again.role = Supernode;
    assert_eq!(
        c.announce(&ann(content, again)).await.unwrap().role,
        Some(Supernode)
    );
    let r = c
        .announce(&ann(content, peer(3, Some("branch"), None)))
        .await
        .unwrap();
    assert_eq!(r.role, Some(Peer));
    // The fifth peer makes the branch need a third (one per two peers).
    let r = c
        .announce(&ann(content, peer(5, Some("branch"), None)))
        .await
        .unwrap();
    assert_eq!(r.role, Some(Supernode), "five peers: three supernodes");
    // The gateway site has a floor of three; a consume-only agent is never promoted.
    let mut watcher = peer(10, Some("hq"), None);
    watcher.role = Role::ConsumeOnly;
    let r = c.announce(&ann(content, watcher)).await.unwrap();
    assert_eq!(r.role, Some(Role::ConsumeOnly));
    let mut hq = Vec::new();
    for n in 11..=14 {
        let r = c
            .announce(&ann(content, peer(n, Some("hq"), None)))
            .await
            .unwrap();
        hq.push(r.role.unwrap());
    }
    assert_eq!(hq, [Supernode, Supernode, Supernode, Peer]);
    // A supernode that leaves is replaced by the next ordinary peer of its site to announce.
    c.leave(content, PeerId::from_bytes([11; 32]))
        .await
        .unwrap();
    let r = c
        .announce(&ann(content, peer(14, Some("hq"), None)))
        .await
        .unwrap();
    assert_eq!(r.role, Some(Supernode), "replaces the one that left");
    // A branch supernode's reply holds the gateway site's supernodes even when its own site
    // fills it.
    let mut sn = peer(1, Some("branch"), None);
    sn.role = Supernode;
    let mut a = ann(content, sn);
    a.want = 2;
    let r = c.announce(&a).await.unwrap();
    assert!(r.peers.len() <= 2, "{:?}", r.peers);
    assert!(
        r.peers
            .iter()
            .any(|p| p.role == Supernode && p.locality.site.as_deref() == Some("hq")),
        "{:?}",
        r.peers
    );
    assert_eq!(
        r.interval,
        Duration::from_secs(20),
        "it knows its uplinks now"
    );
    // An ordinary branch peer's reply is its site first, as before.
    let mut a = ann(content, peer(3, Some("branch"), None));
    a.want = 2;
    let r = c.announce(&a).await.unwrap();
    assert!(
        r.peers
            .iter()
            .all(|p| p.locality.site.as_deref() == Some("branch"))
    );
    // No site: no promotion.
    let r = c
        .announce(&ann(content, peer(20, None, None)))
        .await
        .unwrap();
    assert_eq!(r.role, Some(Peer));
    let listed = c.peers(content, 0).await.unwrap();
    let supernodes = listed.iter().filter(|p| p.role == Supernode).count();
    assert_eq!(supernodes, 6, "{listed:?}");
    let m = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hive_tracker_promotions_total 7"), "{m}");
    s.stop().await;
}

/// A raw JSON POST; status and body.
async fn post(url: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn leave_keys_keep_a_listed_peer_its_announcers(kind: Kind) {
    let s = Server::start(TrackerConfig::default(), kind).await;
    let content = ContentId::derive("live/keys");
    let me = peer(1, None, None);
    let other = peer(2, None, None);
    let owner = TrackerClient::new(&s.url).unwrap();
    let intruder = TrackerClient::new(&s.url).unwrap();
    owner.announce(&ann(content, me.clone())).await.unwrap();
    owner.announce(&ann(content, other.clone())).await.unwrap();

    // Someone else announcing the listed id (to move it to its own address) is refused, and so
    // is its leave; the entry is untouched.
    let mut hijack = me.clone();
    hijack.addrs = vec![PeerAddr::Socket("192.0.2.66:4000".parse().unwrap())];
    let e = intruder.announce(&ann(content, hijack)).await.unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    let e = intruder.leave(content, me.id).await.unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    let (status, body) = post(
        &s.url,
        "/v1/leave",
        serde_json::json!({"content": content.to_string(), "peer": me.id.to_string(),
                           "leave_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("leave_key"),
        "{body}"
    );
    let seen = owner.announce(&ann(content, other.clone())).await.unwrap();
    assert_eq!(seen.peers.len(), 1);
    assert_eq!(
        seen.peers[0].addrs, me.addrs,
        "the entry is still the owner's"
    );

    // The owner re-announces and leaves with its key (the client keeps it).
    owner.announce(&ann(content, me.clone())).await.unwrap();
    owner.leave(content, me.id).await.unwrap();
    let seen = owner.announce(&ann(content, other.clone())).await.unwrap();
    assert!(seen.peers.is_empty());

    // Raw API: the first announce's reply carries a leave_key, later ones do not.
    let fresh = peer(3, None, None);
    let req = serde_json::json!({"content": content.to_string(), "peer": fresh.id.to_string(),
                                 "addrs": ["127.0.0.1:4000"]});
    let (status, first) = post(&s.url, "/v1/announce", req.clone()).await;
    assert_eq!(status, 200, "{first}");
    let key = first["leave_key"].as_str().unwrap().to_owned();
    let (status, _) = post(&s.url, "/v1/announce", req.clone()).await;
    assert_eq!(status, 403);
    let mut with_key = req.clone();
    with_key["leave_key"] = key.clone().into();
    let (status, again) = post(&s.url, "/v1/announce", with_key).await;
    assert_eq!(status, 200, "{again}");
    assert!(again.get("leave_key").is_none(), "{again}");
    let (status, left) = post(
        &s.url,
        "/v1/leave",
        serde_json::json!({"content": content.to_string(), "peer": fresh.id.to_string(),
                           "leave_key": key}),
    )
    .await;
    assert_eq!((status, &left["removed"]), (200, &serde_json::json!(true)));
    // Unlisted now: anyone may take the id (and gets a new key).
    intruder.announce(&ann(content, fresh)).await.unwrap();
    s.stop().await;
}

async fn peers_needs_a_token_when_tokens_are_required(kind: Kind) {
    let registrar = Registrar::generate();
    let s = Server::start(
        TrackerConfig {
            verifier: Some(TokenVerifier::new(registrar.verifying_key())),
            max_reply: 5,
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/paid");
    let far_future = 4_000_000_000;
    for n in 1..=8 {
        let p = peer(n, None, None);
        let token = registrar.issue(p.id, content, far_future);
        c.announce(&Announce {
            token: Some(token),
            ..ann(content, p)
        })
        .await
        .unwrap();
    }
    let me = PeerId::from_bytes([1; 32]);
    let e = c.peers(content, 0).await.unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    let other_content = registrar.issue(me, ContentId::derive("x"), far_future);
    let e = c
        .peers_with_token(content, 0, me, &other_content)
        .await
        .unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    let valid = registrar.issue(me, content, far_future);
    let listed = c.peers_with_token(content, 100, me, &valid).await.unwrap();
    assert_eq!(listed.len(), 5, "a bounded sample");
    s.stop().await;
}

async fn over_the_limits_is_a_429_or_a_400(kind: Kind) {
    let s = Server::start(
        TrackerConfig {
            rate_per_addr: 1.0,
            rate_burst: 3,
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/rate");
    for n in 1..=3 {
        c.announce(&ann(content, peer(n, None, None)))
            .await
            .unwrap();
    }
    match c.announce(&ann(content, peer(4, None, None))).await {
        Err(TrackerError::Status {
            status: 429,
            message,
        }) => {
            assert!(
                message.contains("too many requests from 127.0.0.1"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Field sizes: a token over the bound is a 400.
    let (status, body) = post(
        &s.url,
        "/v1/announce",
        serde_json::json!({"content": content.to_string(), "peer": PeerId::from_bytes([9; 32]).to_string(),
                           "token": "A".repeat(600)}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let m = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("hive_tracker_rejects_total{reason=\"limit\"} 1"),
        "{m}"
    );
    s.stop().await;
}

/// The stores' bounds on swarms and peers per swarm are 429s, the same on both: a listed peer
/// still re-announces, and a place frees when its peer expires or its swarm's last peer leaves.
async fn a_full_store_is_a_429(kind: Kind) {
    let ttl = Duration::from_millis(600);
    let s = Server::start_bounded(
        TrackerConfig {
            ttl,
            ..Default::default()
        },
        kind,
        Some((2, 3)),
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let (a, b) = (ContentId::derive("a"), ContentId::derive("b"));
    for n in 1..=3 {
        c.announce(&ann(a, peer(n, None, None))).await.unwrap();
    }
    let full = |r: Result<_, TrackerError>| match r {
        Err(TrackerError::Status {
            status: 429,
            message,
        }) => message,
        other => panic!("{other:?}"),
    };
    let m = full(c.announce(&ann(a, peer(4, None, None))).await);
    assert!(m.contains("3 peers"), "{m}");
    // The raw answer: a 429 with the message as JSON.
    let raw = |content: ContentId, n: u8| {
        serde_json::json!({"content": content.to_string(),
                           "peer": PeerId::from_bytes([n; 32]).to_string(),
                           "addrs": ["127.0.0.1:4000"]})
    };
    let (status, body) = post(&s.url, "/v1/announce", raw(a, 5)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"error": "this swarm holds 3 peers, the tracker's maximum"})
    );
    // A listed peer still re-announces, and sees the others (the refused ones are not listed).
    let r = c.announce(&ann(a, peer(1, None, None))).await.unwrap();
    let mut ids: Vec<PeerId> = r.peers.iter().map(|p| p.id).collect();
    ids.sort();
    assert_eq!(ids, vec![peer(2, None, None).id, peer(3, None, None).id]);
    c.announce(&ann(b, peer(1, None, None))).await.unwrap();
    let m = full(
        c.announce(&ann(ContentId::derive("c"), peer(1, None, None)))
            .await,
    );
    assert!(m.contains("2 swarms"), "{m}");
    let (status, body) = post(&s.url, "/v1/announce", raw(ContentId::derive("d"), 5)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"error": "the tracker holds 2 swarms, its maximum"})
    );
    // A listed peer of a full tracker's swarm re-announces too.
    c.announce(&ann(b, peer(1, None, None))).await.unwrap();
    // Room again once a swarm empties.
    c.leave(b, peer(1, None, None).id).await.unwrap();
    c.announce(&ann(ContentId::derive("c"), peer(1, None, None)))
        .await
        .unwrap();
    // And once peers expire: three new ones fill the swarm again, and no more.
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    for n in 4..=6 {
        c.announce(&ann(a, peer(n, None, None))).await.unwrap();
    }
    let m = full(c.announce(&ann(a, peer(7, None, None))).await);
    assert!(m.contains("3 peers"), "{m}");
    let m = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("hive_tracker_rejects_total{reason=\"limit\"} 5"),
        "{m}"
    );
    s.stop().await;
}

async fn peers_reported_by_two_listed_peers_are_refused(kind: Kind) {
    let s = Server::start(TrackerConfig::default(), kind).await;
    let content = ContentId::derive("live/reports");
    let (a, b, liar) = (
        peer(1, None, None),
        peer(2, None, None),
        peer(9, None, None),
    );
    let ca = TrackerClient::new(&s.url).unwrap();
    let cb = TrackerClient::new(&s.url).unwrap();
    let cl = TrackerClient::new(&s.url).unwrap();
    ca.announce(&ann(content, a.clone())).await.unwrap();
    cb.announce(&ann(content, b.clone())).await.unwrap();
    cl.announce(&ann(content, liar.clone())).await.unwrap();
    // Someone not listed (or not proving it is the announcer) cannot report.
    let stranger = TrackerClient::new(&s.url).unwrap();
    let e = stranger
        .report(content, peer(7, None, None).id, None, liar.id)
        .await
        .unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    let e = stranger
        .report(content, a.id, None, liar.id)
        .await
        .unwrap_err();
    assert!(
        e.is_forbidden(),
        "a report without the reporter's leave key: {e}"
    );
    // One listed reporter is not enough (it could be a liar itself); a second one is.
    assert!(!ca.report(content, a.id, None, liar.id).await.unwrap());
    assert!(
        !ca.report(content, a.id, None, liar.id).await.unwrap(),
        "one reporter counts once"
    );
    assert!(cb.report(content, b.id, None, liar.id).await.unwrap());
    // The liar is gone from the swarm and cannot come back.
    let reply = ca.announce(&ann(content, a.clone())).await.unwrap();
    assert!(
        reply.peers.iter().all(|p| p.id != liar.id),
        "{:?}",
        reply.peers
    );
    let e = cl.announce(&ann(content, liar.clone())).await.unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    // In another swarm it is not refused.
    cl.announce(&ann(ContentId::derive("live/other"), liar.clone()))
        .await
        .unwrap();
    s.stop().await;
}

/// Each test on both stores.
async fn every_agent_of_a_site_meets_its_supernodes_however_big_the_site(kind: Kind) {
    let s = Server::start(
        TrackerConfig {
            supernodes: Some(tracker::SupernodePlan {
                per_site: 1,
                gateway_site: None,
                at_gateway: 1,
                peers_per_supernode: 1000,
            }),
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let content = ContentId::derive("live/big-site");
    let first = c
        .announce(&ann(content, peer(1, Some("office"), None)))
        .await
        .unwrap();
    assert_eq!(first.role, Some(Role::Supernode));
    for n in 2..=60 {
        c.announce(&ann(content, peer(n, Some("office"), None)))
            .await
            .unwrap();
    }
    // Replies of 3 among 59 ordinary peers: the site's one supernode is in every one (the
    // hierarchy fetches through it; ranked alone it would be in about one in five).
    for n in 2..=21 {
        let mut a = ann(content, peer(n, Some("office"), None));
        a.want = 3;
        let r = c.announce(&a).await.unwrap();
        assert_eq!(r.peers.len(), 3);
        assert!(
            r.peers
                .iter()
                .any(|p| p.id == PeerId::from_bytes([1; 32]) && p.role == Role::Supernode),
            "{:?}",
            r.peers
        );
    }
    s.stop().await;
}

/// An announced supernode or seeder role counts only when the tracker gave it or the operator
/// trusts the agent: otherwise anyone could make itself the supernode its site fetches through.
async fn declared_roles_count_only_when_given_or_trusted(kind: Kind) {
    let content = ContentId::derive("live/roles");
    let claim = |n: u8, role: Role| {
        let mut p = peer(n, Some("office"), None);
        p.role = role;
        ann(content, p)
    };
    let role_of = |peers: &[PeerInfo], n: u8| {
        peers
            .iter()
            .find(|p| p.id == PeerId::from_bytes([n; 32]))
            .map(|p| p.role)
    };

    // Default: nobody's word.
    let s = Server::start(TrackerConfig::default(), kind).await;
    let c = TrackerClient::new(&s.url).unwrap();
    let r = c.announce(&claim(1, Role::Supernode)).await.unwrap();
    assert_eq!(
        r.role,
        Some(Role::Peer),
        "a self-made supernode is told it is a peer"
    );
    let r = c.announce(&claim(2, Role::Seeder)).await.unwrap();
    assert_eq!(r.role, Some(Role::Peer));
    assert_eq!(role_of(&r.peers, 1), Some(Role::Peer), "and listed as one");
    // Consume-only only limits its holder: believed.
    let r = c.announce(&claim(3, Role::ConsumeOnly)).await.unwrap();
    assert_eq!(r.role, Some(Role::ConsumeOnly));
    let m = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hive_tracker_roles_refused_total 2"), "{m}");
    s.stop().await;

    // The operator's own boxes, by id.
    let trusted = [PeerId::from_bytes([1; 32])].into_iter().collect();
    let s = Server::start(
        TrackerConfig {
            trusted_roles: tracker::RoleTrust::Listed(trusted),
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let r = c.announce(&claim(1, Role::Supernode)).await.unwrap();
    assert_eq!(r.role, Some(Role::Supernode));
    let r = c.announce(&claim(2, Role::Supernode)).await.unwrap();
    assert_eq!(r.role, Some(Role::Peer));
    assert_eq!(role_of(&r.peers, 1), Some(Role::Supernode));
    s.stop().await;

    // The tracker's own promotion holds when the promoted agent announces it back.
    let s = Server::start(
        TrackerConfig {
            supernodes: Some(tracker::SupernodePlan {
                per_site: 1,
                gateway_site: None,
                at_gateway: 1,
                peers_per_supernode: 1000,
            }),
            ..Default::default()
        },
        kind,
    )
    .await;
    let c = TrackerClient::new(&s.url).unwrap();
    let r = c.announce(&claim(1, Role::Peer)).await.unwrap();
    assert_eq!(r.role, Some(Role::Supernode));
    let r = c.announce(&claim(1, Role::Supernode)).await.unwrap();
    assert_eq!(r.role, Some(Role::Supernode), "a promotion is kept");
    let r = c.announce(&claim(2, Role::Supernode)).await.unwrap();
    assert_eq!(
        r.role,
        Some(Role::Peer),
        "the site has its supernode: no second by claim"
    );
    assert_eq!(role_of(&r.peers, 1), Some(Role::Supernode));
    s.stop().await;
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                super::$name(super::Kind::Memory).await
            }
            #[tokio::test]
            async fn redis() {
                super::$name(super::Kind::Redis).await
            }
        }
    )*};
}

on_both_stores!(
    announce_returns_nearest_first_never_self,
    locality_table_overrides_the_agents_own_and_unspecified_addrs_take_the_observed_ip,
    entries_expire_by_ttl_and_leave_removes_at_once,
    tokens_are_required_and_checked_when_configured,
    bad_input_is_a_400_with_a_json_message,
    a_supernode_plan_promotes_the_first_peers_of_each_site_and_replaces_those_that_leave,
    every_agent_of_a_site_meets_its_supernodes_however_big_the_site,
    leave_keys_keep_a_listed_peer_its_announcers,
    peers_needs_a_token_when_tokens_are_required,
    over_the_limits_is_a_429_or_a_400,
    peers_reported_by_two_listed_peers_are_refused,
    a_full_store_is_a_429,
    declared_roles_count_only_when_given_or_trusted,
);
